//! Endpoints and the calls outside services post to them: each call is
//! checked (known endpoint, size, signature, idempotency key), handed to the
//! endpoint's trigger plugin in a fresh sandbox, and its hits fired. Every
//! call is recorded, whatever became of it; a handled call's record, its
//! moves and its plugin's key-value writes commit in one transaction.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::changes::{Firing, Trace};
use super::plugins::Handler;
use super::{Engine, EngineError, Result, Settings, invalid, stage};
use crate::domain::{
    CallRecord, CallStatus, Effect, Endpoint, EndpointSpec, Entity, EntityKind, EntityRef, FieldValue, Fields,
    Handling, HitRecord, HitTarget, InboundCall, SIGNATURE_HEADER, SignatureCheck, Timestamp, Unmatched, Value,
    check_signature,
};
use crate::storage::Tx;

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

/// A new endpoint secret: 32 random bytes, in hex, with a prefix that
/// tells it apart from an API token.
pub fn new_secret() -> Result<String> {
    Ok(format!("whsec_{}", random_hex(32)?))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| EngineError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

fn idempotency_key(sent: &str) -> String {
    if sent.len() <= MAX_KEY {
        return sent.to_owned();
    }
    format!("sha256:{}", hex::encode(Sha256::digest(sent.as_bytes())))
}

/// A made lead's title when the hit's data gives none: what it was found
/// by, and where it came from.
fn lead_title(endpoint: &Endpoint, value: &Value) -> String {
    let from = if endpoint.spec.title.is_empty() {
        &endpoint.spec.plugin
    } else {
        &endpoint.spec.title
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
    /// Checks what an endpoint's settings name: a trigger plugin that is
    /// installed, a secret long enough, a header name.
    fn check_endpoint(&self, spec: &EndpointSpec) -> Result<()> {
        match self.plugin(&spec.plugin).as_deref().map(|i| &i.handler) {
            Some(Handler::Trigger(_)) => {}
            Some(_) => {
                let problem = format!(
                    "`{}` is a robot plugin; an endpoint needs a trigger plugin",
                    spec.plugin
                );
                return Err(invalid("plugin", problem));
            }
            None if self.broken(&spec.plugin).is_some() => {
                let problem = format!("plugin `{}` is installed but does not load", spec.plugin);
                return Err(invalid("plugin", problem));
            }
            None => {
                let problem = format!("no plugin `{}` is installed; install its package first", spec.plugin);
                return Err(invalid("plugin", problem));
            }
        }
        if let Unmatched::CreateLead { pipeline } = &spec.unmatched {
            stage::target(&self.settings(), EntityKind::Lead, pipeline, None)
                .map_err(|e| invalid("unmatched.pipeline", e.to_string()))?;
        }
        if spec.secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(invalid("secret", "a secret is at least 16 characters"));
        }
        let header = &spec.idempotency_header;
        if header.is_empty()
            || header.len() > 100
            || !header
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let problem = format!("`{header}` is not a header name in lower case, such as `idempotency-key`");
            return Err(invalid("idempotency-header", problem));
        }
        Ok(())
    }

    /// Creates an endpoint with an unguessable id (128 random bits).
    pub async fn add_endpoint(&self, spec: EndpointSpec) -> Result<Endpoint> {
        self.check_endpoint(&spec)?;
        let endpoint = Endpoint {
            id: random_hex(16)?,
            spec,
            created_at: self.now(),
        };
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Changes an endpoint's settings; its id stays.
    pub async fn update_endpoint(&self, id: &str, spec: EndpointSpec) -> Result<Endpoint> {
        let found = self.store.endpoint(id).await?.ok_or_else(|| EngineError::NotFound {
            what: format!("endpoint `{id}`"),
        })?;
        self.check_endpoint(&spec)?;
        let endpoint = Endpoint { spec, ..found };
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    pub async fn remove_endpoint(&self, id: &str) -> Result<()> {
        if !self.store.delete_endpoint(id).await? {
            return Err(EngineError::NotFound {
                what: format!("endpoint `{id}`"),
            });
        }
        Ok(())
    }

    /// Takes a call to endpoint `id` and records it: refused (unknown
    /// endpoint, body too large, bad signature), a duplicate of a handled
    /// call, failed in its plugin, or handled with its hits fired.
    pub async fn receive(self: &Arc<Self>, id: &str, arrival: Arrival) -> Result<CallRecord> {
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
        let Some(endpoint) = self.store.endpoint(id).await? else {
            return self
                .refuse(record, CallStatus::UnknownEndpoint, "no endpoint has this id".into())
                .await;
        };
        let call = match arrival {
            Arrival::Call(call) => call,
            Arrival::TooLarge { limit } => {
                let reason = format!("the body is over the {limit} bytes an endpoint takes");
                return self.refuse(record, CallStatus::TooLarge, reason).await;
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
                return self.refuse(record, CallStatus::BadSignature, reason).await;
            }
        }
        record.idempotency_key = call.header(&endpoint.spec.idempotency_header).map(idempotency_key);
        if let Some(key) = &record.idempotency_key
            && let Some(original) = self.store.handled_call(&endpoint.id, key).await?
        {
            return self.duplicate(record, original).await;
        }

        let plugin_name = &endpoint.spec.plugin;
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
        let mut found = Vec::new();
        for hit in report.hits {
            let entities = self.found(&hit.target).await?;
            let lead = match (&hit.target, &endpoint.spec.unmatched) {
                (HitTarget::Lookup { code, value, .. }, Unmatched::CreateLead { pipeline }) if entities.is_empty() => {
                    let id = self.next_id(EntityKind::Lead).await?;
                    let mut fields = hit.data.clone();
                    fields.insert(code.clone(), FieldValue::Single(value.clone()));
                    fields
                        .entry("TITLE".into())
                        .or_insert_with(|| FieldValue::Single(Value::Text(lead_title(&endpoint, value))));
                    Some((id, pipeline.clone(), fields))
                }
                _ => None,
            };
            let candidates = match &lead {
                Some((id, ..)) => vec![EntityRef {
                    kind: EntityKind::Lead,
                    id: *id,
                }],
                None => self.spread(&settings, &hit.trigger, entities).await?,
            };
            found.push((hit, lead, candidates));
        }
        let mut tx = self.store.begin().await?;
        for (hit, lead, candidates) in found {
            let created = match lead {
                Some((id, pipeline, fields)) => Some(
                    self.create_lead(&mut tx, &settings, id, &pipeline, fields, &endpoint.id, now)
                        .await?,
                ),
                None => None,
            };
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
        for effect in report.kv {
            match effect {
                Effect::KvSet { key, value } => tx.kv_set(plugin_name, &key, Some(&value)).await?,
                Effect::KvDelete { key } => tx.kv_set(plugin_name, &key, None).await?,
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

    /// Makes the lead an unmatched hit asks for, at the first stage of
    /// `pipeline` (its robots queued), in `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn create_lead(
        &self,
        tx: &mut Tx,
        settings: &Settings,
        id: u64,
        pipeline: &str,
        fields: Fields,
        endpoint: &str,
        now: Timestamp,
    ) -> Result<EntityRef> {
        let mut lead = Entity {
            kind: EntityKind::Lead,
            id,
            pipeline: None,
            stage: None,
            responsible: None,
            fields: Fields::new(),
            custom_fields: Fields::new(),
            created_at: now,
            updated_at: now,
        };
        (lead.fields, lead.custom_fields) = stage::split_custom(fields);
        tx.insert_event(
            lead.reference(),
            "created",
            &serde_json::json!({ "endpoint": endpoint }),
            now,
        );
        let (pipeline, first) = stage::target(settings, EntityKind::Lead, pipeline, None)?;
        let mut entry = None;
        stage::enter(tx, settings, &mut lead, &mut entry, &pipeline, &first, None, now).await?;
        tx.put_entity(&lead, entry).await?;
        Ok(lead.reference())
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

/// A trigger code an admin may put on a stage, and where it comes from.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CatalogTrigger {
    pub code: String,
    #[schema(value_type = Object, example = json!({"en": "Incoming call", "ru": "Входящий звонок"}))]
    pub names: crate::domain::Localized,
    #[schema(value_type = Object)]
    pub descriptions: crate::domain::Localized,
    /// The trigger plugin that describes it; absent for the host's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

impl Engine {
    /// Every trigger code with a source: the host's own (`updated`) and
    /// those the installed trigger plugins describe, by code.
    pub fn trigger_catalog(&self) -> Vec<CatalogTrigger> {
        let localized = |pairs: [(&str, &str); 2]| pairs.iter().map(|(l, t)| (l.to_string(), t.to_string())).collect();
        let mut catalog = vec![CatalogTrigger {
            code: super::UPDATED.into(),
            names: localized([("en", "Fields changed"), ("ru", "Изменение полей")]),
            descriptions: localized([
                (
                    "en",
                    "A user changed the entity's fields: with a condition, moves it once a field reaches a value.",
                ),
                (
                    "ru",
                    "Пользователь изменил поля элемента: с условием переводит его, когда поле достигло значения.",
                ),
            ]),
            plugin: None,
        }];
        let plugins = self.plugins.read().unwrap_or_else(|e| e.into_inner());
        for (name, installed) in plugins.iter() {
            if let Handler::Trigger(plugin) = &installed.handler {
                catalog.extend(plugin.triggers().iter().map(|t| CatalogTrigger {
                    code: t.code.clone(),
                    names: t.names.clone(),
                    descriptions: t.descriptions.clone(),
                    plugin: Some(name.clone()),
                }));
            }
        }
        catalog.sort_by(|a, b| (&a.code, &a.plugin).cmp(&(&b.code, &b.plugin)));
        catalog
    }
}
