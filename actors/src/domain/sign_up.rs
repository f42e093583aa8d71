//! The password sign-up of a tenant that protects sign-up from enumeration: its answer does
//! not tell whether the address was taken. A new address gets a user and a verification
//! code; a taken one gets its owner a `sign_up_attempt` notice and nothing else. Both spend
//! the address's and the source's send allowance and write one message, in one transaction;
//! neither starts a session.

use gatehouse_storage::Transaction;

use crate::domain::email::EmailKind;
use crate::domain::email::codes::{self, CodePurpose};
use crate::domain::email::flows::{self, CodeRequest, Keys};
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, NewUser};
use crate::error::DomainResult;

/// Whether the tenant's password sign-up hides taken addresses: it protects sign-up from
/// enumeration and requires verified addresses (without verification a sign-up that
/// returns no session would only make every user sign in twice).
pub fn protects(tenant: &TenantState) -> bool {
    let email = &tenant.record.settings.email;
    email.sign_up_enumeration_protection && email.verification_required
}

/// What a quiet sign-up did (for metrics only: the caller's answer is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietSignUp {
    /// A user was created and sent a verification code.
    Created,
    /// The address was taken; its owner was sent a notice.
    Taken,
}

/// Signs `new_user` up without a session, or mails the owner of the address a notice.
pub async fn sign_up_quietly(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    new_user: NewUser,
    client: &ClientInfo,
) -> DomainResult<QuietSignUp> {
    let tenant_id = tenant.tenant_id();
    let address = new_user.email.normalized.clone();
    let Some(owner) = users::find_user_by_email(tx, tenant_id, &address).await? else {
        let email = new_user.email.clone();
        users::create_user(tx, keys.context, tenant_id, new_user).await?;
        // The code alone: a sign-up names no redirect. `send_code` spends the allowance.
        let request = CodeRequest {
            purpose: CodePurpose::Verification,
            email: &email,
            redirect: None,
            client,
            allow_sign_up: false,
        };
        flows::send_code(tx, keys, tenant, &request).await?;
        return Ok(QuietSignUp::Created);
    };
    let settings = &tenant.record.settings.email;
    codes::spend_send_allowance(
        tx,
        keys.context,
        tenant_id,
        settings,
        &address,
        &client.ip_address,
    )
    .await?;
    // The owner's address as stored, never the variant that was typed.
    let to = owner
        .stored_address(&address)
        .unwrap_or(&owner.email)
        .to_owned();
    let vars = flows::base_vars(tenant, Some(&owner), &to, client);
    flows::compose(tx, keys, tenant, EmailKind::SignUpAttempt, &to, &vars).await?;
    Ok(QuietSignUp::Taken)
}
