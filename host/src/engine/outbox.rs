//! Delivering the outbox: messages robots sent to clients (email, SMS,
//! messenger) wait in the outbox, a leased queue. A worker leases the
//! messages due, hands each to its channel's delivery (see [`delivery`])
//! and records what came of it: sent; failed and queued again, after a
//! backoff that doubles, until its last attempt; or failed for good, with
//! the reason, which the API shows (`GET /api/outbox`).
//!
//! A host that dies while delivering loses nothing: the lease runs out and
//! another host tries the message again, with the same idempotency key, so
//! a provider that honours the key delivers it once. An attempt's outcome
//! is kept only if the message was not leased again meanwhile. An email is
//! delivered tracked (see [`crate::domain::tracked`]): its opens and clicks
//! come back through [`Engine::email_opened`] and [`Engine::link_clicked`].
//!
//! [`delivery`]: super::delivery

use super::{Engine, Result};
use crate::domain::{EMAIL_OPENED, FieldValue, Fields, HitTarget, LINK_CLICKED, Timestamp, Value, links, tracked};
use crate::storage::{Attempted, OutboxMessage};

/// Messages leased at once: few enough that a slow provider delivers them
/// all well within the lease.
const BATCH: u32 = 16;

/// The key every attempt at a message carries: the same for each, and
/// different for every message a portal ever sends.
fn idempotency_key(message: &OutboxMessage) -> String {
    format!("robohost-{}-{}", message.created_at.0, message.id)
}

impl Engine {
    /// Makes one attempt at each message due; returns how many were tried.
    pub async fn deliver_outbox(&self) -> Result<usize> {
        let now = self.now();
        if !self.store.outbox_due(now).await? {
            return Ok(0);
        }
        let until = Timestamp(now.0 + self.config.lease_ms);
        let leased = self.store.lease_outbox(now, until, BATCH).await?;
        let count = leased.len();
        for mut message in leased {
            if let Some(token) = &message.token {
                message.body = tracked(&message.body, &self.config.public_url, token);
            }
            let key = idempotency_key(&message);
            let delivered = self.delivery.of(message.channel).deliver(&message, &key).await;
            let config = &self.config.delivery;
            let outcome = match &delivered {
                Ok(()) => Attempted::Sent { at: self.now() },
                Err(failure) if failure.permanent || message.attempts >= config.max_attempts => {
                    Attempted::Failed { error: &failure.reason }
                }
                Err(failure) => {
                    let backoff = config.backoff_ms.saturating_mul(1 << (message.attempts - 1).min(20));
                    Attempted::Retry {
                        at: Timestamp(self.now().0.saturating_add(backoff)),
                        error: &failure.reason,
                    }
                }
            };
            let kept = self
                .store
                .outbox_attempted(message.id, message.attempts, outcome)
                .await?;
            let result = match outcome {
                Attempted::Sent { .. } => "sent",
                Attempted::Retry { .. } => "retry",
                Attempted::Failed { .. } => "failed",
            };
            let labels = crate::metrics::DeliveryLabels {
                channel: message.channel.as_str().into(),
                status: result.into(),
            };
            crate::metrics::metrics().deliveries.get_or_create(&labels).inc();
            let (id, attempt, channel, to) = (message.id, message.attempts, message.channel.as_str(), &message.to);
            match (&outcome, kept) {
                (_, false) => tracing::warn!(
                    id,
                    attempt,
                    "a delivery outlived its lease; the later attempt's outcome stands"
                ),
                (Attempted::Sent { .. }, true) => tracing::info!(id, attempt, channel, %to, "message delivered"),
                (Attempted::Retry { at, error }, true) => {
                    tracing::warn!(id, attempt, channel, %to, %error, retry_at = %at, "delivering a message failed; it will be tried again")
                }
                (Attempted::Failed { error }, true) => {
                    tracing::error!(id, attempt, channel, %to, %error, "delivering a message failed for good")
                }
            }
        }
        Ok(count)
    }

    /// An email's open-tracking image was loaded: fires `email_opened` on
    /// what it was about. Whether the token is an email's.
    pub async fn email_opened(&self, token: &str) -> Result<bool> {
        let Some(message) = self.store.message_by_token(token).await? else {
            return Ok(false);
        };
        self.tracked_event(&message, EMAIL_OPENED, None).await?;
        Ok(true)
    }

    /// A link of an email was followed: fires `link_clicked` on what it was
    /// about, and answers where to send the reader, the `n`-th link the
    /// email holds; none for a token or link the host did not send.
    pub async fn link_clicked(&self, token: &str, n: usize) -> Result<Option<String>> {
        let Some(message) = self.store.message_by_token(token).await? else {
            return Ok(None);
        };
        let Some(link) = links(&message.body).get(n).map(|l| l.to_string()) else {
            return Ok(None);
        };
        self.tracked_event(&message, LINK_CLICKED, Some(&link)).await?;
        Ok(Some(link))
    }

    async fn tracked_event(&self, message: &OutboxMessage, code: &str, link: Option<&str>) -> Result<()> {
        let Some(about) = message.about else {
            return Ok(());
        };
        let text = |s: &str| FieldValue::Single(Value::Text(s.into()));
        let mut data = Fields::from([
            ("MESSAGE".into(), FieldValue::Single(Value::Integer(message.id as i64))),
            ("EMAIL".into(), text(&message.to)),
        ]);
        if let Some(link) = link {
            data.insert("URL".into(), text(link));
        }
        self.fire_trigger(code, &HitTarget::Entity(about), &data).await?;
        Ok(())
    }
}
