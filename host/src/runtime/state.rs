//! The state of one run, and the host side of every interface a robot imports.
//!
//! Each host call is charged to the run's [`Budget`], then checks its
//! capability; a refused call returns `host-error.denied` to the guest,
//! which may handle it, and is recorded. Effects and key-value writes are
//! only buffered here, each charged to the budget as it is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::SandboxConfig;
use super::bindings::robohost::robot::{calendar, crm, effects, kv, log};
use super::bindings::{BadValue, fields_in, wit};
pub use super::budget::OutputLimitHit;
use super::budget::{Budget, HostCallLimitHit, json_size};
use super::data::{CrmData, DataError};
use super::http::HttpHooks;
use super::limiter::RunLimiter;
use super::outcome::{Denial, Denied, LogLevel, LogLine};
use super::output::OutputPipe;
pub use crate::domain::Grants;
use crate::domain::{
    Calendar, Capability, Channel, Effect, EntityKind, EntityRef, Message, NewEntity, Timestamp, Value,
};

/// A failure of the host while serving a call; ends the run, blaming the host.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostFault(pub String);

/// What a run may read: the data port, the calendar and the plugin's
/// key-value namespace.
#[derive(Clone)]
pub struct RunContext {
    pub data: Arc<dyn CrmData>,
    pub calendar: Arc<Calendar>,
    pub kv_namespace: Arc<str>,
}

pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: RunLimiter,
    stdout: OutputPipe,
    stderr: OutputPipe,
    grants: Grants,
    context: RunContext,
    budget: Arc<Budget>,
    max_effects: usize,
    kv_value_bytes: usize,
    pub(super) effects: Vec<Effect>,
    /// Key-value writes of this run, so its reads see them.
    kv_writes: BTreeMap<String, Option<Vec<u8>>>,
    pub(super) logs: Vec<LogLine>,
    pub(super) denials: Vec<Denial>,
    /// Whether the guest was instantiated and called: an error after that
    /// is the guest's unless it says otherwise.
    pub(super) called: bool,
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
}

impl RunState {
    pub fn new(config: &SandboxConfig, grants: Grants, context: RunContext) -> Self {
        let budget = Arc::new(Budget::new(config));
        let stdout = OutputPipe::new(budget.clone());
        let stderr = OutputPipe::new(budget.clone());
        // No preopened directories, no environment, no arguments, no network:
        // the sandbox gives plugins no ambient authority.
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        let http_hooks = HttpHooks::new(config, grants.clone());
        let mut table = ResourceTable::new();
        table.set_max_capacity(config.resource_handles);
        RunState {
            wasi,
            table,
            limiter: RunLimiter::new(config),
            stdout,
            stderr,
            grants,
            context,
            budget,
            max_effects: config.max_effects,
            kv_value_bytes: config.kv_value_bytes,
            effects: Vec::new(),
            kv_writes: BTreeMap::new(),
            logs: Vec::new(),
            denials: Vec::new(),
            called: false,
            http: WasiHttpCtx::new(),
            http_hooks,
        }
    }

    /// Records the HTTP requests refused so far with the other denials,
    /// and those sent in the log.
    pub(super) fn settle_denials(&mut self) {
        self.http_hooks.settle(&mut self.denials, &mut self.logs);
    }

    /// The log lines, then what the guest wrote to stdout and stderr.
    pub(super) fn take_logs(&mut self) -> Vec<LogLine> {
        let mut logs = std::mem::take(&mut self.logs);
        for (level, pipe) in [(LogLevel::Stdout, &self.stdout), (LogLevel::Stderr, &self.stderr)] {
            let text = pipe.take();
            logs.extend(String::from_utf8_lossy(&text).lines().map(|line| LogLine {
                level,
                message: line.to_owned(),
            }));
        }
        logs
    }

    /// Records a refusal while the record has room; once it is full the run
    /// ends at its next host call.
    pub(super) fn deny(&mut self, denied: Denied, call: &'static str) {
        let denial = Denial {
            denied,
            call: call.into(),
        };
        if self.budget.item(json_size(&denial), "a refusal").is_ok() {
            self.denials.push(denial);
        }
    }

    /// Charges a call to one of robohost's interfaces; ends the run when
    /// its calls are used up or its record is full.
    fn enter(&mut self, call: &'static str) -> wasmtime::Result<()> {
        self.budget.check_room(call)?;
        self.budget.call(call)?;
        Ok(())
    }

    /// Charges the rows a read returned.
    fn rows<T>(&mut self, found: &[T], call: &'static str) -> Result<(), HostCallLimitHit> {
        self.budget.rows(found.len(), call)
    }

    /// Charges returned values or hits to the record, after the run.
    pub(super) fn keep_returned(&self, value: &impl serde::Serialize, what: &str) -> Result<(), OutputLimitHit> {
        self.budget.item(json_size(value), what)
    }

    /// Records a refusal; the guest gets `denied` with the call's capability.
    fn refuse<T>(
        &mut self,
        checked: Result<T, Denied>,
        capability: Capability,
        call: &'static str,
    ) -> Result<T, wit::HostError> {
        checked.map_err(|denied| {
            self.deny(denied, call);
            wit::HostError::Denied(capability.into())
        })
    }

    fn check(&mut self, capability: Capability, call: &'static str) -> Result<(), wit::HostError> {
        let granted = if self.grants.contains(capability) {
            Ok(())
        } else {
            Err(Denied::Capability(capability))
        };
        self.refuse(granted, capability, call)
    }

    /// Checks reading entities of each of `kinds`.
    fn check_read(&mut self, kinds: &[EntityKind], call: &'static str) -> Result<(), wit::HostError> {
        let checked = kinds.iter().try_for_each(|kind| self.grants.read(*kind));
        self.refuse(checked, Capability::CrmRead, call)
    }

    fn push_effect(&mut self, effect: Effect) -> wasmtime::Result<()> {
        if self.effects.len() >= self.max_effects {
            return Err(OutputLimitHit(format!(
                "asked for more than {} effects (limit `sandbox.max-effects`)",
                self.max_effects
            ))
            .into());
        }
        self.budget.item(json_size(&effect), "an effect")?;
        self.effects.push(effect);
        Ok(())
    }

    /// Buffers an effect after checking its capability, the kinds it
    /// changes and the fields it sets.
    fn effect(&mut self, call: &'static str, effect: Effect) -> wasmtime::Result<Result<(), wit::HostError>> {
        let allowed = self.grants.allows(&effect);
        if let Err(denied) = self.refuse(allowed, effect.capability(), call) {
            return Ok(Err(denied));
        }
        self.push_effect(effect).map(Ok)
    }

    /// Turns the data port's answer into the guest's or the run's error.
    fn data<T>(result: Result<T, DataError>) -> wasmtime::Result<Result<T, wit::HostError>> {
        match result {
            Ok(v) => Ok(Ok(v)),
            Err(DataError::Unavailable(why)) => Ok(Err(wit::HostError::Unavailable(why))),
            Err(DataError::Fault(why)) => Err(HostFault(why).into()),
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http_hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn invalid(e: BadValue) -> wit::HostError {
    wit::HostError::Invalid(e.0)
}

impl wit::Host for RunState {}
impl super::bindings::robot_types::Host for RunState {}

impl crm::Host for RunState {
    fn get_entity(&mut self, target: wit::EntityRef) -> wasmtime::Result<Result<wit::Entity, wit::HostError>> {
        self.enter("crm.get-entity")?;
        let target = EntityRef::from(target);
        if let Err(denied) = self.check_read(&[target.kind], "crm.get-entity") {
            return Ok(Err(denied));
        }
        Ok(match Self::data(self.context.data.get_entity(target))? {
            Ok(Some(entity)) => {
                self.rows(&[()], "crm.get-entity")?;
                Ok((&entity).into())
            }
            Ok(None) => Err(wit::HostError::NotFound(format!("{target} does not exist"))),
            Err(e) => Err(e),
        })
    }

    fn list_related(
        &mut self,
        target: wit::EntityRef,
        kind: wit::EntityKind,
    ) -> wasmtime::Result<Result<Vec<wit::Entity>, wit::HostError>> {
        self.enter("crm.list-related")?;
        let (target, kind): (EntityRef, EntityKind) = (target.into(), kind.into());
        // What it reads is the related entities; the target's own data stays out.
        if let Err(denied) = self.check_read(&[kind], "crm.list-related") {
            return Ok(Err(denied));
        }
        let found = Self::data(self.context.data.list_related(target, kind))?;
        if let Ok(list) = &found {
            self.rows(list, "crm.list-related")?;
        }
        Ok(found.map(|list| list.iter().map(Into::into).collect()))
    }

    fn find(
        &mut self,
        kind: wit::EntityKind,
        code: String,
        value: wit::Value,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<wit::Entity>, wit::HostError>> {
        self.enter("crm.find")?;
        let kind = EntityKind::from(kind);
        if let Err(denied) = self.check_read(&[kind], "crm.find") {
            return Ok(Err(denied));
        }
        let value = match Value::try_from(value) {
            Ok(v) => v,
            Err(e) => return Ok(Err(invalid(e))),
        };
        // Never more than the run may still read, and one more to tell.
        let limit = limit.min(1000).min(self.budget.rows_left().saturating_add(1) as u32);
        let found = Self::data(self.context.data.find(kind, &code, &value, limit))?;
        if let Ok(list) = &found {
            self.rows(list, "crm.find")?;
        }
        Ok(found.map(|list| list.iter().map(Into::into).collect()))
    }
}

impl effects::Host for RunState {
    fn set_fields(
        &mut self,
        target: wit::EntityRef,
        fields: Vec<wit::Field>,
    ) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.set-fields")?;
        let fields = match fields_in(fields) {
            Ok(f) => f,
            Err(e) => return Ok(Err(invalid(e))),
        };
        self.effect(
            "effects.set-fields",
            Effect::SetFields {
                target: target.into(),
                fields,
            },
        )
    }

    fn move_to_stage(&mut self, target: wit::EntityRef, stage: String) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.move-to-stage")?;
        self.effect(
            "effects.move-to-stage",
            Effect::MoveToStage {
                target: target.into(),
                stage,
            },
        )
    }

    fn move_to_pipeline(
        &mut self,
        target: wit::EntityRef,
        pipeline: String,
        stage: Option<String>,
    ) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.move-to-pipeline")?;
        let effect = Effect::MoveToPipeline {
            target: target.into(),
            pipeline,
            stage,
        };
        self.effect("effects.move-to-pipeline", effect)
    }

    fn change_responsible(
        &mut self,
        target: wit::EntityRef,
        user: u64,
    ) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.change-responsible")?;
        let effect = Effect::ChangeResponsible {
            target: target.into(),
            user,
        };
        self.effect("effects.change-responsible", effect)
    }

    fn create_entity(
        &mut self,
        entity: effects::NewEntity,
    ) -> wasmtime::Result<Result<wit::EntityRef, wit::HostError>> {
        self.enter("effects.create-entity")?;
        let kind: EntityKind = entity.kind.into();
        let allowed = self.grants.create(kind);
        if let Err(denied) = self.refuse(allowed, Capability::CreateEntity, "effects.create-entity") {
            return Ok(Err(denied));
        }
        let fields = match fields_in(entity.fields) {
            Ok(f) => f,
            Err(e) => return Ok(Err(invalid(e))),
        };
        let id = match Self::data(self.context.data.reserve_id(kind))? {
            Ok(id) => EntityRef { kind, id },
            Err(e) => return Ok(Err(e)),
        };
        let new = NewEntity {
            kind,
            pipeline: entity.pipeline,
            stage: entity.stage,
            responsible: entity.responsible,
            fields,
            parent: entity.parent.map(Into::into),
        };
        self.push_effect(Effect::CreateEntity { id, entity: new })?;
        Ok(Ok(id.into()))
    }

    fn add_comment(&mut self, target: wit::EntityRef, text: String) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.add-comment")?;
        self.effect(
            "effects.add-comment",
            Effect::AddComment {
                target: target.into(),
                text,
            },
        )
    }

    fn notify(
        &mut self,
        user: u64,
        text: String,
        about: Option<wit::EntityRef>,
    ) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.notify")?;
        let effect = Effect::Notify {
            user,
            text,
            about: about.map(Into::into),
        };
        self.effect("effects.notify", effect)
    }

    fn link(&mut self, a: wit::EntityRef, b: wit::EntityRef) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.link")?;
        let effect = Effect::Link {
            a: a.into(),
            b: b.into(),
        };
        self.effect("effects.link", effect)
    }

    fn wait_for_completion(&mut self, target: wit::EntityRef) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.wait-for-completion")?;
        let target: EntityRef = target.into();
        if !matches!(target.kind, EntityKind::Task | EntityKind::Activity) {
            let problem = format!("only a task or an activity is completed, not {target}");
            return Ok(Err(wit::HostError::Invalid(problem)));
        }
        self.effect("effects.wait-for-completion", Effect::WaitFor { target })
    }

    fn send_message(&mut self, message: effects::Message) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("effects.send-message")?;
        if message.to.trim().is_empty() {
            return Ok(Err(wit::HostError::Invalid(
                "a message needs an address in `to`".into(),
            )));
        }
        let channel = match message.channel {
            effects::Channel::Email => Channel::Email,
            effects::Channel::Sms => Channel::Sms,
            effects::Channel::Messenger => Channel::Messenger,
        };
        let effect = Effect::SendMessage(Message {
            channel,
            to: message.to,
            subject: message.subject,
            body: message.body,
            about: message.about.map(Into::into),
        });
        self.effect("effects.send-message", effect)
    }
}

impl log::Host for RunState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.enter("log.write")?;
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.budget.log(message.len(), 1)?;
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

impl kv::Host for RunState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::HostError>> {
        self.enter("kv.get")?;
        if let Err(denied) = self.check(Capability::KvStore, "kv.get") {
            return Ok(Err(denied));
        }
        if let Some(written) = self.kv_writes.get(&key) {
            return Ok(Ok(written.clone()));
        }
        Self::data(self.context.data.kv_get(&self.context.kv_namespace, &key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("kv.set")?;
        if let Err(denied) = self.check(Capability::KvStore, "kv.set") {
            return Ok(Err(denied));
        }
        if value.len() > self.kv_value_bytes {
            return Ok(Err(wit::HostError::LimitExceeded(format!(
                "a value is at most {} bytes, not {} (limit `sandbox.kv-value-bytes`)",
                self.kv_value_bytes,
                value.len()
            ))));
        }
        self.kv_writes.insert(key.clone(), Some(value.clone()));
        self.push_effect(Effect::KvSet { key, value }).map(Ok)
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), wit::HostError>> {
        self.enter("kv.delete")?;
        if let Err(denied) = self.check(Capability::KvStore, "kv.delete") {
            return Ok(Err(denied));
        }
        self.kv_writes.insert(key.clone(), None);
        self.push_effect(Effect::KvDelete { key }).map(Ok)
    }
}

impl calendar::Host for RunState {
    fn is_working_time(&mut self, at: i64) -> wasmtime::Result<Result<bool, wit::HostError>> {
        self.enter("calendar.is-working-time")?;
        if let Err(denied) = self.check(Capability::Calendar, "calendar.is-working-time") {
            return Ok(Err(denied));
        }
        Ok(Ok(self.context.calendar.is_working_time(Timestamp(at))))
    }

    fn add_working_time(&mut self, start: i64, duration_ms: u64) -> wasmtime::Result<Result<i64, wit::HostError>> {
        self.enter("calendar.add-working-time")?;
        if let Err(denied) = self.check(Capability::Calendar, "calendar.add-working-time") {
            return Ok(Err(denied));
        }
        let duration = chrono::Duration::milliseconds(duration_ms.min(i64::MAX as u64 / 2) as i64);
        Ok(self
            .context
            .calendar
            .add_working_time(Timestamp(start), duration)
            .map(|t| t.0)
            .map_err(|e| wit::HostError::Invalid(e.to_string())))
    }

    fn next_working_moment(&mut self, at: i64) -> wasmtime::Result<Result<i64, wit::HostError>> {
        self.enter("calendar.next-working-moment")?;
        if let Err(denied) = self.check(Capability::Calendar, "calendar.next-working-moment") {
            return Ok(Err(denied));
        }
        Ok(self
            .context
            .calendar
            .next_working_moment(Timestamp(at))
            .map(|t| t.0)
            .map_err(|e| wit::HostError::Invalid(e.to_string())))
    }
}
