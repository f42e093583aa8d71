//! The email flows (verification, password reset, sign-in by code and link, password change)
//! and the tenant's email delivery log. Each parses its input once, then runs one domain
//! function in one transaction; messages go to the outbox in that transaction.

use gatehouse_storage::Transaction;
use url::Url;

use crate::access::Caller;
use crate::domain::attempts;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::email::codes::CodePurpose;
use crate::domain::email::flows::{self, CodeRequest, Keys, Proof};
use crate::domain::email::outbox::{self, EmailDelivery};
use crate::domain::passwords::{HashSource, validate_new_password, validate_password_input};
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::TenantState;
use crate::domain::tenants::redirects::check_redirect;
use crate::domain::users::emails::AddressOf;
use crate::domain::users::{self, Email, UserRecord, parse_email};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

use super::SignedIn;

/// A code with its address, or a link token, as a request carries them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProofInput<'a> {
    /// The address the code was sent to (with `code`).
    pub email: &'a str,
    /// The six digits.
    pub code: &'a str,
    /// The token from the link (instead of `email` and `code`).
    pub token: &'a str,
}

/// One page of the delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<EmailDelivery>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

struct ParsedProof {
    address: Option<Email>,
    code: String,
    token: String,
}

impl ParsedProof {
    fn parse(input: ProofInput<'_>, own_address: Option<&str>) -> DomainResult<ParsedProof> {
        let token = input.token.trim();
        if !token.is_empty() {
            return Ok(ParsedProof {
                address: None,
                code: String::new(),
                token: token.to_owned(),
            });
        }
        let code = input.code.trim();
        if code.is_empty() {
            return Err(DomainError::invalid(
                "code",
                "a code or a token is required",
            ));
        }
        if code.len() > 32 {
            return Err(DomainError::invalid("code", "is too long"));
        }
        let address = match (input.email.trim(), own_address) {
            ("", Some(own)) => parse_email(own)?,
            (email, _) => parse_email(email)?,
        };
        Ok(ParsedProof {
            address: Some(address),
            code: code.to_owned(),
            token: String::new(),
        })
    }

    fn proof(&self) -> Proof<'_> {
        match &self.address {
            Some(address) => Proof::Code {
                address: &address.normalized,
                code: &self.code,
            },
            None => Proof::Token(&self.token),
        }
    }
}

fn require_code_sign_in(tenant: &TenantState) -> DomainResult<()> {
    if tenant.record.settings.email.sign_in_code_enabled {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(
            "sign-in by email code is disabled for this tenant",
        ))
    }
}

fn optional_redirect(tenant: &TenantState, redirect_url: &str) -> DomainResult<Option<Url>> {
    if redirect_url.trim().is_empty() {
        return Ok(None);
    }
    check_redirect(&tenant.record.settings, "redirect_url", redirect_url).map(Some)
}

impl Gatehouse {
    pub(crate) fn email_keys(&self) -> Keys<'_> {
        Keys {
            context: &self.services.context,
            master_key: &self.services.master_key,
        }
    }

    /// The slot of wrong codes from the caller's source over all addresses; reserved with
    /// [`reserve_code_slot`] in the transaction that checks the code.
    fn code_slot(&self, tenant: &TenantState, client: &ClientInfo) -> attempts::Slot {
        let now = self.services.context.now();
        attempts::code_source_slot(tenant.tenant_id(), &client.ip_address, now)
    }

    fn invalid_code(&self, flow: &'static str) -> DomainError {
        metrics::counter!("gatehouse_email_code_failures_total", "flow" => flow).increment(1);
        DomainError::InvalidCode
    }

    async fn send_code_for(
        &self,
        tenant: &TenantState,
        purpose: CodePurpose,
        email: &Email,
        redirect: Option<&Url>,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let allow_sign_up = tenant.record.settings.email.sign_up_with_code_enabled;
        let request = CodeRequest {
            purpose,
            email,
            redirect,
            client,
            allow_sign_up,
        };
        let keys = self.email_keys();
        let request = &request;
        let sent = self
            .services
            .db
            .run(|tx| async move { flows::send_code(&tx, keys, tenant, request).await })
            .await;
        let outcome = match &sent {
            Ok(true) => "sent",
            Ok(false) => "not_sent",
            Err(error) => error.code().as_str(),
        };
        metrics::counter!("gatehouse_email_code_requests_total", "purpose" => purpose.as_str(), "outcome" => outcome)
            .increment(1);
        sent.map(|_| ())
    }

    /// Sends a verification code and link. A signed-in client user (restricted or not) asks
    /// for their own address; servers and signed-out clients name it. The answer is the same
    /// whether or not the address belongs to a user who needs verifying.
    pub async fn send_email_verification(
        &self,
        caller: &Caller,
        email: &str,
        redirect_url: &str,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let tenant = caller.tenant()?.clone();
        caller.refuse_anonymous()?;
        let email = match caller {
            // A signed-in user verifies one of their own addresses (the primary by default).
            Caller::Client { user: Some(_), .. } => {
                let user = self.get_current_user(caller).await?;
                match email.trim() {
                    "" => parse_email(&user.email)?,
                    given => {
                        let given = parse_email(given)?;
                        if matches!(user.address(&given.normalized), AddressOf::None) {
                            return Err(DomainError::invalid(
                                "email",
                                "is not one of your addresses",
                            ));
                        }
                        given
                    }
                }
            }
            _ => parse_email(email)?,
        };
        let redirect = optional_redirect(&tenant, redirect_url)?;
        self.send_code_for(
            &tenant,
            CodePurpose::Verification,
            &email,
            redirect.as_ref(),
            client,
        )
        .await
    }

    /// Verifies an email with a code (and the address, which a signed-in client user may
    /// leave out) or a link token.
    pub async fn verify_email(
        &self,
        caller: &Caller,
        input: ProofInput<'_>,
        client: &ClientInfo,
    ) -> DomainResult<UserRecord> {
        let tenant = caller.tenant()?.clone();
        let own = match caller {
            Caller::Client { user: Some(_), .. } => {
                Some(self.get_current_user(caller).await?.email)
            }
            _ => None,
        };
        let parsed = ParsedProof::parse(input, own.as_deref())?;
        let slot = &[self.code_slot(&tenant, client)];
        let (keys, tenant_ref, parsed_ref) = (self.email_keys(), &tenant, &parsed);
        let origin = &AuditOrigin::of(caller);
        let verified = self
            .services
            .db
            .run(|tx| async move {
                reserve_code_slot(&tx, keys, tenant_ref, slot).await?;
                let verified =
                    flows::verify_email(&tx, keys, tenant_ref, parsed_ref.proof(), origin).await?;
                release_code_slot(&tx, keys, slot, verified.is_some()).await?;
                Ok::<_, DomainError>(verified)
            })
            .await?;
        verified.ok_or_else(|| self.invalid_code("verification"))
    }

    /// Sends a password-reset code and link; the same answer for any address.
    pub async fn send_password_reset(
        &self,
        caller: &Caller,
        email: &str,
        redirect_url: &str,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let tenant = caller.tenant()?.clone();
        let email = parse_email(email)?;
        let redirect = optional_redirect(&tenant, redirect_url)?;
        self.send_code_for(
            &tenant,
            CodePurpose::PasswordReset,
            &email,
            redirect.as_ref(),
            client,
        )
        .await
    }

    /// Sets a new password with a reset code or link; every session of the user is revoked
    /// and a "password changed" notice is sent. A suspended user is refused.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        input: ProofInput<'_>,
        new_password: &str,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let tenant = caller.tenant()?.clone();
        let parsed = ParsedProof::parse(input, None)?;
        validate_new_password(new_password)?;
        let slot = &[self.code_slot(&tenant, client)];
        let source = HashSource::new(tenant.tenant_id(), &client.ip_address);
        let hash = self.services.hasher.hash(source, new_password).await?;
        let (keys, tenant_ref, parsed_ref, hash_ref) = (self.email_keys(), &tenant, &parsed, &hash);
        let reset = self
            .services
            .db
            .run(|tx| async move {
                reserve_code_slot(&tx, keys, tenant_ref, slot).await?;
                let proof = parsed_ref.proof();
                let reset =
                    flows::reset_password(&tx, keys, tenant_ref, proof, hash_ref, client).await?;
                release_code_slot(&tx, keys, slot, reset.is_some()).await?;
                Ok::<_, DomainError>(reset)
            })
            .await?;
        reset
            .map(|_| ())
            .ok_or_else(|| self.invalid_code("password_reset"))
    }

    /// Sends a sign-in code and magic link; the same answer for any address. An unknown
    /// address gets a code that signs it up when the tenant allows sign-up by code.
    pub async fn send_sign_in_code(
        &self,
        caller: &Caller,
        email: &str,
        redirect_url: &str,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let tenant = caller.tenant()?.clone();
        require_code_sign_in(&tenant)?;
        let email = parse_email(email)?;
        let redirect = optional_redirect(&tenant, redirect_url)?;
        self.send_code_for(
            &tenant,
            CodePurpose::SignIn,
            &email,
            redirect.as_ref(),
            client,
        )
        .await
    }

    /// Signs in (or up) with a sign-in code and its address, or the magic link's token.
    pub async fn sign_in_with_code(
        &self,
        caller: &Caller,
        input: ProofInput<'_>,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        require_code_sign_in(&tenant)?;
        let parsed = ParsedProof::parse(input, None)?;
        let slot = &[self.code_slot(&tenant, client)];
        let (keys, tenant_ref, parsed_ref) = (self.email_keys(), &tenant, &parsed);
        let anonymous = self.anonymous_caller(caller)?;
        let session = self
            .services
            .db
            .run(|tx| async move {
                reserve_code_slot(&tx, keys, tenant_ref, slot).await?;
                let proof = parsed_ref.proof();
                let session =
                    flows::sign_in_with_code_as(&tx, keys, tenant_ref, proof, client, anonymous)
                        .await?;
                release_code_slot(&tx, keys, slot, session.is_some()).await?;
                Ok::<_, DomainError>(session)
            })
            .await?;
        let Some(session) = session else {
            return Err(self.invalid_code("sign_in"));
        };
        self.signed_in_or_mfa(&tenant, session, "email_code")
    }

    /// Changes the signed-in user's password; needs the current one. Every other session of
    /// the user is revoked. Returns how many were.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> DomainResult<u32> {
        let (tenant, claims) = caller.require_recent_user(self.services.context.now(), false)?;
        let tenant = tenant.clone();
        let user_id = super::parse_id("sub", &claims.sub)?;
        let session_id = super::parse_id("sid", &claims.sid)?;
        validate_password_input(current_password)?;
        validate_new_password(new_password)?;
        let tenant_id = tenant.tenant_id();
        // The current password is checked under the account's password limits, as a
        // sign-in from this source would be.
        let (context, source) = (&self.services.context, client.ip_address.as_str());
        let (user, slots) = self
            .services
            .db
            .run(|tx| async move {
                let user = users::read_user(&tx, tenant_id, user_id).await?;
                let account = user.email_normalized.as_str();
                let slots =
                    attempts::password_slots(tenant_id, account, None, source, context.now());
                match attempts::reserve(&tx, context, tenant_id, &slots, Some(&user), source)
                    .await?
                {
                    attempts::Reservation::Granted => Ok((user, slots)),
                    attempts::Reservation::Refused {
                        retry_after_seconds,
                    } => Err(DomainError::RateLimitedFor(retry_after_seconds)),
                }
            })
            .await?;
        let source = HashSource::new(tenant_id, &client.ip_address);
        let verification = self
            .services
            .hasher
            .verify(source, current_password, user.password_hash.as_deref())
            .await?;
        if !verification.matches {
            return Err(DomainError::InvalidCredentials);
        }
        let hash = self.services.hasher.hash(source, new_password).await?;
        let (keys, tenant_ref, hash_ref) = (self.email_keys(), &tenant, &hash);
        let verified_hash = user.password_hash.clone();
        let verified_hash = &verified_hash;
        let (origin, slots) = (&AuditOrigin::of(caller), &slots);
        self.services
            .db
            .run(|tx| async move {
                let mut user = users::read_user(&tx, tenant_id, user_id).await?;
                // The password checked above must still be the one stored.
                if &user.password_hash != verified_hash {
                    return Err(DomainError::InvalidCredentials);
                }
                attempts::release(&tx, keys.context, slots).await?;
                flows::set_password(
                    &tx,
                    keys,
                    tenant_ref,
                    &mut user,
                    hash_ref,
                    Some(session_id),
                    AuditAction::UserChangePassword,
                    origin,
                    client,
                )
                .await
            })
            .await
    }

    /// The tenant's email delivery log, newest first (servers and operators).
    pub async fn list_email_deliveries(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
    ) -> DomainResult<DeliveryPage> {
        let tenant = caller.require_server()?;
        let tenant_id = tenant.tenant_id();
        let before = super::decode_page_token('e', page_token)?
            .map(|id| super::parse_id("page_token", &id))
            .transpose()?;
        let limit = super::page_size(page_size);
        let (deliveries, more) = self
            .services
            .db
            .run(|tx: Transaction| async move {
                outbox::list_deliveries(&tx, tenant_id, before, limit).await
            })
            .await?;
        let next_page_token = match deliveries.last() {
            Some(last) if more => super::encode_page_token('e', &last.message_id.to_string()),
            _ => String::new(),
        };
        Ok(DeliveryPage {
            deliveries,
            next_page_token,
        })
    }
}

/// Takes a slot of wrong codes from the caller's source, in the transaction that then checks
/// the code (and counts a wrong one against the code itself); `RATE_LIMITED` when the source
/// has none left.
async fn reserve_code_slot(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    slot: &[attempts::Slot],
) -> DomainResult<()> {
    let tenant_id = tenant.tenant_id();
    match attempts::reserve(tx, keys.context, tenant_id, slot, None, "").await? {
        attempts::Reservation::Granted => Ok(()),
        attempts::Reservation::Refused {
            retry_after_seconds,
        } => {
            metrics::counter!("gatehouse_email_code_rate_limited_total").increment(1);
            Err(DomainError::RateLimitedFor(retry_after_seconds))
        }
    }
}

/// Gives the slot back when the code was right.
async fn release_code_slot(
    tx: &Transaction,
    keys: Keys<'_>,
    slot: &[attempts::Slot],
    valid: bool,
) -> DomainResult<()> {
    if valid {
        attempts::release(tx, keys.context, slot).await?;
    }
    Ok(())
}
