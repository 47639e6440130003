//! The CRM's own vocabulary: typed values, entities, effects, capabilities and
//! the working-time calendar.
//!
//! Pure data and pure functions: nothing here does IO or knows about
//! wasmtime, SQL or HTTP. Every other layer converts to and from these types.

mod address;
mod automation;
mod calendar;
mod catalog;
mod condition;
mod digest;
mod entity;
mod error;
mod expr;
mod field;
mod form;
mod grant;
mod inbound;
mod job;
mod kind;
mod lookup;
mod run;
mod signature;
mod template;
mod tracking;
mod value;

pub use address::{AddressClass, address_class, canonical_address};
pub use automation::{
    Absence, Among, Condition, Constants, Department, DepartmentId, Directory, Fuel, IfEmpty, Op, Pipeline, Recipient,
    RelativeTo, RobotBinding, Semantic, Stage, Timing, TriggerBinding, User,
};
pub use calendar::{Calendar, CalendarError, Holiday, WorkingHours};
pub use catalog::{Choice, Localized, PropertySpec, RobotInfo, TriggerInfo, ValueType, World};
pub use condition::{ConditionError, Verdict, evaluate, evaluate_with};
pub use digest::Digest;
pub use entity::{Author, Capability, Cause, Channel, Effect, Entity, Fields, Message, NewEntity};
pub use error::ValueError;
pub use expr::{DATE_FORMAT, DATETIME_FORMAT, ExprError, Reference, Scope, check, readable, resolve};
pub use field::{FieldDecl, FieldError, Schema};
pub use form::{FORM_SUBMITTED, FormSpec, Submission, read_submission};
pub use grant::{
    Denied, Grants, HTTP_BYTES_LIMIT, HTTP_REQUESTS_LIMIT, HttpRefusal, HttpRefused, HttpRoute, HttpTarget, Permission,
    is_field_code, is_host,
};
pub use inbound::{
    CallRecord, CallStatus, Endpoint, EndpointSpec, Fired, Handling, HitRecord, HitTarget, IDEMPOTENCY_HEADER, Ignored,
    InboundCall, SignatureCheck, TriggerHit, Unmatched,
};
pub use job::{
    Job, JobRow, JobStatus, Plan, Progress, REASSIGNABLE, ReadRow, ReassignSpec, RowStatus, read_reassignments,
};
pub use kind::{EntityId, EntityKind, EntityRef, UserId};
pub use lookup::{Matching, phone_digits};
pub use run::{Blame, Denial, LogLevel, LogLine, NotRun, Outcome, RobotNote, Run, RunReport, RunStatus};
pub use signature::{SIGNATURE_HEADER, SIGNATURE_TOLERANCE_S, check_signature, sign};
pub use template::{
    ConstantDecl, InstalledTemplate, InstalledVersion, Problem, TEMPLATE_FORMAT, Template, TemplateRobot,
    compare_versions, location, referenced_robots, rename_robots,
};
pub use tracking::{EMAIL_OPENED, LINK_CLICKED, links, tracked};
pub use value::{Date, Decimal, FieldValue, FileRef, Money, Timestamp, Value};
