//! `gatehouse.v1.Email`.

use gatehouse_actors::domain::email::outbox::EmailDelivery;
use gatehouse_actors::domain::email::template_store::StoredTemplate;
use gatehouse_actors::domain::email::templates::{self, EmailTemplate};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::email_server::Email;
use tonic::{Request, Response, Status};

use super::{Api, convert};

fn delivery(record: &EmailDelivery) -> v1::EmailDelivery {
    v1::EmailDelivery {
        message_id: record.message_id.to_string(),
        kind: record.kind.as_str().to_owned(),
        to: record.to.clone(),
        status: record.status.as_str().to_owned(),
        created_at: Some(convert::timestamp(record.created_at)),
        sent_at: record.sent_at.map(convert::timestamp),
        next_attempt_at: record.next_attempt_at.map(convert::timestamp),
        attempts: record
            .attempts
            .iter()
            .map(|attempt| v1::EmailAttempt {
                at: Some(convert::timestamp(attempt.at)),
                outcome: attempt.outcome.clone(),
                smtp_code: u32::from(attempt.smtp_code),
                latency_ms: attempt.latency_ms,
                error: attempt.error.clone(),
            })
            .collect(),
    }
}

fn template(stored: &StoredTemplate) -> v1::EmailTemplate {
    v1::EmailTemplate {
        kind: stored.kind.as_str().to_owned(),
        subject: stored.template.subject.clone(),
        html: stored.template.html.clone(),
        text: stored.template.text.clone(),
        custom: stored.custom,
        updated_at: stored.updated_at.map(convert::timestamp),
        variables: templates::variables_for(stored.kind)
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
    }
}

#[tonic::async_trait]
impl Email for Api {
    async fn list_email_deliveries(
        &self,
        request: Request<v1::ListEmailDeliveriesRequest>,
    ) -> Result<Response<v1::ListEmailDeliveriesReply>, Status> {
        self.rpc("Email/ListEmailDeliveries", request, |call| async move {
            let body = call.body();
            let page = self
                .gatehouse
                .list_email_deliveries(&call.caller, body.page_size, &body.page_token)
                .await?;
            Ok(v1::ListEmailDeliveriesReply {
                deliveries: page.deliveries.iter().map(delivery).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_email_template(
        &self,
        request: Request<v1::GetEmailTemplateRequest>,
    ) -> Result<Response<v1::EmailTemplate>, Status> {
        self.rpc("Email/GetEmailTemplate", request, |call| async move {
            let stored = self
                .gatehouse
                .get_email_template(&call.caller, &call.body().kind)
                .await?;
            Ok(template(&stored))
        })
        .await
    }

    async fn set_email_template(
        &self,
        request: Request<v1::SetEmailTemplateRequest>,
    ) -> Result<Response<v1::EmailTemplate>, Status> {
        self.rpc("Email/SetEmailTemplate", request, |call| async move {
            let (caller, body) = call.into_parts();
            let given = EmailTemplate {
                subject: body.subject,
                html: body.html,
                text: body.text,
            };
            let stored = self
                .gatehouse
                .set_email_template(&caller, &body.kind, given)
                .await?;
            Ok(template(&stored))
        })
        .await
    }

    async fn reset_email_template(
        &self,
        request: Request<v1::ResetEmailTemplateRequest>,
    ) -> Result<Response<v1::EmailTemplate>, Status> {
        self.rpc("Email/ResetEmailTemplate", request, |call| async move {
            let stored = self
                .gatehouse
                .reset_email_template(&call.caller, &call.body().kind)
                .await?;
            Ok(template(&stored))
        })
        .await
    }

    async fn preview_email_template(
        &self,
        request: Request<v1::PreviewEmailTemplateRequest>,
    ) -> Result<Response<v1::PreviewEmailTemplateReply>, Status> {
        self.rpc("Email/PreviewEmailTemplate", request, |call| async move {
            let (caller, body) = call.into_parts();
            let given = body.use_given.then_some(EmailTemplate {
                subject: body.subject,
                html: body.html,
                text: body.text,
            });
            let rendered = self
                .gatehouse
                .preview_email_template(&caller, &body.kind, given)
                .await?;
            Ok(v1::PreviewEmailTemplateReply {
                subject: rendered.subject,
                html: rendered.html,
                text: rendered.text,
            })
        })
        .await
    }
}
