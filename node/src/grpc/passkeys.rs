//! `gatehouse.v1.Passkeys`.

use gatehouse_actors::factors::passkeys::Ceremony;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::passkeys_server::Passkeys;
use tonic::{Request, Response, Status};

use super::auth::sign_in_reply;
use super::{Api, convert};

fn ceremony(ceremony: Ceremony) -> v1::PasskeyCeremony {
    v1::PasskeyCeremony {
        ceremony_id: ceremony.ceremony_id.to_string(),
        options_json: ceremony.options_json,
    }
}

#[tonic::async_trait]
impl Passkeys for Api {
    async fn begin_registration(
        &self,
        request: Request<v1::BeginPasskeyRegistrationRequest>,
    ) -> Result<Response<v1::PasskeyCeremony>, Status> {
        self.rpc("Passkeys/BeginRegistration", request, |call| async move {
            let begun = self
                .gatehouse
                .begin_passkey_registration(&call.caller)
                .await?;
            Ok(ceremony(begun))
        })
        .await
    }

    async fn finish_registration(
        &self,
        request: Request<v1::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<v1::Passkey>, Status> {
        self.rpc("Passkeys/FinishRegistration", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let passkey = self
                .gatehouse
                .finish_passkey_registration(
                    &call.caller,
                    &body.ceremony_id,
                    &body.credential_json,
                    &body.name,
                    &client,
                )
                .await?;
            Ok(convert::passkey(&passkey))
        })
        .await
    }

    async fn begin_sign_in(
        &self,
        request: Request<v1::BeginPasskeySignInRequest>,
    ) -> Result<Response<v1::PasskeyCeremony>, Status> {
        self.rpc("Passkeys/BeginSignIn", request, |call| async move {
            let begun = self
                .gatehouse
                .begin_passkey_sign_in(&call.caller, &call.body().email)
                .await?;
            Ok(ceremony(begun))
        })
        .await
    }

    async fn finish_sign_in(
        &self,
        request: Request<v1::FinishPasskeySignInRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Passkeys/FinishSignIn", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let signed_in = self
                .gatehouse
                .finish_passkey_sign_in(
                    &call.caller,
                    &body.ceremony_id,
                    &body.assertion_json,
                    &client,
                )
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn list_passkeys(
        &self,
        request: Request<v1::ListPasskeysRequest>,
    ) -> Result<Response<v1::ListPasskeysReply>, Status> {
        self.rpc("Passkeys/ListPasskeys", request, |call| async move {
            let passkeys = self
                .gatehouse
                .list_passkeys(&call.caller, &call.body().user_id)
                .await?;
            Ok(v1::ListPasskeysReply {
                passkeys: passkeys.iter().map(convert::passkey).collect(),
            })
        })
        .await
    }

    async fn rename_passkey(
        &self,
        request: Request<v1::RenamePasskeyRequest>,
    ) -> Result<Response<v1::Passkey>, Status> {
        self.rpc("Passkeys/RenamePasskey", request, |call| async move {
            let body = call.body();
            let passkey = self
                .gatehouse
                .rename_passkey(&call.caller, &body.passkey_id, &body.name)
                .await?;
            Ok(convert::passkey(&passkey))
        })
        .await
    }

    async fn remove_passkey(
        &self,
        request: Request<v1::RemovePasskeyRequest>,
    ) -> Result<Response<v1::RemovePasskeyReply>, Status> {
        self.rpc("Passkeys/RemovePasskey", request, |call| async move {
            self.gatehouse
                .remove_passkey(&call.caller, &call.body().passkey_id, &call.client_info())
                .await?;
            Ok(v1::RemovePasskeyReply {})
        })
        .await
    }
}
