//! Delivering the outbox: messages robots sent to clients (email, SMS,
//! messenger) wait in the outbox until a [`Delivery`] takes them. The
//! default delivery writes each message to the log, so a portal without a
//! provider still shows what was sent (`GET /api/outbox`).
//!
//! A message is marked sent when it is taken, so it is delivered at most
//! once even with several processes; a delivery that fails marks it failed
//! with the reason.

use super::{Engine, Result};
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
        for message in &taken {
            if let Err(error) = self.delivery.deliver(message) {
                self.store.outbox_failed(message.id, &error).await?;
            }
        }
        Ok(taken.len())
    }
}
