//! Endpoints and the calls posted to them.

use super::{Backend, Result, Store, Tx, from_json, to_json};
use crate::domain::{CallRecord, CallStatus, Endpoint, Timestamp};

type EndpointRow = (String, String, i64);

fn endpoint((id, spec, created_at): EndpointRow) -> Result<Endpoint> {
    Ok(Endpoint {
        id,
        spec: from_json("endpoint", &spec)?,
        created_at: Timestamp(created_at),
    })
}

fn call((id, record): (i64, String)) -> Result<CallRecord> {
    Ok(CallRecord {
        id: id as u64,
        ..from_json("inbound call", &record)?
    })
}

impl Store {
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let rows: Vec<EndpointRow> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec, created_at FROM endpoints ORDER BY created_at, id").fetch_all(c).await)?;
        rows.into_iter().map(endpoint).collect()
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        let row: Option<EndpointRow> = on!(&*self.db, c => sqlx::query_as("SELECT id, spec, created_at FROM endpoints WHERE id = $1").bind(id).fetch_optional(c).await)?;
        row.map(endpoint).transpose()
    }

    pub async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let spec = to_json(&endpoint.spec);
        on!(&*self.writer, c => sqlx::query("INSERT INTO endpoints (id, plugin, spec, created_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (id) DO UPDATE SET plugin = excluded.plugin, spec = excluded.spec")
            .bind(&endpoint.id).bind(endpoint.spec.plugin.as_deref().unwrap_or("")).bind(&spec).bind(endpoint.created_at.0).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Deletes an endpoint; its calls stay recorded. Whether it existed.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let n = on!(&*self.writer, c => sqlx::query("DELETE FROM endpoints WHERE id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The endpoints a plugin handles.
    pub async fn endpoints_of(&self, plugin: &str) -> Result<Vec<String>> {
        Ok(
            on!(&*self.db, c => sqlx::query_scalar("SELECT id FROM endpoints WHERE plugin = $1 ORDER BY id").bind(plugin).fetch_all(c).await)?,
        )
    }

    /// Records a call that changed nothing (refused, failed, a duplicate).
    pub async fn record_call(&self, record: &CallRecord) -> Result<u64> {
        let text = to_json(record);
        let id: i64 = on!(&*self.writer, c => sqlx::query_scalar("INSERT INTO inbound_calls (endpoint, status, idempotency, received_at, record) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(&record.endpoint).bind(record.status.as_str()).bind(&record.idempotency_key).bind(record.received_at.0).bind(&text).fetch_one(c).await)?;
        Ok(id as u64)
    }

    /// The call handled with an idempotency key at an endpoint, if any.
    pub async fn handled_call(&self, endpoint: &str, key: &str) -> Result<Option<u64>> {
        let id: Option<i64> = on!(&*self.db, c => sqlx::query_scalar("SELECT id FROM inbound_calls WHERE endpoint = $1 AND idempotency = $2 AND status = 'handled'")
            .bind(endpoint).bind(key).fetch_optional(c).await)?;
        Ok(id.map(|id| id as u64))
    }

    /// Calls, newest first: to one endpoint (or an unknown id) when given,
    /// with one status when given.
    pub async fn calls(
        &self,
        endpoint: Option<&str>,
        status: Option<CallStatus>,
        limit: u32,
    ) -> Result<Vec<CallRecord>> {
        let rows: Vec<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, record FROM inbound_calls \
            WHERE ($1 = '' OR endpoint = $1) AND ($2 = '' OR status = $2) ORDER BY id DESC LIMIT $3")
            .bind(endpoint.unwrap_or("")).bind(status.map_or("", CallStatus::as_str)).bind(limit as i64).fetch_all(c).await)?;
        rows.into_iter().map(call).collect()
    }

    /// Forgets the calls received before `before`; returns how many.
    pub async fn forget_calls(&self, before: Timestamp) -> Result<u64> {
        Ok(
            on!(&*self.writer, c => sqlx::query("DELETE FROM inbound_calls WHERE received_at < $1")
            .bind(before.0).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    pub async fn call(&self, id: u64) -> Result<Option<CallRecord>> {
        let row: Option<(i64, String)> = on!(&*self.db, c => sqlx::query_as("SELECT id, record FROM inbound_calls WHERE id = $1").bind(id as i64).fetch_optional(c).await)?;
        row.map(call).transpose()
    }
}

impl Tx {
    /// Records a handled call with the changes its hits made. `None` when
    /// another call was already handled with its idempotency key: the
    /// transaction must then be dropped, so the changes are not made twice.
    pub async fn record_handled_call(&mut self, record: &CallRecord) -> Result<Option<u64>> {
        debug_assert_eq!(record.status, CallStatus::Handled);
        let text = to_json(record);
        let id: Option<i64> = on!(&mut self.conn, t => sqlx::query_scalar("INSERT INTO inbound_calls (endpoint, status, idempotency, received_at, record) VALUES ($1, $2, $3, $4, $5) \
            ON CONFLICT (endpoint, idempotency) WHERE status = 'handled' AND idempotency IS NOT NULL DO NOTHING RETURNING id")
            .bind(&record.endpoint).bind(record.status.as_str()).bind(&record.idempotency_key).bind(record.received_at.0).bind(&text).fetch_optional(&mut **t).await)?;
        Ok(id.map(|id| id as u64))
    }
}
