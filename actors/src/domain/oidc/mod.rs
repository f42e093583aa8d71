//! Gatehouse as an OpenID provider per tenant: the checks of an authorization request
//! ([`authorize`]), authorization codes bound to client, redirect URI and PKCE ([`codes`]),
//! and ID tokens ([`id_token`]). The clients themselves are `domain::oidc_clients`.

pub mod authorize;
#[cfg(test)]
mod authorize_tests;
pub mod codes;
#[cfg(test)]
mod codes_tests;
pub mod id_token;
