//! Bindings of WIT `robohost:robot@0.1.0` and conversions between its types
//! and the domain's.
//!
//! Each released WIT version is bound in a module of its own; this is the
//! first. Conversions live here so the rest of the runtime speaks domain types.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::{self, Capability, EntityKind, FieldValue, Fields, Timestamp, Value};

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "robot",
    imports: { default: trappable },
    exports: { default: async },
});

pub use exports_alias::*;

/// Short names for the generated types.
mod exports_alias {
    pub use super::robohost::robot::robot_types;
    pub use super::robohost::robot::types as wit;
}

impl From<wit::EntityKind> for EntityKind {
    fn from(kind: wit::EntityKind) -> Self {
        match kind {
            wit::EntityKind::Lead => EntityKind::Lead,
            wit::EntityKind::Deal => EntityKind::Deal,
            wit::EntityKind::Contact => EntityKind::Contact,
            wit::EntityKind::Company => EntityKind::Company,
            wit::EntityKind::Task => EntityKind::Task,
            wit::EntityKind::Activity => EntityKind::Activity,
        }
    }
}

impl From<EntityKind> for wit::EntityKind {
    fn from(kind: EntityKind) -> Self {
        match kind {
            EntityKind::Lead => wit::EntityKind::Lead,
            EntityKind::Deal => wit::EntityKind::Deal,
            EntityKind::Contact => wit::EntityKind::Contact,
            EntityKind::Company => wit::EntityKind::Company,
            EntityKind::Task => wit::EntityKind::Task,
            EntityKind::Activity => wit::EntityKind::Activity,
        }
    }
}

impl From<wit::Capability> for Capability {
    fn from(c: wit::Capability) -> Self {
        match c {
            wit::Capability::CrmRead => Capability::CrmRead,
            wit::Capability::SetFields => Capability::SetFields,
            wit::Capability::MoveStage => Capability::MoveStage,
            wit::Capability::ChangeResponsible => Capability::ChangeResponsible,
            wit::Capability::CreateEntity => Capability::CreateEntity,
            wit::Capability::AddComment => Capability::AddComment,
            wit::Capability::Notify => Capability::Notify,
            wit::Capability::SendMessage => Capability::SendMessage,
            wit::Capability::KvStore => Capability::KvStore,
            wit::Capability::Calendar => Capability::Calendar,
        }
    }
}

impl From<Capability> for wit::Capability {
    fn from(c: Capability) -> Self {
        match c {
            Capability::CrmRead => wit::Capability::CrmRead,
            Capability::SetFields => wit::Capability::SetFields,
            Capability::MoveStage => wit::Capability::MoveStage,
            Capability::ChangeResponsible => wit::Capability::ChangeResponsible,
            Capability::CreateEntity => wit::Capability::CreateEntity,
            Capability::AddComment => wit::Capability::AddComment,
            Capability::Notify => wit::Capability::Notify,
            Capability::SendMessage => wit::Capability::SendMessage,
            Capability::KvStore => wit::Capability::KvStore,
            Capability::Calendar => wit::Capability::Calendar,
        }
    }
}

impl From<wit::EntityRef> for domain::EntityRef {
    fn from(r: wit::EntityRef) -> Self {
        domain::EntityRef {
            kind: r.kind.into(),
            id: r.id,
        }
    }
}

impl From<domain::EntityRef> for wit::EntityRef {
    fn from(r: domain::EntityRef) -> Self {
        wit::EntityRef {
            kind: r.kind.into(),
            id: r.id,
        }
    }
}

impl From<&Value> for wit::Value {
    fn from(v: &Value) -> Self {
        match v {
            Value::Text(s) => wit::Value::Text(s.clone()),
            Value::Integer(i) => wit::Value::Integer(*i),
            Value::Decimal(d) => wit::Value::Decimal(decimal_out(*d)),
            Value::Money(m) => wit::Value::Money(wit::Money {
                amount: decimal_out(m.amount),
                currency: m.currency.clone(),
            }),
            Value::Boolean(b) => wit::Value::Boolean(*b),
            Value::Date(d) => wit::Value::Date(wit::Date {
                year: chrono::Datelike::year(d),
                month: chrono::Datelike::month(d) as u8,
                day: chrono::Datelike::day(d) as u8,
            }),
            Value::DateTime(t) => wit::Value::Datetime(t.0),
            Value::User(u) => wit::Value::User(*u),
            Value::Entity(r) => wit::Value::Entity((*r).into()),
            Value::Option(o) => wit::Value::Option(o.clone()),
            Value::File(f) => wit::Value::File(wit::FileRef {
                id: f.id,
                name: f.name.clone(),
                size: f.size,
            }),
        }
    }
}

fn decimal_out(d: domain::Decimal) -> wit::Decimal {
    wit::Decimal {
        units: d.units,
        scale: d.scale,
    }
}

/// A value a guest sent that the domain cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

impl TryFrom<wit::Value> for Value {
    type Error = BadValue;
    fn try_from(v: wit::Value) -> Result<Self, BadValue> {
        Ok(match v {
            wit::Value::Text(s) => Value::Text(s),
            wit::Value::Integer(i) => Value::Integer(i),
            wit::Value::Decimal(d) => Value::Decimal(decimal_in(d)?),
            wit::Value::Money(m) => Value::Money(domain::Money {
                amount: decimal_in(m.amount)?,
                currency: m.currency,
            }),
            wit::Value::Boolean(b) => Value::Boolean(b),
            wit::Value::Date(d) => Value::Date(
                NaiveDate::from_ymd_opt(d.year, d.month.into(), d.day.into())
                    .ok_or_else(|| BadValue(format!("{}-{}-{} is not a date", d.year, d.month, d.day)))?,
            ),
            wit::Value::Datetime(t) => Value::DateTime(Timestamp(t)),
            wit::Value::User(u) => Value::User(u),
            wit::Value::Entity(r) => Value::Entity(r.into()),
            wit::Value::Option(o) => Value::Option(o),
            wit::Value::File(f) => Value::File(domain::FileRef {
                id: f.id,
                name: f.name,
                size: f.size,
            }),
        })
    }
}

fn decimal_in(d: wit::Decimal) -> Result<domain::Decimal, BadValue> {
    if d.scale > 18 {
        return Err(BadValue(format!("a decimal's scale is at most 18, not {}", d.scale)));
    }
    Ok(domain::Decimal::new(d.units, d.scale))
}

impl From<&FieldValue> for wit::FieldValue {
    fn from(v: &FieldValue) -> Self {
        match v {
            FieldValue::Empty => wit::FieldValue::Empty,
            FieldValue::Single(v) => wit::FieldValue::Single(v.into()),
            FieldValue::List(vs) => wit::FieldValue::List(vs.iter().map(Into::into).collect()),
        }
    }
}

impl TryFrom<wit::FieldValue> for FieldValue {
    type Error = BadValue;
    fn try_from(v: wit::FieldValue) -> Result<Self, BadValue> {
        Ok(match v {
            wit::FieldValue::Empty => FieldValue::Empty,
            wit::FieldValue::Single(v) => FieldValue::Single(v.try_into()?),
            wit::FieldValue::List(vs) => {
                FieldValue::List(vs.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?)
            }
        })
    }
}

pub fn fields_out(fields: &Fields) -> Vec<wit::Field> {
    fields
        .iter()
        .map(|(code, value)| wit::Field {
            code: code.clone(),
            value: value.into(),
        })
        .collect()
}

/// Fields from a guest; a code given twice keeps its last value.
pub fn fields_in(fields: Vec<wit::Field>) -> Result<Fields, BadValue> {
    fields
        .into_iter()
        .map(|f| {
            let value = f
                .value
                .try_into()
                .map_err(|BadValue(e)| BadValue(format!("field `{}`: {e}", f.code)))?;
            Ok((f.code, value))
        })
        .collect()
}

impl From<&domain::Entity> for wit::Entity {
    fn from(e: &domain::Entity) -> Self {
        wit::Entity {
            kind: e.kind.into(),
            id: e.id,
            pipeline: e.pipeline.clone(),
            stage: e.stage.clone(),
            responsible: e.responsible,
            fields: fields_out(&e.fields),
            custom_fields: fields_out(&e.custom_fields),
            created_at: e.created_at.0,
            updated_at: e.updated_at.0,
        }
    }
}

fn localized(texts: Vec<wit::Localized>) -> domain::Localized {
    texts.into_iter().map(|t| (t.lang, t.text)).collect::<BTreeMap<_, _>>()
}

fn value_type(t: robot_types::ValueType) -> domain::ValueType {
    use domain::ValueType as D;
    use robot_types::ValueType as W;
    match t {
        W::Text => D::Text,
        W::Integer => D::Integer,
        W::Decimal => D::Decimal,
        W::Money => D::Money,
        W::Boolean => D::Boolean,
        W::Date => D::Date,
        W::Datetime => D::Datetime,
        W::User => D::User,
        W::Entity => D::Entity,
        W::Option => D::Option,
        W::File => D::File,
        W::Any => D::Any,
    }
}

fn property(p: robot_types::Property) -> Result<domain::PropertySpec, BadValue> {
    let default = p
        .default
        .map(FieldValue::try_from)
        .transpose()
        .map_err(|BadValue(e)| BadValue(format!("property `{}` default: {e}", p.code)))?;
    Ok(domain::PropertySpec {
        code: p.code,
        names: localized(p.names),
        descriptions: localized(p.descriptions),
        value_type: value_type(p.value_type),
        required: p.required,
        multiple: p.multiple,
        default,
        choices: p
            .choices
            .into_iter()
            .map(|c| domain::Choice {
                code: c.code,
                names: localized(c.names),
            })
            .collect(),
    })
}

impl TryFrom<robot_types::RobotInfo> for domain::RobotInfo {
    type Error = BadValue;
    fn try_from(r: robot_types::RobotInfo) -> Result<Self, BadValue> {
        Ok(domain::RobotInfo {
            code: r.code,
            names: localized(r.names),
            descriptions: localized(r.descriptions),
            capabilities: r.capabilities.into_iter().map(Into::into).collect(),
            properties: r.properties.into_iter().map(property).collect::<Result<_, _>>()?,
            returns: r.returns.into_iter().map(property).collect::<Result<_, _>>()?,
        })
    }
}

/// The `trigger` world, sharing the robot world's types and host interfaces.
pub mod trigger_world {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "trigger",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "robohost:robot/types": super::robohost::robot::types,
            "robohost:robot/log": super::robohost::robot::log,
            "robohost:robot/kv": super::robohost::robot::kv,
        },
    });
}

use trigger_world::robohost::robot::trigger_types;

impl From<trigger_types::TriggerInfo> for domain::TriggerInfo {
    fn from(t: trigger_types::TriggerInfo) -> Self {
        domain::TriggerInfo {
            code: t.code,
            names: localized(t.names),
            descriptions: localized(t.descriptions),
        }
    }
}

impl From<&domain::InboundCall> for trigger_types::Request {
    fn from(r: &domain::InboundCall) -> Self {
        trigger_types::Request {
            method: r.method.clone(),
            path: r.path.clone(),
            query: r.query.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }
}

impl TryFrom<trigger_types::Hit> for domain::TriggerHit {
    type Error = BadValue;
    fn try_from(hit: trigger_types::Hit) -> Result<Self, BadValue> {
        let target = match hit.target {
            trigger_types::Target::Entity(r) => domain::HitTarget::Entity(r.into()),
            trigger_types::Target::Lookup(l) => domain::HitTarget::Lookup {
                kind: l.kind.into(),
                code: l.code,
                value: l.value.try_into()?,
            },
        };
        Ok(domain::TriggerHit {
            trigger: hit.trigger,
            target,
            data: fields_in(hit.data)?,
        })
    }
}

/// The cause of a run, as the guest receives it.
pub(super) fn cause_out(cause: &domain::Cause) -> robot_types::Cause {
    match cause {
        domain::Cause::StageEntered {
            pipeline,
            stage,
            previous_stage,
        } => robot_types::Cause::StageEntered(robot_types::StageEntry {
            pipeline: pipeline.clone(),
            stage: stage.clone(),
            previous_stage: previous_stage.clone(),
        }),
        domain::Cause::Trigger { code, .. } => robot_types::Cause::Trigger(code.clone()),
        domain::Cause::Schedule { name } => robot_types::Cause::Schedule(name.clone()),
        domain::Cause::Manual { user } => robot_types::Cause::Manual(*user),
    }
}
