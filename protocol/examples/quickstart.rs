//! Signs a user up through the SDK and verifies the access token against the tenant's JWKS
//! with a standard JWT library, as an app backend would.
//!
//! ```text
//! cargo run -p gatehouse-protocol --example quickstart -- \
//!     http://127.0.0.1:50051 http://127.0.0.1:8080 <tenant_id> <publishable_client_key> you@example.com
//! ```

use gatehouse_protocol::sdk::{Client, Credentials};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, http, tenant, client_key, email] = args.as_slice() else {
        return Err("usage: quickstart GRPC_URL HTTP_URL TENANT_ID CLIENT_KEY EMAIL".into());
    };
    let password = std::env::var("QUICKSTART_PASSWORD")
        .unwrap_or_else(|_| "a long and unusual passphrase".to_owned());

    let client = Client::builder(endpoint.as_str())
        .tenant(tenant.as_str())
        .credentials(Credentials::Client {
            publishable_key: client_key.clone(),
        })
        .build()
        .await?;
    let signed_up = client.sign_up_with_password(email, &password).await?;
    println!("user_id:       {}", signed_up.user_id);
    println!("session_id:    {}", signed_up.session_id);
    println!("refresh_token: {}", signed_up.refresh_token);

    let issuer = format!("{http}/t/{tenant}");
    let jwks: JwkSet = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let kid = jsonwebtoken::decode_header(&signed_up.access_token)?
        .kid
        .ok_or("token has no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not in the JWKS")?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[tenant]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &signed_up.access_token,
        &DecodingKey::from_jwk(jwk)?,
        &validation,
    )?
    .claims;
    println!("verified access token claims: {claims:#}");

    let refreshed = client.refresh_session(&signed_up.refresh_token).await?;
    println!("refreshed; new refresh_token: {}", refreshed.refresh_token);
    Ok(())
}
