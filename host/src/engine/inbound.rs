//! The calls outside services post to endpoints: each call is checked
//! (known endpoint, size, signature, idempotency key), handed to the
//! endpoint's trigger plugin in a fresh sandbox (or read as a form's
//! submission), and its hits fired. Every call is recorded, whatever became
//! of it, but for a form's submissions over its rate; a handled call's
//! record, its moves and its plugin's key-value writes commit in one
//! transaction. Making endpoints is `endpoints.rs`'s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::changes::{Firing, Trace};
use super::plugins::Handler;
use super::{Engine, EngineError, Result, Settings, stage};
use crate::domain::{
    CallRecord, CallStatus, Cause, Effect, Endpoint, Entity, EntityKind, EntityRef, FORM_SUBMITTED, FieldValue, Fields,
    FormSpec, Handling, HitRecord, HitTarget, InboundCall, SIGNATURE_HEADER, SignatureCheck, Submission, Timestamp,
    TriggerHit, Unmatched, Value, check_signature, read_submission,
};
use crate::storage::Tx;

/// A hit to fire: the entities it found, or the lead to make first (for an
/// unmatched lookup, or a form's submission), and the entities it may move.
struct Planned {
    hit: TriggerHit,
    found: Vec<EntityRef>,
    lead: Option<NewLead>,
    candidates: Vec<EntityRef>,
}

struct NewLead {
    id: u64,
    pipeline: String,
    fields: Fields,
}

impl NewLead {
    fn reference(&self) -> EntityRef {
        EntityRef {
            kind: EntityKind::Lead,
            id: self.id,
        }
    }
}

/// A trigger plugin's key-value writes, in its namespace.
struct Kv<'a> {
    namespace: &'a str,
    writes: Vec<Effect>,
}

/// Submissions a form takes from one address in a minute.
pub const FORM_SUBMISSIONS: u32 = 5;

/// Refused calls (unknown endpoint, too large, bad signature) recorded per
/// address in a minute; the rest are answered alike but only logged, so a
/// flood of bad calls writes nothing.
pub const REFUSALS_RECORDED: u32 = 20;

/// Counts each address's calls of each kind (a form's submissions, all
/// refusals) in the current minute.
#[derive(Default)]
pub(super) struct Limiter(Mutex<HashMap<(String, IpAddr), (i64, u32)>>);

impl Limiter {
    /// Whether one more call of kind `key` from `from` at `now` is within
    /// `limit` a minute.
    fn admit(&self, key: &str, from: IpAddr, now: Timestamp, limit: u32) -> bool {
        const MINUTE: i64 = 60_000;
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > 10_000 {
            counts.retain(|_, (since, _)| now.0 - *since < MINUTE);
        }
        let (since, count) = counts.entry((key.to_owned(), from)).or_insert((now.0, 0));
        if now.0 - *since >= MINUTE {
            (*since, *count) = (now.0, 0);
        }
        *count += 1;
        *count <= limit
    }
}

/// What reached an endpoint.
pub enum Arrival {
    Call(InboundCall),
    /// A body over the limit, not read past it.
    TooLarge {
        limit: u64,
    },
}

/// An idempotency key is kept as sent up to this many bytes, and as its
/// hash beyond.
const MAX_KEY: usize = 200;

fn idempotency_key(sent: &str) -> String {
    if sent.len() <= MAX_KEY {
        return sent.to_owned();
    }
    format!("sha256:{}", hex::encode(Sha256::digest(sent.as_bytes())))
}

/// A made lead's title when the hit's data gives none: what it was found
/// by, and where it came from.
fn lead_title(endpoint: &Endpoint, value: &Value) -> String {
    let from = match (&endpoint.spec.plugin, endpoint.spec.title.as_str()) {
        (Some(plugin), "") => plugin,
        (_, title) => title,
    };
    format!("{value} ({from})")
}

/// Why a signature did not hold, for the call's record.
fn signature_reason(check: &SignatureCheck) -> String {
    match check {
        SignatureCheck::Valid => "the signature holds".into(),
        SignatureCheck::Missing => {
            format!("the endpoint signs its calls and this one has no `{SIGNATURE_HEADER}` header")
        }
        SignatureCheck::Malformed => {
            format!("the `{SIGNATURE_HEADER}` header is not `t=<unix seconds>,v1=<hex HMAC-SHA256>`")
        }
        SignatureCheck::Stale { skew_s, tolerance_s } => format!(
            "the signature's time is {} s from the host's clock, more than the {tolerance_s} s allowed: a replayed call, or the sender's clock is off",
            skew_s.abs()
        ),
        SignatureCheck::Mismatch => {
            "no signature is the HMAC-SHA256 of `<t>.<body>` with the endpoint's secret: the secret or the body differ"
                .into()
        }
    }
}

impl Engine {
    /// Takes a call to endpoint `id` from address `from` and records it:
    /// refused (unknown endpoint, body too large, bad signature), a
    /// duplicate of a handled call, failed in its plugin, a form submission
    /// that is invalid or spam, or handled with its hits fired. A form's
    /// submissions over [`FORM_SUBMISSIONS`] a minute from one address are
    /// answered `rate-limited` and not recorded, and an address's refusals
    /// over [`REFUSALS_RECORDED`] a minute are answered and not recorded,
    /// so a flood writes nothing.
    pub async fn receive(self: &Arc<Self>, id: &str, arrival: Arrival, from: Option<IpAddr>) -> Result<CallRecord> {
        let record = self.take_call(id, arrival, from).await?;
        let labels = crate::metrics::CallLabels {
            status: record.status.as_str().into(),
        };
        crate::metrics::metrics().inbound_calls.get_or_create(&labels).inc();
        Ok(record)
    }

    async fn take_call(self: &Arc<Self>, id: &str, arrival: Arrival, from: Option<IpAddr>) -> Result<CallRecord> {
        let now = self.now();
        let mut record = CallRecord {
            id: 0,
            // An unknown id is recorded as sent, within reason.
            endpoint: id.chars().take(64).collect(),
            status: CallStatus::Handled,
            received_at: now,
            size: match &arrival {
                Arrival::Call(call) => call.body.len() as u64,
                Arrival::TooLarge { limit } => *limit,
            },
            reason: None,
            idempotency_key: None,
            original: None,
            signature: None,
            handling: None,
            hits: Vec::new(),
        };
        let refuse = async |record, status, reason| match from {
            Some(from) if !self.limiter.admit("", from, now, REFUSALS_RECORDED) => {
                tracing::debug!(%from, status = CallStatus::as_str(status), "a refused call over the rate is not recorded");
                Ok(CallRecord {
                    status,
                    reason: Some(reason),
                    ..record
                })
            }
            _ => self.refuse(record, status, reason).await,
        };
        let Some(endpoint) = self.store.endpoint(id).await? else {
            return refuse(record, CallStatus::UnknownEndpoint, "no endpoint has this id".into()).await;
        };
        let call = match arrival {
            Arrival::Call(call) => call,
            Arrival::TooLarge { limit } => {
                let reason = format!("the body is over the {limit} bytes an endpoint takes");
                return refuse(record, CallStatus::TooLarge, reason).await;
            }
        };
        if let Some(secret) = &endpoint.spec.secret {
            let check = check_signature(
                secret,
                call.header(SIGNATURE_HEADER),
                &call.body,
                now.0.div_euclid(1000),
            );
            let valid = check == SignatureCheck::Valid;
            let reason = signature_reason(&check);
            record.signature = Some(check);
            if !valid {
                return refuse(record, CallStatus::BadSignature, reason).await;
            }
        }
        record.idempotency_key = call.header(&endpoint.spec.idempotency_header).map(idempotency_key);
        if let Some(key) = &record.idempotency_key
            && let Some(original) = self.store.handled_call(&endpoint.id, key).await?
        {
            return self.duplicate(record, original).await;
        }

        match (&endpoint.spec.plugin, &endpoint.spec.form) {
            (_, Some(form)) => {
                if let Some(from) = from
                    && !self.limiter.admit(&endpoint.id, from, now, FORM_SUBMISSIONS)
                {
                    record.status = CallStatus::RateLimited;
                    record.reason = Some(format!(
                        "more than {FORM_SUBMISSIONS} submissions from {from} in a minute"
                    ));
                    return Ok(record);
                }
                self.submit(record, &endpoint, form, &call, now).await
            }
            (Some(plugin), None) => self.handle_call(record, &endpoint, plugin, call, now).await,
            (None, None) => Err(EngineError::Internal(format!("endpoint {} has no source", endpoint.id))),
        }
    }

    /// Hands a call to the endpoint's trigger plugin and fires its hits.
    async fn handle_call(
        self: &Arc<Self>,
        mut record: CallRecord,
        endpoint: &Endpoint,
        plugin_name: &str,
        call: InboundCall,
        now: Timestamp,
    ) -> Result<CallRecord> {
        let installed = match self.plugin(plugin_name) {
            Some(installed) if matches!(installed.handler, Handler::Trigger(_)) => installed,
            Some(_) => {
                let reason = format!("plugin `{plugin_name}` is a robot plugin, not a trigger plugin");
                return self.refuse(record, CallStatus::PluginUnavailable, reason).await;
            }
            None => {
                let reason = match self.broken(plugin_name) {
                    Some(broken) => format!("plugin `{plugin_name}` does not load: {}", broken.reason),
                    None => format!("plugin `{plugin_name}` is not installed"),
                };
                return self.refuse(record, CallStatus::PluginUnavailable, reason).await;
            }
        };
        let engine = self.clone();
        let context = self.context(plugin_name);
        let report = tokio::task::spawn_blocking(move || {
            let Handler::Trigger(plugin) = &installed.handler else {
                unreachable!("checked above")
            };
            let report = engine.sandbox.handle(plugin, &call, installed.grants.clone(), context);
            (report, installed.version.clone())
        })
        .await;
        let (report, version) = report.map_err(|e| EngineError::Internal(format!("handling a call panicked: {e}")))?;
        record.handling = Some(Handling {
            plugin: report.plugin,
            version,
            outcome: report.outcome.clone(),
            blame: report.blame,
            logs: report.logs,
            denials: report.denials,
            fuel_used: report.fuel_used,
            duration_us: report.duration.as_micros() as u64,
        });
        if !report.outcome.is_success() {
            let reason = format!("the plugin failed: {}", report.outcome);
            return self.refuse(record, CallStatus::PluginFailed, reason).await;
        }

        // Found first (a lead to make numbered), then made and moved in one
        // transaction with the record.
        let settings = self.settings();
        let mut planned = Vec::new();
        for hit in report.hits {
            let entities = self.found(&hit.target).await?;
            let lead = match (&hit.target, &endpoint.spec.unmatched) {
                (HitTarget::Lookup { code, value, .. }, Unmatched::CreateLead { pipeline }) if entities.is_empty() => {
                    let mut fields = hit.data.clone();
                    fields.insert(code.clone(), FieldValue::Single(value.clone()));
                    fields
                        .entry("TITLE".into())
                        .or_insert_with(|| FieldValue::Single(Value::Text(lead_title(endpoint, value))));
                    match self.plan_lead(&settings, pipeline, fields).await {
                        Ok(lead) => Some(lead),
                        Err(EngineError::Invalid { field, problem }) => {
                            let reason = format!("the lead the plugin's hit would make: field `{field}`: {problem}");
                            return self.refuse(record, CallStatus::PluginFailed, reason).await;
                        }
                        Err(other) => return Err(other),
                    }
                }
                _ => None,
            };
            let candidates = match &lead {
                Some(lead) => vec![lead.reference()],
                None => self.spread(&settings, &hit.trigger, entities.clone()).await?,
            };
            planned.push(Planned {
                hit,
                found: entities,
                lead,
                candidates,
            });
        }
        let kv = Kv {
            namespace: plugin_name,
            writes: report.kv,
        };
        self.commit_call(record, endpoint, planned, kv, now).await
    }

    /// Makes a lead of a form's submission and fires `form_submitted` on it.
    async fn submit(
        &self,
        record: CallRecord,
        endpoint: &Endpoint,
        form: &FormSpec,
        call: &InboundCall,
        now: Timestamp,
    ) -> Result<CallRecord> {
        let mut fields = match read_submission(form, call) {
            Ok(Submission::Lead(fields)) => fields,
            Ok(Submission::Spam) => {
                let reason = format!("the hidden field `{}` is filled, as only bots do", form.honeypot);
                return self.refuse(record, CallStatus::Spam, reason).await;
            }
            Err(reason) => return self.refuse(record, CallStatus::Invalid, reason).await,
        };
        let title = if endpoint.spec.title.is_empty() {
            "Web form"
        } else {
            &endpoint.spec.title
        };
        fields
            .entry("TITLE".into())
            .or_insert_with(|| FieldValue::Single(Value::Text(title.to_owned())));
        let lead = match self.plan_lead(&self.settings(), &form.pipeline, fields.clone()).await {
            Ok(lead) => lead,
            Err(EngineError::Invalid { field, problem }) => {
                let reason = format!("field `{field}`: {problem}");
                return self.refuse(record, CallStatus::Invalid, reason).await;
            }
            Err(other) => return Err(other),
        };
        let hit = TriggerHit {
            trigger: FORM_SUBMITTED.into(),
            target: HitTarget::Entity(lead.reference()),
            data: fields,
        };
        let candidates = vec![lead.reference()];
        let planned = vec![Planned {
            hit,
            found: Vec::new(),
            lead: Some(lead),
            candidates,
        }];
        let kv = Kv {
            namespace: "",
            writes: Vec::new(),
        };
        self.commit_call(record, endpoint, planned, kv, now).await
    }

    /// A lead to make, numbered now, made in the call's transaction.
    /// A lead to make, numbered; its custom fields conformed to their
    /// declarations, or the field that does not fit.
    async fn plan_lead(&self, settings: &Settings, pipeline: &str, mut fields: Fields) -> Result<NewLead> {
        settings.fields.conform_custom(EntityKind::Lead, &mut fields)?;
        let (_, custom) = stage::split_custom(fields.clone());
        settings.fields.check_required(EntityKind::Lead, &custom)?;
        Ok(NewLead {
            id: self.next_id(EntityKind::Lead).await?,
            pipeline: pipeline.to_owned(),
            fields,
        })
    }

    /// Makes the planned leads, records each hit on the timeline of the
    /// entities it found or made (`received`: a message is attached to the
    /// client it came from, whatever it moves) and fires it, makes the
    /// plugin's key-value writes and records the call as handled, in one
    /// transaction; or, when another call was handled with its idempotency
    /// key meanwhile, none of it.
    async fn commit_call(
        &self,
        mut record: CallRecord,
        endpoint: &Endpoint,
        planned: Vec<Planned>,
        kv: Kv<'_>,
        now: Timestamp,
    ) -> Result<CallRecord> {
        let settings = self.settings();
        let mut tx = self.store.begin().await?;
        for Planned {
            hit,
            mut found,
            lead,
            candidates,
        } in planned
        {
            let created = match lead {
                Some(lead) => {
                    let made = self
                        .create_lead(&mut tx, &settings, lead, &endpoint.id, &hit, now)
                        .await?;
                    found.push(made);
                    Some(made)
                }
                None => None,
            };
            let received = json!({ "code": hit.trigger, "endpoint": endpoint.id, "data": hit.data });
            for r in found {
                tx.insert_event(r, "received", &received, now);
            }
            let firing = Firing::of(&settings, &hit.trigger, &hit.data, Trace::Ignored);
            let fired = self.fire(&mut tx, &settings, &firing, &candidates, now).await?;
            record.hits.push(HitRecord {
                trigger: hit.trigger,
                target: hit.target,
                data: hit.data,
                created,
                fired,
            });
        }
        for effect in kv.writes {
            match effect {
                Effect::KvSet { key, value } => tx.kv_set(kv.namespace, &key, Some(&value)).await?,
                Effect::KvDelete { key } => tx.kv_set(kv.namespace, &key, None).await?,
                _ => {}
            }
        }
        match tx.record_handled_call(&record).await? {
            Some(id) => {
                tx.commit().await?;
                self.wake.notify_waiters();
                record.id = id;
                Ok(record)
            }
            None => {
                // Another call with this key was handled meanwhile: this
                // one's moves are dropped with the transaction.
                drop(tx);
                record.hits.clear();
                let key = record.idempotency_key.as_deref().unwrap_or_default();
                let original = self.store.handled_call(&endpoint.id, key).await?.unwrap_or_default();
                self.duplicate(record, original).await
            }
        }
    }

    /// Makes a planned lead at the first stage of its pipeline, in `tx`;
    /// the robots queued there see the hit's data as `{=Event.X}`.
    async fn create_lead(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        new: NewLead,
        endpoint: &str,
        hit: &TriggerHit,
        now: Timestamp,
    ) -> Result<EntityRef> {
        let mut lead = Entity {
            kind: EntityKind::Lead,
            id: new.id,
            pipeline: None,
            stage: None,
            responsible: None,
            fields: Fields::new(),
            custom_fields: Fields::new(),
            created_at: now,
            updated_at: now,
        };
        (lead.fields, lead.custom_fields) = stage::split_custom(new.fields);
        tx.insert_event(lead.reference(), "created", &json!({ "endpoint": endpoint }), now);
        let (pipeline, first) = stage::target(settings, EntityKind::Lead, &new.pipeline, None)?;
        let mut entry = None;
        let cause = Cause::Trigger {
            code: hit.trigger.clone(),
            data: hit.data.clone(),
        };
        stage::enter(
            tx,
            settings,
            &mut lead,
            &mut entry,
            &pipeline,
            &first,
            Some(cause),
            stage::By::Host,
            now,
        )
        .await?;
        tx.put_entity(&lead, entry).await?;
        Ok(lead.reference())
    }

    /// Forgets the records of calls older than `[engine] keep-calls-days`
    /// (and with them the idempotency keys they hold); returns how many.
    pub async fn forget_old_calls(&self) -> Result<u64> {
        const DAY: i64 = 86_400_000;
        let before = Timestamp(self.now().0 - i64::from(self.config.keep_calls_days) * DAY);
        let forgotten = self.store.forget_calls(before).await?;
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                days = self.config.keep_calls_days,
                "forgot old inbound calls"
            );
        }
        Ok(forgotten)
    }

    async fn refuse(&self, mut record: CallRecord, status: CallStatus, reason: String) -> Result<CallRecord> {
        tracing::info!(endpoint = %record.endpoint, status = status.as_str(), %reason, "an inbound call changed nothing");
        record.status = status;
        record.reason = Some(reason);
        record.id = self.store.record_call(&record).await?;
        Ok(record)
    }

    async fn duplicate(&self, mut record: CallRecord, original: u64) -> Result<CallRecord> {
        record.original = Some(original);
        let reason = format!("call {original} was handled with this idempotency key; nothing was done again");
        self.refuse(record, CallStatus::Duplicate, reason).await
    }
}
