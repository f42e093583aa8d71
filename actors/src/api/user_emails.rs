//! A user's further addresses: add (and have it verified by the emailed code), make primary,
//! remove. A signed-in client acts on itself; servers and operators name the user.

use uuid::Uuid;

use crate::access::Caller;
use crate::domain::users::emails;
use crate::domain::users::{UserRecord, parse_email};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// What to do with one of a user's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailChange {
    /// Add it, unverified.
    Add,
    /// Make it (verified) the primary address.
    MakePrimary,
    /// Remove it (not the primary).
    Remove,
}

impl Gatehouse {
    fn email_owner(&self, caller: &Caller, user_id: &str) -> DomainResult<Uuid> {
        match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => Ok(me),
            Some(_) => Err(DomainError::PermissionDenied(
                "clients change only their own addresses",
            )),
            None => super::parse_id("user_id", user_id),
        }
    }

    /// Adds, promotes or removes one of a user's addresses.
    pub async fn change_user_email(
        &self,
        caller: &Caller,
        user_id: &str,
        email: &str,
        change: EmailChange,
    ) -> DomainResult<UserRecord> {
        let tenant = caller.tenant()?;
        let user_id = self.email_owner(caller, user_id)?;
        if !caller.is_trusted() {
            // Changing where the account's mail goes is sensitive: it needs a recent sign-in.
            caller.require_recent_user(self.services.context.now(), false)?;
        }
        let email = parse_email(email)?;
        let (context, tenant_id, email) = (&self.services.context, tenant.tenant_id(), &email);
        self.services
            .db
            .run(|tx| async move {
                let normalized = email.normalized.as_str();
                match change {
                    EmailChange::Add => {
                        emails::add_email(&tx, context, tenant_id, user_id, email).await
                    }
                    EmailChange::MakePrimary => {
                        emails::make_primary(&tx, context, tenant_id, user_id, normalized).await
                    }
                    EmailChange::Remove => {
                        emails::remove_email(&tx, context, tenant_id, user_id, normalized).await
                    }
                }
            })
            .await
    }
}
