//! The `data` of the events Gatehouse emits for users and sessions: public fields only,
//! never password hashes, token hashes or server metadata.

use serde_json::{Value, json};

use super::signing::rfc3339;
use crate::domain::sessions::SessionRecord;
use crate::domain::users::{UserRecord, UserState};

/// `data` of `user.created` and `user.updated`.
pub fn user(record: &UserRecord) -> Value {
    json!({
        "user_id": record.user_id,
        "email": record.email,
        "display_name": record.display_name,
        "state": match record.state {
            UserState::Active => "active",
            UserState::Suspended => "suspended",
        },
        "email_verified": record.email_verified,
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
    })
}

/// `data` of `user.deleted`.
pub fn deleted_user(record: &UserRecord) -> Value {
    json!({ "user_id": record.user_id, "email": record.email })
}

/// `data` of `session.created`.
pub fn session(record: &SessionRecord) -> Value {
    json!({
        "session_id": record.session_id,
        "user_id": record.user_id,
        "ip_address": record.ip_address,
        "user_agent": record.user_agent,
        "created_at": rfc3339(record.created_at),
        "expires_at": rfc3339(record.expires_at),
    })
}

/// `data` of `session.revoked`.
pub fn revoked_session(record: &SessionRecord, reason: &str) -> Value {
    json!({
        "session_id": record.session_id,
        "user_id": record.user_id,
        "reason": reason,
    })
}
