//! Changes a robot asks the host to make. Each call only records the change;
//! the host applies a run's effects in order once `run` returns `Ok`, and
//! none of them when it fails. Each needs a capability the robot declares in
//! its [`RobotInfo`](crate::RobotInfo) and the admin grants; otherwise the
//! call returns [`HostError::Denied`].

use crate::bindings::robohost::robot::effects as host;
use crate::{EntityKind, EntityRef, Field, FieldValue, HostError, NewEntity, UserId, Value};

pub use host::Channel;

/// Starts setting fields of `target`; needs
/// [`Capability::SetFields`](crate::Capability::SetFields).
///
/// ```no_run
/// # use robohost_sdk::{effects, Context, Failure};
/// # fn run(cx: &Context) -> Result<(), Failure> {
/// effects::set_fields(cx.this()).set("UF_SCORE", 3).apply()?;
/// # Ok(())
/// # }
/// ```
pub fn set_fields(target: EntityRef) -> SetFields {
    SetFields {
        target,
        fields: Vec::new(),
    }
}

/// Fields to set on one entity, sent with [`SetFields::apply`].
#[must_use = "nothing is set until `apply` is called"]
#[derive(Clone, Debug)]
pub struct SetFields {
    target: EntityRef,
    fields: Vec<Field>,
}

impl SetFields {
    /// Sets field `code` to `value`.
    pub fn set(mut self, code: &str, value: impl Into<Value>) -> Self {
        self.fields.push(Field::new(code, value));
        self
    }

    /// Sets multiple field `code` to `values`.
    pub fn set_list(mut self, code: &str, values: Vec<Value>) -> Self {
        self.fields.push(Field {
            code: code.into(),
            value: FieldValue::List(values),
        });
        self
    }

    /// Empties field `code`.
    pub fn clear(mut self, code: &str) -> Self {
        self.fields.push(Field {
            code: code.into(),
            value: FieldValue::Empty,
        });
        self
    }

    /// Asks the host to set the fields.
    pub fn apply(self) -> Result<(), HostError> {
        host::set_fields(self.target, &self.fields)
    }
}

/// Moves `target` to `stage` of its pipeline; needs `move-stage`.
pub fn move_to_stage(target: EntityRef, stage: &str) -> Result<(), HostError> {
    host::move_to_stage(target, stage)
}

/// Moves `target` to `pipeline`, at `stage` or at that pipeline's first
/// stage; needs `move-stage`.
pub fn move_to_pipeline(target: EntityRef, pipeline: &str, stage: Option<&str>) -> Result<(), HostError> {
    host::move_to_pipeline(target, pipeline, stage)
}

/// Assigns `target` to `user`; needs `change-responsible`.
pub fn change_responsible(target: EntityRef, user: UserId) -> Result<(), HostError> {
    host::change_responsible(target, user)
}

/// Adds `text` to the timeline of `target`; needs `add-comment`.
pub fn comment(target: EntityRef, text: &str) -> Result<(), HostError> {
    host::add_comment(target, text)
}

/// Notifies `user`, about entity `about` when set; needs `notify`.
pub fn notify(user: UserId, text: &str, about: Option<EntityRef>) -> Result<(), HostError> {
    host::notify(user, text, about)
}

/// Links `a` and `b` both ways, such as a deal and its contact; needs
/// `create-entity`.
pub fn link(a: EntityRef, b: EntityRef) -> Result<(), HostError> {
    host::link(a, b)
}

/// Holds the robots placed after this one ("after previous") until
/// `target`, a task or an activity, is completed; needs `create-entity`.
pub fn wait_for_completion(target: EntityRef) -> Result<(), HostError> {
    host::wait_for_completion(target)
}

/// Puts a message to a client in the outbox; the host delivers it once the
/// run has succeeded. `subject` is for email. Needs `send-message`.
pub fn send_message(
    channel: Channel,
    to: &str,
    subject: Option<&str>,
    body: &str,
    about: Option<EntityRef>,
) -> Result<(), HostError> {
    host::send_message(&host::Message {
        channel,
        to: to.into(),
        subject: subject.map(Into::into),
        body: body.into(),
        about,
    })
}

/// Starts creating an entity of `kind`; needs `create-entity`.
///
/// ```no_run
/// # use robohost_sdk::{effects, Context, EntityKind, Failure};
/// # fn run(cx: &Context, user: u64) -> Result<(), Failure> {
/// let task = effects::create(EntityKind::Task)
///     .title("Call the client")
///     .responsible(user)
///     .parent(cx.this())
///     .create()?;
/// # Ok(())
/// # }
/// ```
pub fn create(kind: EntityKind) -> Create {
    Create {
        entity: NewEntity {
            kind,
            pipeline: None,
            stage: None,
            responsible: None,
            fields: Vec::new(),
            parent: None,
        },
    }
}

/// An entity to create, sent with [`Create::create`].
#[must_use = "nothing is created until `create` is called"]
#[derive(Clone, Debug)]
pub struct Create {
    entity: NewEntity,
}

impl Create {
    /// Sets its `TITLE` field.
    pub fn title(self, title: &str) -> Self {
        self.field("TITLE", title)
    }

    /// Sets a standard or custom field.
    pub fn field(mut self, code: &str, value: impl Into<Value>) -> Self {
        self.entity.fields.push(Field::new(code, value));
        self
    }

    /// Sets a field to a value of any shape: empty, one value or several.
    pub fn field_value(mut self, code: &str, value: FieldValue) -> Self {
        self.entity.fields.push(Field {
            code: code.into(),
            value,
        });
        self
    }

    /// Assigns it to `user`.
    pub fn responsible(mut self, user: UserId) -> Self {
        self.entity.responsible = Some(user);
        self
    }

    /// Makes it belong to `parent`, such as a task's deal.
    pub fn parent(mut self, parent: EntityRef) -> Self {
        self.entity.parent = Some(parent);
        self
    }

    /// Creates it in `pipeline`, for kinds that live in pipelines.
    pub fn pipeline(mut self, pipeline: &str) -> Self {
        self.entity.pipeline = Some(pipeline.into());
        self
    }

    /// Creates it at `stage` rather than the pipeline's first stage.
    pub fn stage(mut self, stage: &str) -> Self {
        self.entity.stage = Some(stage.into());
        self
    }

    /// Asks the host to create it. The returned reference is reserved now;
    /// the entity exists once the run has succeeded.
    pub fn create(self) -> Result<EntityRef, HostError> {
        host::create_entity(&self.entity)
    }
}
