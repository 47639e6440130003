//! The standard robots, shipped with the host and installed as the plugin
//! `standard`: the Bitrix24 catalog for employees (task, notification,
//! assignment, call, meeting, control, change responsible, comment), for the
//! client (email, SMS, messenger message) and for the entity (change stage,
//! move to another pipeline, copy deal, modify fields, convert lead).
//!
//! Each uses only the public WIT contract through the SDK, like any
//! integrator's robot. "To whom" is the binding's recipient, which the host
//! resolves (a user, the responsible, the supervisor, a constant) and passes
//! as the property `recipient`; for "change responsible", whose recipient
//! takes several, a list or departments, which the host narrows to those
//! present, and the robot picks one in turn or at random.

mod relative;

use robohost_sdk::effects::{self, Channel};
use robohost_sdk::{
    Capability, Choice, Context, EntityKind, EntityRef, Failure, FieldValue, Property, Returns, Robot, RobotInfo,
    Timestamp, UserId, Value, calendar, crm,
};

const HOUR_MS: i64 = 3_600_000;

/// A property with its English and Russian names.
fn named(property: Property, en: &str, ru: &str) -> Property {
    property.name("en", en).name("ru", ru)
}

/// The user the robot acts for: the binding's "to whom".
fn recipient() -> Property {
    named(Property::user("recipient").required(), "To whom", "Кому")
}

/// A robot's catalog entry with its names and descriptions in both languages.
fn info(code: &str, names: [&str; 2], descriptions: [&str; 2]) -> RobotInfo {
    RobotInfo::new(code)
        .name("en", names[0])
        .name("ru", names[1])
        .description("en", descriptions[0])
        .description("ru", descriptions[1])
}

fn text_values(value: &FieldValue) -> impl Iterator<Item = &str> {
    value.values().iter().filter_map(|v| match v {
        Value::Text(text) if !text.trim().is_empty() => Some(text.as_str()),
        _ => None,
    })
}

/// The property `at` when set: a date-time, or a time relative to the run
/// ("in 15 minutes", "in 2 working days", see [`relative`]); else a moment
/// `hours` from now, when that is set.
fn moment(cx: &Context, at: &str, hours: &str) -> Result<Option<Timestamp>, Failure> {
    if let Some(FieldValue::Single(Value::Text(text))) = cx.property(at) {
        let Some((amount, unit)) = relative::parse(text) else {
            return Err(Failure::bad_property(
                at,
                format!(
                    "`{text}` is neither a date-time nor a time from now such as `in 15 minutes`, `in 2 hours` or `in 2 working days`"
                ),
            ));
        };
        return from_now(cx, amount, unit).map(Some);
    }
    if let Some(at) = cx.opt_datetime(at)? {
        return Ok(Some(at));
    }
    Ok(cx.opt_integer(hours)?.map(|h| cx.now() + h * HOUR_MS))
}

/// `amount` of `unit` after the run's start; working days and hours by the
/// portal's calendar.
fn from_now(cx: &Context, amount: i64, unit: relative::Unit) -> Result<Timestamp, Failure> {
    use relative::Unit;
    const MINUTE_MS: i64 = 60_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let now = cx.now();
    Ok(match unit {
        Unit::Minutes => now + amount * MINUTE_MS,
        Unit::Hours => now + amount * HOUR_MS,
        Unit::Days => now + amount * DAY_MS,
        Unit::Weeks => now + amount * 7 * DAY_MS,
        Unit::WorkingHours => calendar::add_working_time(now, (amount * HOUR_MS) as u64)?,
        Unit::WorkingDays => {
            // The same time of day, from the next working moment, on the
            // `amount`-th working day after it: a day is a working one when
            // that time of it is working time.
            let start = calendar::next_working_moment(now)?;
            let (mut at, mut left) = (start, amount);
            let mut steps = 0;
            while left > 0 {
                at += DAY_MS;
                steps += 1;
                if steps > 3 * 366 + amount {
                    return Err(Failure::new("no_working_time", "the calendar has no working day ahead"));
                }
                if calendar::is_working_time(at)? {
                    left -= 1;
                }
            }
            at
        }
    })
}

/// The address for a message: the property `to`, else the entity's field
/// `field`, else that field of a contact linked to it.
fn address(cx: &Context, field: &str) -> Result<String, Failure> {
    if let Some(to) = cx.opt_text("to")?.filter(|t| !t.trim().is_empty()) {
        return Ok(to.to_owned());
    }
    if let Some(own) = cx.entity().field(field).and_then(|v| text_values(v).next()) {
        return Ok(own.to_owned());
    }
    if cx.entity().kind != EntityKind::Contact {
        for contact in crm::list_related(cx.this(), EntityKind::Contact)? {
            if let Some(theirs) = contact.field(field).and_then(|v| text_values(v).next()) {
                return Ok(theirs.to_owned());
            }
        }
    }
    Err(Failure::new(
        "no_address",
        format!(
            "the {} has no {field}, nor a linked contact with one; set the property `to`",
            cx.entity().kind
        ),
    ))
}

/// Creates a task for the recipient on this entity; returns it.
fn create_task(cx: &Context, kind: &str) -> Result<EntityRef, Failure> {
    let mut task = effects::create(EntityKind::Task)
        .title(cx.prop_text("title")?)
        .field("TASK_TYPE", Value::Option(kind.into()))
        .field("STATUS", Value::Option("open".into()))
        .responsible(cx.prop_user("recipient")?)
        .parent(cx.this());
    if let Some(description) = cx.opt_text("description")? {
        task = task.field("DESCRIPTION", description);
    }
    for (property, field) in [("observers", "OBSERVERS"), ("co_executors", "CO_EXECUTORS")] {
        let users = cx.opt_users(property)?;
        if !users.is_empty() {
            let users = users.into_iter().map(Value::User).collect::<Vec<_>>();
            task = task.field_value(field, users.into());
        }
    }
    if let Some(deadline) = moment(cx, "deadline", "deadline_hours")? {
        task = task.field("DEADLINE", Value::Datetime(deadline));
    }
    let task = task.create()?;
    if cx.opt_bool("wait")?.unwrap_or(false) {
        effects::wait_for_completion(task)?;
    }
    Ok(task)
}

fn task_properties(robot: RobotInfo, wait_by_default: bool) -> RobotInfo {
    robot
        .capability(Capability::CreateEntity)
        .property(named(Property::text("title").required(), "Title", "Название"))
        .property(named(Property::text("description"), "Description", "Описание"))
        .property(recipient())
        .property(named(
            Property::user("observers").multiple(),
            "Observers",
            "Наблюдатели",
        ))
        .property(named(
            Property::user("co_executors").multiple(),
            "Co-executors",
            "Соисполнители",
        ))
        .capability(Capability::Calendar)
        .property(
            named(Property::datetime("deadline"), "Deadline", "Крайний срок")
                .description("en", "A date-time, or a time from the run: in 15 minutes, in 2 hours, in 2 working days.")
                .description("ru", "Дата и время или срок от запуска: через 15 минут, через 2 часа, через 2 рабочих дня."),
        )
        .property(named(
            Property::integer("deadline_hours"),
            "Deadline in hours from now",
            "Крайний срок через, часов",
        ))
        .property(
            named(
                Property::boolean("wait").default(wait_by_default),
                "Wait for completion",
                "Ждать завершения",
            )
            .description("en", "The robots after this one start when the task is completed.")
            .description("ru", "Следующие роботы запустятся, когда задача будет завершена."),
        )
        .returns(named(Property::entity("task"), "Task", "Задача"))
}

struct Task;

impl Robot for Task {
    const CODE: &'static str = "task";

    fn info() -> RobotInfo {
        task_properties(
            info(
                Self::CODE,
                ["Create task", "Создать задачу"],
                [
                    "Creates a task on this entity for an employee, with observers, co-executors and a deadline.",
                    "Создаёт задачу по этому элементу для сотрудника, с наблюдателями, соисполнителями и сроком.",
                ],
            ),
            true,
        )
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let task = create_task(cx, "task")?;
        Ok(Returns::new().set("task", task))
    }
}

struct Assignment;

impl Robot for Assignment {
    const CODE: &'static str = "assignment";

    fn info() -> RobotInfo {
        task_properties(
            info(
                Self::CODE,
                ["Assignment", "Задание"],
                [
                    "Gives an employee an assignment to act on, as a task, and notifies them.",
                    "Даёт сотруднику задание (задачей) и уведомляет его.",
                ],
            ),
            false,
        )
        .capability(Capability::Notify)
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let task = create_task(cx, "assignment")?;
        let text = format!("Assignment: {}", cx.prop_text("title")?);
        effects::notify(cx.prop_user("recipient")?, &text, Some(cx.this()))?;
        Ok(Returns::new().set("task", task))
    }
}

struct Notify;

impl Robot for Notify {
    const CODE: &'static str = "notify";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Notification", "Уведомление"],
            [
                "Sends an employee a notification about this entity.",
                "Отправляет сотруднику уведомление по этому элементу.",
            ],
        )
        .capability(Capability::Notify)
        .property(named(Property::text("text").required(), "Text", "Текст"))
        .property(recipient())
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::notify(cx.prop_user("recipient")?, cx.prop_text("text")?, Some(cx.this()))?;
        Ok(Returns::new())
    }
}

struct Control;

impl Robot for Control {
    const CODE: &'static str = "control";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Control", "Контроль"],
            [
                "Reminds a supervisor to check this entity: usually placed with a delay, it fires only if the entity is still in the stage.",
                "Напоминает руководителю проверить элемент: обычно ставится с задержкой и срабатывает, только если элемент ещё на стадии.",
            ],
        )
        .capability(Capability::Notify)
        .property(named(Property::text("text"), "Text", "Текст"))
        .property(recipient())
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let entity = cx.entity();
        let text = match cx.opt_text("text")? {
            Some(text) => format!("Control: {text}"),
            None => format!(
                "Control: {} {} is still at stage {}",
                entity.kind,
                entity.id,
                entity.stage.as_deref().unwrap_or("-")
            ),
        };
        effects::notify(cx.prop_user("recipient")?, &text, Some(cx.this()))?;
        Ok(Returns::new())
    }
}

/// Schedules an activity (a call or a meeting) on this entity.
fn schedule(cx: &Context, kind: &str) -> Result<Returns, Failure> {
    let start = moment(cx, "start", "start_hours")?.unwrap_or(cx.now());
    let minutes = cx.opt_integer("duration_minutes")?.unwrap_or(30);
    if minutes <= 0 {
        return Err(Failure::bad_property("duration_minutes", "must be more than 0"));
    }
    let mut activity = effects::create(EntityKind::Activity)
        .field("TYPE", Value::Option(kind.into()))
        .field("SUBJECT", cx.prop_text("subject")?)
        .field("STATUS", Value::Option("open".into()))
        .field("START", Value::Datetime(start))
        .field("END", Value::Datetime(start + minutes * 60_000))
        .responsible(cx.prop_user("recipient")?)
        .parent(cx.this());
    for (property, field) in [("description", "DESCRIPTION"), ("location", "LOCATION")] {
        if let Some(text) = cx.opt_text(property)? {
            activity = activity.field(field, text);
        }
    }
    Ok(Returns::new().set("activity", activity.create()?))
}

fn schedule_properties(robot: RobotInfo) -> RobotInfo {
    robot
        .capability(Capability::CreateEntity)
        .property(named(Property::text("subject").required(), "Subject", "Тема"))
        .property(named(Property::text("description"), "Description", "Описание"))
        .property(recipient())
        .capability(Capability::Calendar)
        .property(
            named(Property::datetime("start"), "Start", "Начало")
                .description("en", "A date-time, or a time from the run: in 15 minutes, in 2 hours, in 2 working days.")
                .description("ru", "Дата и время или срок от запуска: через 15 минут, через 2 часа, через 2 рабочих дня."),
        )
        .property(named(
            Property::integer("start_hours"),
            "Start in hours from now",
            "Начало через, часов",
        ))
        .property(named(
            Property::integer("duration_minutes").default(30),
            "Duration, minutes",
            "Длительность, минут",
        ))
        .returns(named(Property::entity("activity"), "Activity", "Дело"))
}

struct Call;

impl Robot for Call {
    const CODE: &'static str = "call";

    fn info() -> RobotInfo {
        schedule_properties(info(
            Self::CODE,
            ["Schedule a call", "Запланировать звонок"],
            [
                "Plans a call on this entity for an employee.",
                "Планирует звонок по этому элементу для сотрудника.",
            ],
        ))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        schedule(cx, "call")
    }
}

struct Meeting;

impl Robot for Meeting {
    const CODE: &'static str = "meeting";

    fn info() -> RobotInfo {
        schedule_properties(info(
            Self::CODE,
            ["Schedule a meeting", "Запланировать встречу"],
            [
                "Plans a meeting on this entity for an employee.",
                "Планирует встречу по этому элементу для сотрудника.",
            ],
        ))
        .property(named(Property::text("location"), "Location", "Место"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        schedule(cx, "meeting")
    }
}

struct ChangeStage;

impl Robot for ChangeStage {
    const CODE: &'static str = "change_stage";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Change stage", "Сменить стадию"],
            [
                "Moves this entity to another stage of its pipeline.",
                "Переводит элемент на другую стадию его воронки.",
            ],
        )
        .capability(Capability::MoveStage)
        .property(named(Property::text("stage").required(), "Stage", "Стадия"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::move_to_stage(cx.this(), cx.prop_text("stage")?)?;
        Ok(Returns::new())
    }
}

struct MoveToPipeline;

impl Robot for MoveToPipeline {
    const CODE: &'static str = "move_to_pipeline";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Move to another pipeline", "Сменить направление"],
            [
                "Moves this entity to a stage of another pipeline (its first stage when none is set).",
                "Переносит элемент в другую воронку, на указанную или первую стадию.",
            ],
        )
        .capability(Capability::MoveStage)
        .property(named(Property::text("pipeline").required(), "Pipeline", "Воронка"))
        .property(named(Property::text("stage"), "Stage", "Стадия"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::move_to_pipeline(cx.this(), cx.prop_text("pipeline")?, cx.opt_text("stage")?)?;
        Ok(Returns::new())
    }
}

struct ChangeResponsible;

/// How "change responsible" picks one of several people.
const DISTRIBUTIONS: [(&str, &str, &str); 2] = [
    ("in_turn", "In turn", "По очереди"),
    ("random", "At random", "Случайно"),
];

impl Robot for ChangeResponsible {
    const CODE: &'static str = "change_responsible";

    fn info() -> RobotInfo {
        let mut distribution = named(
            Property::option("distribution").default(Value::Option("in_turn".into())),
            "Distribution",
            "Распределение",
        )
        .description(
            "en",
            "With several people: in turn (whoever has waited longest since this robot last assigned them) \
             or at random.",
        )
        .description(
            "ru",
            "Если сотрудников несколько: по очереди (тому, кто дольше всех ждёт с прошлого назначения) \
             или случайно.",
        );
        for (code, en, ru) in DISTRIBUTIONS {
            distribution = distribution.choice(Choice::new(code).name("en", en).name("ru", ru));
        }
        info(
            Self::CODE,
            ["Change responsible", "Сменить ответственного"],
            [
                "Assigns this entity to another employee, or to one of several (a list or a department, \
                 those present only unless told otherwise) in turn or at random; the previous one stays in its history.",
                "Назначает элементу другого ответственного или одного из нескольких (список или отдел, \
                 только присутствующих, если не сказано иначе) по очереди или случайно; прежний остаётся в истории.",
            ],
        )
        .capability(Capability::ChangeResponsible)
        .capability(Capability::KvStore)
        .property(named(
            Property::user("recipient").required().multiple(),
            "Responsible",
            "Ответственный",
        ))
        .property(distribution)
        .returns(named(
            Property::user("assigned_user"),
            "Assigned user",
            "Назначенный сотрудник",
        ))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let people = cx.prop_users("recipient")?;
        // One person is no distribution; the one of a group left present
        // (a list, however short) still takes their turn.
        let one = matches!(cx.property("recipient"), Some(FieldValue::Single(_)));
        let user = match cx.opt_option("distribution")?.unwrap_or("in_turn") {
            _ if one => people[0],
            "random" => people[random_index(cx, people.len())],
            "in_turn" => next_in_turn(&people)?,
            other => {
                return Err(Failure::bad_property(
                    "distribution",
                    format!("`{other}` is not a distribution; choose in_turn or random"),
                ));
            }
        };
        if cx.entity().responsible != Some(user) {
            effects::change_responsible(cx.this(), user)?;
        }
        Ok(Returns::new().set("assigned_user", Value::User(user)))
    }
}

/// An index below `n` drawn from the system's random source (WASI random,
/// through the standard library's hasher keys).
fn random_index(cx: &Context, n: usize) -> usize {
    use std::hash::BuildHasher;
    let draw = std::collections::hash_map::RandomState::new().hash_one(&cx.invocation().run_id);
    (draw % n as u64) as usize
}

/// Whoever of `people` has waited longest since this robot last assigned
/// them in turn (never, first), the first in the list of those who waited
/// as long; recorded in the plugin's key-value store, so the turn goes on
/// across runs, robots and an absence.
fn next_in_turn(people: &[UserId]) -> Result<UserId, Failure> {
    let read = |key: &str| -> Result<u64, Failure> {
        Ok(robohost_sdk::kv::get(key)?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(0, u64::from_le_bytes))
    };
    let mut chosen = (people[0], u64::MAX);
    for &user in people {
        let last = read(&format!("in-turn/user/{user}"))?;
        if last < chosen.1 {
            chosen = (user, last);
        }
    }
    let turn = read("in-turn/count")? + 1;
    robohost_sdk::kv::set("in-turn/count", &turn.to_le_bytes())?;
    robohost_sdk::kv::set(&format!("in-turn/user/{}", chosen.0), &turn.to_le_bytes())?;
    Ok(chosen.0)
}

struct Comment;

impl Robot for Comment {
    const CODE: &'static str = "comment";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Add a comment", "Добавить комментарий"],
            [
                "Adds a comment to this entity's timeline.",
                "Добавляет комментарий в ленту элемента.",
            ],
        )
        .capability(Capability::AddComment)
        .property(named(Property::text("text").required(), "Text", "Текст"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        effects::comment(cx.this(), cx.prop_text("text")?)?;
        Ok(Returns::new())
    }
}

struct ModifyFields;

impl Robot for ModifyFields {
    const CODE: &'static str = "modify_fields";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Modify fields", "Изменить элемент"],
            [
                "Sets fields of this entity: each field named gets the value at the same place.",
                "Меняет поля элемента: каждое указанное поле получает значение на той же позиции.",
            ],
        )
        .capability(Capability::SetFields)
        .property(named(Property::text("fields").required().multiple(), "Fields", "Поля"))
        .property(named(
            Property::any("values").required().multiple(),
            "Values",
            "Значения",
        ))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let fields = cx.prop_texts("fields")?;
        let values = cx.property("values").map(|v| v.values().to_vec()).unwrap_or_default();
        if fields.len() != values.len() {
            return Err(Failure::bad_property(
                "values",
                format!("expected {} values, one per field, got {}", fields.len(), values.len()),
            ));
        }
        let mut change = effects::set_fields(cx.this());
        for (code, value) in fields.into_iter().zip(values) {
            change = change.set(code, value);
        }
        change.apply()?;
        Ok(Returns::new())
    }
}

/// The fields of `entity` for a copy of it: every field but those naming
/// the original itself.
fn copied_fields(entity: &robohost_sdk::Entity) -> Vec<(String, FieldValue)> {
    entity
        .fields
        .iter()
        .chain(&entity.custom_fields)
        .filter(|f| !matches!(f.value, FieldValue::Empty))
        .map(|f| (f.code.clone(), f.value.clone()))
        .collect()
}

struct CopyDeal;

impl Robot for CopyDeal {
    const CODE: &'static str = "copy_deal";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Copy deal", "Копировать сделку"],
            [
                "Creates a copy of this deal, with its fields, in a pipeline and stage: a repeat sale or a hand-over.",
                "Создаёт копию сделки с её полями в воронке и на стадии: повторная продажа или передача.",
            ],
        )
        .capability(Capability::CreateEntity)
        .property(named(Property::text("pipeline").required(), "Pipeline", "Воронка"))
        .property(named(Property::text("stage"), "Stage", "Стадия"))
        .property(named(Property::text("title"), "Title", "Название"))
        .property(named(Property::user("recipient"), "Responsible", "Ответственный"))
        .returns(named(Property::entity("copy"), "Copy", "Копия"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let deal = cx.entity();
        if deal.kind != EntityKind::Deal {
            return Err(Failure::new(
                "not_a_deal",
                format!("copy_deal copies deals, not a {}", deal.kind),
            ));
        }
        let mut copy = effects::create(EntityKind::Deal).pipeline(cx.prop_text("pipeline")?);
        if let Some(stage) = cx.opt_text("stage")? {
            copy = copy.stage(stage);
        }
        for (code, value) in copied_fields(deal) {
            copy = copy.field_value(&code, value);
        }
        if let Some(title) = cx.opt_text("title")? {
            copy = copy.title(title);
        }
        if let Some(user) = cx.opt_user("recipient")?.or(deal.responsible) {
            copy = copy.responsible(user);
        }
        let copy = copy.parent(cx.this()).create()?;
        Ok(Returns::new().set("copy", copy))
    }
}

struct ConvertLead;

/// The lead fields a converted contact takes.
const CONTACT_FIELDS: [&str; 5] = ["NAME", "SECOND_NAME", "LAST_NAME", "PHONE", "EMAIL"];

impl Robot for ConvertLead {
    const CODE: &'static str = "convert_lead";

    fn info() -> RobotInfo {
        info(
            Self::CODE,
            ["Convert lead", "Конвертировать лид"],
            [
                "Creates from this lead a contact, a company when COMPANY_TITLE is filled, and a deal with the lead's fields, all linked.",
                "Создаёт из лида контакт, компанию (если заполнено COMPANY_TITLE) и сделку с полями лида, связанные между собой.",
            ],
        )
        .capability(Capability::CreateEntity)
        .property(named(
            Property::text("deal_pipeline").required(),
            "Deal pipeline",
            "Воронка сделки",
        ))
        .property(named(Property::text("deal_stage"), "Deal stage", "Стадия сделки"))
        .returns(named(Property::entity("contact"), "Contact", "Контакт"))
        .returns(named(Property::entity("company"), "Company", "Компания"))
        .returns(named(Property::entity("deal"), "Deal", "Сделка"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let lead = cx.entity();
        if lead.kind != EntityKind::Lead {
            return Err(Failure::new(
                "not_a_lead",
                format!("convert_lead converts leads, not a {}", lead.kind),
            ));
        }
        let responsible = lead.responsible;
        let with_responsible = |create: effects::Create| match responsible {
            Some(user) => create.responsible(user),
            None => create,
        };

        let mut contact = with_responsible(effects::create(EntityKind::Contact));
        for code in CONTACT_FIELDS {
            if let Some(value) = lead.field(code).filter(|v| !matches!(v, FieldValue::Empty)) {
                contact = contact.field_value(code, value.clone());
            }
        }
        let contact = contact.parent(cx.this()).create()?;

        let company_title = lead.text("COMPANY_TITLE")?.filter(|t| !t.trim().is_empty());
        let company = match company_title {
            Some(title) => {
                let company = with_responsible(effects::create(EntityKind::Company))
                    .title(title)
                    .parent(cx.this())
                    .create()?;
                effects::link(contact, company)?;
                Some(company)
            }
            None => None,
        };

        let mut deal = with_responsible(effects::create(EntityKind::Deal)).pipeline(cx.prop_text("deal_pipeline")?);
        if let Some(stage) = cx.opt_text("deal_stage")? {
            deal = deal.stage(stage);
        }
        for (code, value) in copied_fields(lead) {
            if !CONTACT_FIELDS.contains(&code.as_str()) && code != "COMPANY_TITLE" {
                deal = deal.field_value(&code, value);
            }
        }
        let deal = deal.parent(cx.this()).create()?;
        effects::link(deal, contact)?;
        let mut returns = Returns::new().set("contact", contact).set("deal", deal);
        if let Some(company) = company {
            effects::link(deal, company)?;
            returns = returns.set("company", company);
        }
        Ok(returns)
    }
}

fn message_properties(robot: RobotInfo, field: &str) -> RobotInfo {
    robot
        .capability(Capability::SendMessage)
        .capability(Capability::CrmRead)
        .property(
            named(Property::text("to"), "To", "Кому")
                .description(
                    "en",
                    &format!("The address; by default the entity's {field}, or its contact's."),
                )
                .description("ru", &format!("Адрес; по умолчанию {field} элемента или его контакта.")),
        )
}

struct Email;

impl Robot for Email {
    const CODE: &'static str = "email";

    fn info() -> RobotInfo {
        message_properties(
            info(
                Self::CODE,
                ["Send email", "Отправить письмо"],
                [
                    "Sends the client an email through the outbox.",
                    "Отправляет клиенту письмо через исходящие.",
                ],
            ),
            "EMAIL",
        )
        .property(named(Property::text("subject").required(), "Subject", "Тема"))
        .property(named(Property::text("body").required(), "Text", "Текст"))
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let to = address(cx, "EMAIL")?;
        effects::send_message(
            Channel::Email,
            &to,
            Some(cx.prop_text("subject")?),
            cx.prop_text("body")?,
            Some(cx.this()),
        )?;
        Ok(Returns::new())
    }
}

/// Sends the property `text` by `channel` to the entity's `field` (or its
/// contact's, or the property `to`).
fn send_text(cx: &Context, channel: Channel, field: &str) -> Result<Returns, Failure> {
    let to = address(cx, field)?;
    effects::send_message(channel, &to, None, cx.prop_text("text")?, Some(cx.this()))?;
    Ok(Returns::new())
}

fn text_message_info(robot: RobotInfo, field: &str) -> RobotInfo {
    message_properties(robot, field).property(named(Property::text("text").required(), "Text", "Текст"))
}

struct Sms;

impl Robot for Sms {
    const CODE: &'static str = "sms";

    fn info() -> RobotInfo {
        let robot = info(
            Self::CODE,
            ["Send SMS", "Отправить SMS"],
            [
                "Sends the client a text message through the outbox.",
                "Отправляет клиенту SMS через исходящие.",
            ],
        );
        text_message_info(robot, "PHONE")
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        send_text(cx, Channel::Sms, "PHONE")
    }
}

struct Messenger;

impl Robot for Messenger {
    const CODE: &'static str = "messenger";

    fn info() -> RobotInfo {
        let robot = info(
            Self::CODE,
            ["Send a messenger message", "Отправить сообщение в мессенджер"],
            [
                "Sends the client a messenger or social-network message through the outbox.",
                "Отправляет клиенту сообщение в мессенджер или соцсеть через исходящие.",
            ],
        );
        text_message_info(robot, "IM")
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        send_text(cx, Channel::Messenger, "IM")
    }
}

robohost_sdk::export_robots!(
    Task,
    Assignment,
    Notify,
    Control,
    Call,
    Meeting,
    ChangeStage,
    MoveToPipeline,
    ChangeResponsible,
    Comment,
    ModifyFields,
    CopyDeal,
    ConvertLead,
    Email,
    Sms,
    Messenger,
);
