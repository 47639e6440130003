//! The rows a transaction writes only at commit: appended or replaced rows
//! (entities, stage entries, runs, events, comments, notifications,
//! messages) wait here and go out as one multi-row statement per table and
//! chunk, so a batch of a hundred changes costs a handful of statements.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use super::super::{Backend, NewRun, Result, to_json};
use super::{MAX_BINDS, Tx};
use crate::domain::{Entity, EntityRef, Message, Timestamp};

/// An entity the transaction holds, with its current stage entry.
pub(super) struct Held {
    pub(super) entity: Entity,
    pub(super) entry: Option<u64>,
    pub(super) changed: bool,
}

pub(super) struct EntryRow {
    pub(super) target: EntityRef,
    pub(super) entry: u64,
    pub(super) pipeline: String,
    pub(super) stage: String,
    pub(super) entered_at: Timestamp,
    pub(super) left_at: Option<Timestamp>,
}

pub(super) struct EventRow {
    pub(super) target: EntityRef,
    pub(super) event: String,
    pub(super) data: String,
    pub(super) at: Timestamp,
}

pub(super) struct CommentRow {
    pub(super) target: EntityRef,
    pub(super) text: String,
    pub(super) run_id: Option<u64>,
    pub(super) at: Timestamp,
}

pub(super) struct MessageRow {
    pub(super) message: Message,
    pub(super) run_id: Option<u64>,
    pub(super) at: Timestamp,
    pub(super) token: Option<String>,
}

pub(super) struct NotificationRow {
    pub(super) user: u64,
    pub(super) text: String,
    pub(super) about: Option<EntityRef>,
    pub(super) run_id: Option<u64>,
    pub(super) at: Timestamp,
}

/// Rows written at commit, and the entities the transaction holds.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) entities: BTreeMap<EntityRef, Held>,
    pub(super) entries: Vec<EntryRow>,
    pub(super) events: Vec<EventRow>,
    pub(super) runs: Vec<NewRun>,
    pub(super) comments: Vec<CommentRow>,
    pub(super) notifications: Vec<NotificationRow>,
    pub(super) messages: Vec<MessageRow>,
}

impl Tx {
    /// Writes the waiting rows: one statement per table and chunk.
    pub(super) async fn flush(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let entities: Vec<&Held> = pending.entities.values().filter(|h| h.changed).collect();
        for chunk in entities.chunks(MAX_BINDS / 10) {
            let json: Vec<(String, String)> = chunk
                .iter()
                .map(|h| (to_json(&h.entity.fields), to_json(&h.entity.custom_fields)))
                .collect();
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO entities (kind, id, pipeline, stage, entry_id, responsible, fields, custom_fields, created_at, updated_at) ",
                );
                q.push_values(chunk.iter().zip(&json), |mut b, (h, (fields, custom))| {
                    let e = &h.entity;
                    b.push_bind(e.kind.as_str())
                        .push_bind(e.id as i64)
                        .push_bind(e.pipeline.as_deref())
                        .push_bind(e.stage.as_deref())
                        .push_bind(h.entry.map(|x| x as i64))
                        .push_bind(e.responsible.map(|u| u as i64))
                        .push_bind(fields.as_str())
                        .push_bind(custom.as_str())
                        .push_bind(e.created_at.0)
                        .push_bind(e.updated_at.0);
                });
                q.push(
                    " ON CONFLICT (kind, id) DO UPDATE SET pipeline = excluded.pipeline, stage = excluded.stage, \
                     entry_id = excluded.entry_id, responsible = excluded.responsible, fields = excluded.fields, \
                     custom_fields = excluded.custom_fields, updated_at = excluded.updated_at",
                );
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.entries.chunks(MAX_BINDS / 7) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO stage_entries (kind, entity_id, entry, pipeline, stage, entered_at, left_at) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.target.kind.as_str())
                        .push_bind(e.target.id as i64)
                        .push_bind(e.entry as i64)
                        .push_bind(e.pipeline.as_str())
                        .push_bind(e.stage.as_str())
                        .push_bind(e.entered_at.0)
                        .push_bind(e.left_at.map(|t| t.0));
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.runs.chunks(MAX_BINDS / 10) {
            let causes: Vec<String> = chunk.iter().map(|r| to_json(&r.cause)).collect();
            let reports: Vec<Option<String>> = chunk.iter().map(|r| r.report.as_ref().map(to_json)).collect();
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO runs (entry_id, robot_id, kind, entity_id, status, cause, due_at, created_at, finished_at, report) ",
                );
                q.push_values(chunk.iter().zip(&causes).zip(&reports), |mut b, ((r, cause), report)| {
                    b.push_bind(r.entry_id as i64)
                        .push_bind(r.robot_id as i64)
                        .push_bind(r.entity.kind.as_str())
                        .push_bind(r.entity.id as i64)
                        .push_bind(r.status.as_str())
                        .push_bind(cause.as_str())
                        .push_bind(r.due_at.0)
                        .push_bind(r.created_at.0)
                        .push_bind(r.finished_at.map(|t| t.0))
                        .push_bind(report.as_deref());
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.events.chunks(MAX_BINDS / 5) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new("INSERT INTO events (kind, entity_id, event, data, at) ");
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.target.kind.as_str())
                        .push_bind(e.target.id as i64)
                        .push_bind(e.event.as_str())
                        .push_bind(e.data.as_str())
                        .push_bind(e.at.0);
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.comments.chunks(MAX_BINDS / 5) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new("INSERT INTO timeline (kind, entity_id, text, run_id, at) ");
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(c.target.kind.as_str())
                        .push_bind(c.target.id as i64)
                        .push_bind(c.text.as_str())
                        .push_bind(c.run_id.map(|r| r as i64))
                        .push_bind(c.at.0);
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.notifications.chunks(MAX_BINDS / 6) {
            on!(&mut self.conn, t => {
                let mut q =
                    QueryBuilder::new("INSERT INTO notifications (user_id, text, about_kind, about_id, run_id, at) ");
                q.push_values(chunk, |mut b, n| {
                    b.push_bind(n.user as i64)
                        .push_bind(n.text.as_str())
                        .push_bind(n.about.map(|a| a.kind.as_str()))
                        .push_bind(n.about.map(|a| a.id as i64))
                        .push_bind(n.run_id.map(|r| r as i64))
                        .push_bind(n.at.0);
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        for chunk in pending.messages.chunks(MAX_BINDS / 11) {
            on!(&mut self.conn, t => {
                let mut q = QueryBuilder::new(
                    "INSERT INTO outbox (channel, recipient, subject, body, about_kind, about_id, run_id, status, created_at, due_at, token) ",
                );
                q.push_values(chunk, |mut b, m| {
                    let about = m.message.about;
                    b.push_bind(m.message.channel.as_str())
                        .push_bind(m.message.to.as_str())
                        .push_bind(m.message.subject.as_deref())
                        .push_bind(m.message.body.as_str())
                        .push_bind(about.map(|a| a.kind.as_str()))
                        .push_bind(about.map(|a| a.id as i64))
                        .push_bind(m.run_id.map(|r| r as i64))
                        .push_bind("queued")
                        .push_bind(m.at.0)
                        .push_bind(m.at.0)
                        .push_bind(m.token.as_deref());
                });
                q.build().execute(&mut **t).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}
