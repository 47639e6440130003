//! Delivering the outbox: messages robots sent to clients (email, SMS,
//! messenger) wait in the outbox until a [`Delivery`] takes them. The
//! default delivery writes each message to the log, so a portal without a
//! provider still shows what was sent (`GET /api/outbox`).
//!
//! A message is marked sent when it is taken, so it is delivered at most
//! once even with several processes; a delivery that fails marks it failed
//! with the reason. An email is delivered tracked (see
//! [`crate::domain::tracked`]): its opens and clicks come back through
//! [`Engine::email_opened`] and [`Engine::link_clicked`].

use super::{Engine, Result};
use crate::domain::{EMAIL_OPENED, FieldValue, Fields, HitTarget, LINK_CLICKED, Value, links, tracked};
use crate::storage::OutboxMessage;

/// Hands messages to a provider.
pub trait Delivery: Send + Sync {
    /// Delivers one message, or says why it could not.
    fn deliver(&self, message: &OutboxMessage) -> Result<(), String>;
}

/// Writes each message to the log.
pub struct LogDelivery;

impl Delivery for LogDelivery {
    fn deliver(&self, m: &OutboxMessage) -> Result<(), String> {
        tracing::info!(
            id = m.id,
            channel = m.channel.as_str(),
            to = %m.to,
            subject = m.subject.as_deref().unwrap_or(""),
            body = %m.body,
            "message delivered to the log"
        );
        Ok(())
    }
}

impl Engine {
    /// Delivers pending messages; returns how many were taken.
    pub async fn deliver_outbox(&self) -> Result<usize> {
        if !self.store.outbox_pending().await? {
            return Ok(0);
        }
        let taken = self.store.take_outbox(self.now(), 100).await?;
        let count = taken.len();
        for mut message in taken {
            if let Some(token) = &message.token {
                message.body = tracked(&message.body, &self.config.public_url, token);
            }
            if let Err(error) = self.delivery.deliver(&message) {
                self.store.outbox_failed(message.id, &error).await?;
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
