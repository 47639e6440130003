//! The board's view of a pipeline: its stages in order as columns, each with
//! its triggers and robot cards saying what the robot is, when it runs, on
//! what condition and to whom. Read from the engine's loaded settings, so a
//! page costs no database query.

use std::collections::HashMap;

use super::text::{Lang, Text};
use crate::domain::{
    Condition, FieldValue, Op, Pipeline, Recipient, RobotBinding, RobotInfo, Run, RunStatus, Semantic, Timing,
};
use crate::engine::Engine;

/// Test mode: the entity the board is coloured for, the stage it is in, and
/// the runs of its current entry into that stage, by robot.
pub struct Testing {
    pub stage: String,
    pub runs: HashMap<u64, Run>,
}

/// What happened to a robot for the entity under test: a state (the card's
/// colour) and why, in words.
pub struct Verdict {
    /// `done`, `failed`, `waiting`, `skipped`, `cancelled` or `not-started`.
    pub state: &'static str,
    pub label: &'static str,
    pub detail: String,
}

fn verdict(run: Option<&Run>, t: &Text) -> Verdict {
    let Some(run) = run else {
        return Verdict {
            state: "not-started",
            label: t.not_started,
            detail: t.no_run.to_owned(),
        };
    };
    let reason = || {
        run.report
            .as_ref()
            .map_or(String::new(), |r| match (&r.reason, &r.outcome) {
                (Some(reason), _) => reason.to_string(),
                (None, Some(outcome)) => outcome.to_string(),
                (None, None) => String::new(),
            })
    };
    let (state, label, detail) = match run.status {
        RunStatus::Succeeded => ("done", t.done, String::new()),
        RunStatus::Awaiting => ("done", t.done, t.awaiting_task.to_owned()),
        RunStatus::Dead => ("failed", t.failed, reason()),
        RunStatus::Queued => ("waiting", t.waiting, format!("{} {}", t.until, run.due_at)),
        RunStatus::Leased => ("waiting", t.waiting, t.running.to_owned()),
        RunStatus::Waiting => ("waiting", t.waiting, t.for_previous.to_owned()),
        RunStatus::WaitingForDate => ("waiting", t.waiting, t.for_date.to_owned()),
        RunStatus::Skipped => ("skipped", t.skipped, reason()),
        RunStatus::Cancelled => ("cancelled", t.cancelled, reason()),
    };
    Verdict { state, label, detail }
}

pub struct BoardView {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub stages: Vec<StageView>,
}

pub struct StageView {
    pub code: String,
    pub name: String,
    /// `in-progress`, `success` or `failure`: the column's colour.
    pub semantic: &'static str,
    /// (id, name) of each trigger.
    pub triggers: Vec<(u64, String)>,
    pub robots: Vec<RobotCard>,
}

pub struct RobotCard {
    pub id: u64,
    /// The admin's title, else the robot's name.
    pub title: String,
    /// `plugin/robot`.
    pub robot: String,
    pub when: String,
    pub condition: Option<String>,
    pub to: Option<String>,
    pub disabled: Option<String>,
    /// In test mode, on the entity's stage: what happened for its entry.
    pub verdict: Option<Verdict>,
}

/// A pipeline's board in `lang`; in test mode, the cards of the entity's
/// stage say what happened for it.
pub fn board(engine: &Engine, pipeline: &Pipeline, lang: Lang, testing: Option<&Testing>) -> BoardView {
    let t = lang.text();
    let catalog = engine.trigger_catalog();
    let trigger_name = |code: &str| {
        catalog
            .iter()
            .find(|c| c.code == code)
            .map_or(code.to_owned(), |c| lang.pick(&c.names, code).to_owned())
    };
    // Each plugin's robot catalog, read once for the page.
    let mut catalogs: HashMap<String, Vec<RobotInfo>> = HashMap::new();
    let stages = pipeline
        .stages
        .iter()
        .map(|stage| {
            let (robots, triggers) = engine.stage_automation(&pipeline.code, &stage.code);
            StageView {
                code: stage.code.clone(),
                name: lang.pick(&stage.names, &stage.code).to_owned(),
                semantic: match stage.semantic {
                    Semantic::InProgress => "in-progress",
                    Semantic::Success => "success",
                    Semantic::Failure => "failure",
                },
                triggers: triggers.iter().map(|tr| (tr.id, trigger_name(&tr.code))).collect(),
                robots: robots
                    .iter()
                    .map(|binding| {
                        let catalog = catalogs
                            .entry(binding.plugin.clone())
                            .or_insert_with(|| engine.plugin_robots(&binding.plugin));
                        let mut card = card(catalog, binding, lang, t);
                        card.verdict = testing
                            .filter(|testing| testing.stage == stage.code)
                            .map(|testing| verdict(testing.runs.get(&binding.id), t));
                        card
                    })
                    .collect(),
            }
        })
        .collect();
    BoardView {
        code: pipeline.code.clone(),
        name: lang.pick(&pipeline.names, &pipeline.code).to_owned(),
        kind: pipeline.kind.as_str(),
        stages,
    }
}

fn card(robots: &[RobotInfo], binding: &RobotBinding, lang: Lang, t: &Text) -> RobotCard {
    let name = robots
        .iter()
        .find(|r| r.code == binding.robot)
        .map(|r| lang.pick(&r.names, &binding.robot).to_owned());
    let title = match (binding.title.trim(), name) {
        ("", Some(name)) => name,
        ("", None) => binding.robot.clone(),
        (title, _) => title.to_owned(),
    };
    RobotCard {
        id: binding.id,
        title,
        robot: format!("{}/{}", binding.plugin, binding.robot),
        when: when(&binding.timing, lang, t),
        condition: binding.condition.as_ref().map(condition),
        to: binding.recipient.as_ref().map(|r| recipient(r, t)),
        disabled: binding.disabled.clone(),
        verdict: None,
    }
}

/// When a robot runs, as a sentence.
pub fn when(timing: &Timing, lang: Lang, t: &Text) -> String {
    if let Some(expr) = &timing.schedule {
        return format!("{} {expr}", t.on_schedule);
    }
    let mut text = match (&timing.relative_to, timing.delay_seconds) {
        (Some(at), _) if at.offset_seconds < 0 => {
            format!(
                "{} {} {}",
                duration(at.offset_seconds.unsigned_abs(), lang),
                t.before,
                at.field
            )
        }
        (Some(at), _) => format!("{} {} {}", t.after, duration(at.offset_seconds as u64, lang), at.field),
        (None, 0) if timing.after_previous => capitalised(t.after_previous),
        (None, 0) => t.immediately.to_owned(),
        (None, delay) => format!("{} {}", t.after, duration(delay, lang)),
    };
    if timing
        .relative_to
        .as_ref()
        .is_some_and(|at| at.if_empty == crate::domain::IfEmpty::Skip)
    {
        text = format!("{text}, {}", t.skipped_if_empty);
    }
    if timing.after_previous && (timing.delay_seconds > 0 || timing.relative_to.is_some()) {
        text = format!("{text}, {}", t.after_previous);
    }
    if timing.working_time {
        text = format!("{text}, {}", t.in_working_time);
    }
    if timing.skip_outside_working_time {
        text = format!("{text}, {}", t.only_in_working_time);
    }
    text
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
}

/// A duration in its largest whole unit: `3 d`, `2 h`, `90 min`, `45 s`.
fn duration(seconds: u64, lang: Lang) -> String {
    let (day, hour, minute, second) = match lang {
        Lang::En => ("d", "h", "min", "s"),
        Lang::Ru => ("д", "ч", "мин", "с"),
    };
    match seconds {
        s if s > 0 && s % 86_400 == 0 => format!("{} {day}", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{} {hour}", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{} {minute}", s / 60),
        s => format!("{s} {second}"),
    }
}

/// A condition as its fields, operators and values.
pub fn condition(c: &Condition) -> String {
    match c {
        Condition::All(parts) => parts.iter().map(nested).collect::<Vec<_>>().join(" and "),
        Condition::Any(parts) => parts.iter().map(nested).collect::<Vec<_>>().join(" or "),
        Condition::Compare { field, op, value } => {
            let op = match op {
                Op::Eq => "=",
                Op::Ne => "≠",
                Op::Gt => ">",
                Op::Ge => "≥",
                Op::Lt => "<",
                Op::Le => "≤",
                Op::Contains => "contains",
                Op::Empty => return format!("{field} is empty"),
                Op::NotEmpty => return format!("{field} is not empty"),
            };
            let value = match value {
                FieldValue::Empty => "—".to_owned(),
                value => value.to_string(),
            };
            format!("{field} {op} {value}")
        }
    }
}

fn nested(c: &Condition) -> String {
    match c {
        Condition::Compare { .. } => condition(c),
        _ => format!("({})", condition(c)),
    }
}

fn recipient(r: &Recipient, t: &Text) -> String {
    match r {
        Recipient::Responsible => t.responsible.to_owned(),
        Recipient::Supervisor => t.supervisor.to_owned(),
        Recipient::User(id) => format!("{} {id}", t.user),
        Recipient::Constant(code) => format!("{{=GlobalConst.{code}}}"),
        Recipient::Among(among) => {
            let users = among.users.iter().map(|id| format!("{} {id}", t.member));
            let departments = (among.departments.iter()).map(|id| format!("{} {id}", t.department_lower));
            let people = users.chain(departments).collect::<Vec<_>>().join(", ");
            match among.skip_absent {
                true => format!("{}: {people} ({})", t.one_of_people, t.those_present),
                false => format!("{}: {people}", t.one_of_people),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RelativeTo;

    #[test]
    fn timings_read_as_sentences_in_both_languages() {
        let (en, ru) = (Lang::En.text(), Lang::Ru.text());
        let timing = |json: &str| -> Timing { serde_json::from_str(json).unwrap() };
        assert_eq!(when(&timing("{}"), Lang::En, en), "Immediately");
        assert_eq!(when(&timing(r#"{"delay_seconds": 259200}"#), Lang::En, en), "After 3 d");
        assert_eq!(when(&timing(r#"{"delay_seconds": 259200}"#), Lang::Ru, ru), "Через 3 д");
        assert_eq!(
            when(&timing(r#"{"after_previous": true}"#), Lang::En, en),
            "After the previous robot"
        );
        assert_eq!(
            when(
                &timing(r#"{"after_previous": true, "delay_seconds": 7200, "working_time": true}"#),
                Lang::En,
                en
            ),
            "After 2 h, after the previous robot, in working time"
        );
        let before = Timing {
            relative_to: Some(RelativeTo {
                field: "UF_WEBINAR".into(),
                offset_seconds: -86_400,
                if_empty: crate::domain::IfEmpty::Wait,
            }),
            ..Timing::default()
        };
        assert_eq!(when(&before, Lang::En, en), "1 d before UF_WEBINAR");
        let skipped = Timing {
            relative_to: Some(RelativeTo {
                field: "UF_WEBINAR".into(),
                offset_seconds: -86_400,
                if_empty: crate::domain::IfEmpty::Skip,
            }),
            ..Timing::default()
        };
        assert_eq!(
            when(&skipped, Lang::En, en),
            "1 d before UF_WEBINAR, skipped if it is empty"
        );
        assert_eq!(
            when(
                &timing(r#"{"delay_seconds": 300, "skip_outside_working_time": true}"#),
                Lang::En,
                en
            ),
            "After 5 min, only in working time, else skipped"
        );
    }

    #[test]
    fn a_group_recipient_reads_as_one_of_its_people() {
        let (en, ru) = (Lang::En.text(), Lang::Ru.text());
        let among: Recipient = serde_json::from_str(r#"{"among": {"users": [11], "departments": [2]}}"#).unwrap();
        assert_eq!(recipient(&among, en), "one of: user 11, department 2 (those present)");
        assert_eq!(
            recipient(&among, ru),
            "одному из: сотрудник 11, отдел 2 (только присутствующие)"
        );
        let all: Recipient = serde_json::from_str(r#"{"among": {"users": [11, 12], "skip_absent": false}}"#).unwrap();
        assert_eq!(recipient(&all, en), "one of: user 11, user 12");
    }

    #[test]
    fn conditions_read_as_comparisons() {
        let c: Condition = serde_json::from_str(
            r#"{"all": [{"compare": {"field": "OPPORTUNITY", "op": "ge", "value": {"money": "100000.00 RUB"}}},
                {"any": [{"compare": {"field": "UF_VIP", "op": "eq", "value": true}},
                         {"compare": {"field": "PHONE", "op": "not-empty", "value": null}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            condition(&c),
            "OPPORTUNITY ≥ 100000.00 RUB and (UF_VIP = true or PHONE is not empty)"
        );
    }
}
