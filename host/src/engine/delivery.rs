//! Where the outbox's messages go, by channel, as `[delivery]` in
//! `robohost.toml` says: email over SMTP (lettre), SMS and messenger
//! messages as a signed JSON POST to an HTTP gateway; a channel with no
//! provider is written to the log, so a portal without one still shows what
//! was sent.
//!
//! Every attempt at a message carries the same idempotency key, so a
//! provider that honours it delivers the message once even when a host
//! dies after handing it over and another tries again: the SMTP
//! `Message-ID`, or the gateway's `Idempotency-Key` header and `id` field.
//!
//! ```toml
//! [delivery]
//! max-attempts = 5       # then the message ends failed, with the reason
//! backoff-ms = 60000     # before the second attempt; doubles after each
//!
//! [delivery.email]
//! smtp = "smtps://user:password@mail.example.com"   # or smtp://host:port (STARTTLS when offered)
//! from = "Sales <sales@example.com>"
//!
//! [delivery.sms]
//! url = "https://gateway.example.com/sms"
//! secret = "whsec_..."   # signs each POST: Robohost-Signature, as inbound calls are signed
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::{Result, invalid};
use crate::domain::{Channel, SIGNATURE_HEADER, sign};
use crate::storage::OutboxMessage;

/// How long one attempt may take before it counts as failed.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The `[delivery]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeliveryConfig {
    /// Attempts a message gets before it ends failed.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    pub backoff_ms: i64,
    pub email: Option<SmtpConfig>,
    pub sms: Option<GatewayConfig>,
    pub messenger: Option<GatewayConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 5,
            backoff_ms: 60_000,
            email: None,
            sms: None,
            messenger: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp://[user:password@]host[:port]` (STARTTLS when the server
    /// offers it; `?tls=required` to insist) or `smtps://...` (TLS from the
    /// start).
    pub smtp: String,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where each message is posted (http or https).
    pub url: String,
    /// Signs each post (`Robohost-Signature: t=...,v1=...`), so the gateway
    /// knows it came from this portal.
    pub secret: String,
}

/// Why an attempt failed, and whether another could succeed.
#[derive(Debug)]
pub struct Failure {
    pub reason: String,
    /// A message no attempt can deliver, such as one to a malformed
    /// address: it ends failed at once.
    pub permanent: bool,
}

impl Failure {
    fn retry(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            permanent: false,
        }
    }

    fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            permanent: true,
        }
    }
}

type Attempt<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// Hands a message to a provider.
pub trait Delivery: Send + Sync {
    /// One attempt at `message`; `key` is the same at every attempt.
    fn deliver<'a>(&'a self, message: &'a OutboxMessage, key: &'a str) -> Attempt<'a>;
}

/// Writes each message to the log.
pub struct LogDelivery;

impl Delivery for LogDelivery {
    fn deliver<'a>(&'a self, m: &'a OutboxMessage, key: &'a str) -> Attempt<'a> {
        tracing::info!(
            id = m.id,
            key,
            channel = m.channel.as_str(),
            to = %m.to,
            subject = m.subject.as_deref().unwrap_or(""),
            body = %m.body,
            "message written to the log (no provider is configured for its channel)"
        );
        Box::pin(async { Ok(()) })
    }
}

/// Email over SMTP.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(config: &SmtpConfig) -> Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp)
            .map_err(|e| invalid("delivery.email.smtp", format!("`{}`: {e}", redact(&config.smtp))))?
            .timeout(Some(ATTEMPT_TIMEOUT))
            .build();
        let from = config.from.parse().map_err(|e| {
            invalid(
                "delivery.email.from",
                format!("`{}` is not an address: {e}", config.from),
            )
        })?;
        Ok(Smtp { transport, from })
    }
}

/// An SMTP URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://...@{host}"),
        _ => url.to_owned(),
    }
}

impl Delivery for Smtp {
    fn deliver<'a>(&'a self, m: &'a OutboxMessage, key: &'a str) -> Attempt<'a> {
        Box::pin(async move {
            let to: Mailbox =
                m.to.parse()
                    .map_err(|e| Failure::permanent(format!("`{}` is not an email address: {e}", m.to)))?;
            let email = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.subject.clone().unwrap_or_default())
                .message_id(Some(format!("<{key}@robohost>")))
                .body(m.body.clone())
                .map_err(|e| Failure::permanent(format!("the email cannot be built: {e}")))?;
            match self.transport.send(email).await {
                Ok(_) => Ok(()),
                // A 5xx answer (no such mailbox, refused) will not change.
                Err(e) if e.is_permanent() => Err(Failure::permanent(format!("the SMTP server refused it: {e}"))),
                Err(e) => Err(Failure::retry(format!("SMTP: {e}"))),
            }
        })
    }
}

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

/// SMS or messenger messages posted to an HTTP gateway: `{"id", "channel",
/// "to", "subject", "body", "about"}` with `Idempotency-Key` and a
/// signature.
pub struct Gateway {
    url: String,
    secret: String,
    client: HttpsClient,
}

impl Gateway {
    pub fn new(field: &str, config: &GatewayConfig) -> Result<Gateway> {
        let uri: hyper::Uri = config
            .url
            .parse()
            .map_err(|e| invalid(format!("delivery.{field}.url"), format!("`{}`: {e}", config.url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            let problem = format!("`{}` is not an http or https URL", config.url);
            return Err(invalid(format!("delivery.{field}.url"), problem));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Gateway {
            url: config.url.clone(),
            secret: config.secret.clone(),
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

impl Delivery for Gateway {
    fn deliver<'a>(&'a self, m: &'a OutboxMessage, key: &'a str) -> Attempt<'a> {
        Box::pin(async move {
            let body = serde_json::json!({
                "id": key,
                "channel": m.channel.as_str(),
                "to": m.to,
                "subject": m.subject,
                "body": m.body,
                "about": m.about.map(|a| a.to_string()),
            })
            .to_string();
            let now = crate::domain::Timestamp::now().0 / 1000;
            let request = Request::post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .header("idempotency-key", key)
                .header(SIGNATURE_HEADER, sign(&self.secret, now, body.as_bytes()))
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| Failure::permanent(format!("{} is not a usable URL: {e}", self.url)))?;
            let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| Failure::retry(format!("{} did not answer within {ATTEMPT_TIMEOUT:?}", self.url)))?
                .map_err(|e| Failure::retry(format!("posting to {}: {e}", self.url)))?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let text = Limited::new(answer.into_body(), 2048)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
                .unwrap_or_default();
            let reason = format!("{} answered {status}: {text}", self.url);
            // A refusal of this message (4xx) will not change; a busy or
            // failing gateway (429, 5xx) may do better later.
            match status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                true => Err(Failure::permanent(reason)),
                false => Err(Failure::retry(reason)),
            }
        })
    }
}

/// Each channel's delivery.
pub struct Channels {
    email: Box<dyn Delivery>,
    sms: Box<dyn Delivery>,
    messenger: Box<dyn Delivery>,
}

impl Channels {
    /// The deliveries `config` describes; the log for a channel it leaves
    /// out.
    pub fn new(config: &DeliveryConfig) -> Result<Channels> {
        let gateway = |field: &str, config: &Option<GatewayConfig>| -> Result<Box<dyn Delivery>> {
            Ok(match config {
                Some(config) => Box::new(Gateway::new(field, config)?),
                None => Box::new(LogDelivery),
            })
        };
        Ok(Channels {
            email: match &config.email {
                Some(smtp) => Box::new(Smtp::new(smtp)?),
                None => Box::new(LogDelivery),
            },
            sms: gateway("sms", &config.sms)?,
            messenger: gateway("messenger", &config.messenger)?,
        })
    }

    pub fn of(&self, channel: Channel) -> &dyn Delivery {
        match channel {
            Channel::Email => &*self.email,
            Channel::Sms => &*self.sms,
            Channel::Messenger => &*self.messenger,
        }
    }
}
