use serde_json::json;

use super::*;
use crate::domain::automation::{Department, User};

fn entity() -> Entity {
    serde_json::from_value(json!({
        "kind": "deal", "id": 42, "pipeline": "general", "stage": "NEW", "responsible": 5,
        "fields": {"TITLE": "Big deal", "OPPORTUNITY": {"money": "150000.00 RUB"}},
        "custom_fields": {"UF_CRM_X": {"option": "vip"}},
        "created_at": "2026-11-25T09:00:00Z", "updated_at": "2026-11-26T10:30:00Z",
    }))
    .unwrap()
}

fn directory() -> Directory {
    let user = |id, name: &str| User {
        id,
        name: name.into(),
        department: Some(1),
        active: true,
        away: None,
        hours: None,
    };
    Directory {
        users: vec![user(5, "Anna"), user(9, "Boris")],
        departments: vec![Department {
            id: 1,
            name: "Sales".into(),
            head: Some(9),
            parent: None,
        }],
    }
}

fn value(json: &str) -> FieldValue {
    serde_json::from_str(json).unwrap()
}

/// Resolves `input` (a value's JSON form) against [`entity`]; `expected`
/// is the result's JSON form or `error: ` and the message.
#[track_caller]
fn resolves_in(entity: &Entity, input: &str, expected: &str) {
    let constants = Constants::from([
        ("Clerk".into(), value(r#"{"user": 5}"#)),
        ("Boss".into(), value(r#"{"user": 12}"#)),
        ("Observers".into(), value(r#"[{"user": 5}, {"user": 9}]"#)),
    ]);
    let returns = BTreeMap::from([("send".into(), Fields::from([("MESSAGE_ID".into(), value(r#""m-1""#))]))]);
    let directory = directory();
    let event = Fields::from([("AMOUNT".into(), value(r#"{"money": "1500.00 RUB"}"#))]);
    let scope = Scope {
        entity,
        directory: &directory,
        constants: &constants,
        returns: &returns,
        event: &event,
        time_zone: chrono_tz::Europe::Moscow,
    };
    let actual = match resolve(&value(input), &scope) {
        Ok(resolved) => resolved.to_json().to_string(),
        Err(error) => format!("error: {error}"),
    };
    assert_eq!(actual, expected, "{input}");
}

#[track_caller]
fn resolves(input: &str, expected: &str) {
    resolves_in(&entity(), input, expected);
}

#[test]
fn a_lone_expression_keeps_its_type() {
    for (input, expected) in [
        (r#""{=Document.TITLE}""#, r#""Big deal""#),
        (r#""{=Document.OPPORTUNITY}""#, r#"{"money":"150000.00 RUB"}"#),
        (r#""  {=GlobalConst.Clerk} ""#, r#"{"user":5}"#),
        (r#""{=Document.UF_CRM_X}""#, r#"{"option":"vip"}"#),
        (r#""{=Document.ID}""#, "42"),
        (r#""{=Document.STAGE_ID}""#, r#""NEW""#),
        (r#""{=Document.CATEGORY_ID}""#, r#""general""#),
        (r#""{=Document.PIPELINE}""#, r#""general""#),
        (r#""{=Document.ASSIGNED_BY_ID}""#, r#"{"user":5}"#),
        (r#""{=Document.ASSIGNED_BY_FRIENDLY}""#, r#""Anna""#),
        (r#""{=Document.ASSIGNED_BY_PRINTABLE}""#, r#""Anna""#),
        (
            r#""{=Document.DATE_CREATE}""#,
            r#"{"datetime":"2026-11-25T09:00:00.000Z"}"#,
        ),
        (
            r#""{=Document.DATE_MODIFY}""#,
            r#"{"datetime":"2026-11-26T10:30:00.000Z"}"#,
        ),
        (r#""{=Responsible}""#, r#"{"user":5}"#),
        (r#""{=Supervisor}""#, r#"{"user":9}"#),
        (r#""{=Robot.send.MESSAGE_ID}""#, r#""m-1""#),
        (r#""{=GlobalConst.Observers}""#, r#"[{"user":5},{"user":9}]"#),
        // Absent fields and unset returned values are empty, as in Bitrix24.
        (r#""{=Document.UF_MISSING}""#, "null"),
        (r#""{=Robot.send.NOT_RETURNED}""#, "null"),
        // The event that moved the entity here; a value it left out is empty.
        (r#""{=Event.AMOUNT}""#, r#"{"money":"1500.00 RUB"}"#),
        (r#""{=Event.ORDER}""#, "null"),
    ] {
        resolves(input, expected);
    }
}

#[test]
fn dates_and_times_read_in_the_portals_zone() {
    let mut entity = entity();
    entity
        .custom_fields
        .insert("UF_MEETING".into(), value(r#"{"datetime": "2026-12-06T11:30:00Z"}"#));
    entity
        .custom_fields
        .insert("UF_DUE".into(), value(r#"{"date": "2026-12-31"}"#));
    entity
        .custom_fields
        .insert("UF_LATE".into(), value(r#"{"datetime": "2026-12-06T22:05:00Z"}"#));
    for (input, expected) in [
        // Moscow is UTC+3: 11:30Z is 14:30 there.
        (
            r#""Meeting at {=Document.UF_MEETING}""#,
            r#""Meeting at 06.12.2026 14:30""#,
        ),
        (r#""Pay by {=Document.UF_DUE}""#, r#""Pay by 31.12.2026""#),
        // 22:05Z is the next day in Moscow.
        (r#""Late: {=Document.UF_LATE}""#, r#""Late: 07.12.2026 01:05""#),
        (r#""Created {=Document.DATE_CREATE}""#, r#""Created 25.11.2026 12:00""#),
        // Alone, a date-time keeps its type: a robot gets the instant.
        (
            r#""{=Document.UF_MEETING}""#,
            r#"{"datetime":"2026-12-06T11:30:00.000Z"}"#,
        ),
    ] {
        resolves_in(&entity, input, expected);
    }
}

#[test]
fn mixed_text_displays_values_and_user_names() {
    for (input, expected) in [
        (
            r#""Deal {=Document.TITLE}: {=Document.OPPORTUNITY}""#,
            r#""Deal Big deal: 150000.00 RUB""#,
        ),
        (
            r#""{=Document.ASSIGNED_BY_FRIENDLY}, prepare the contract""#,
            r#""Anna, prepare the contract""#,
        ),
        (
            r#""To {=GlobalConst.Clerk} and {=GlobalConst.Boss}""#,
            r#""To Anna and user 12""#,
        ),
        (
            r#""Watchers: {=GlobalConst.Observers}.""#,
            r#""Watchers: Anna, Boris.""#,
        ),
        (r#""[{=Document.UF_MISSING}]""#, r#""[]""#),
        (r#""{=Document.ID}{=Document.STAGE_ID}""#, r#""42NEW""#),
        // Braces without `=` are literal: JSON in an email body, `{{Title}}`.
        (
            r#""{\"order\": {\"id\": 1}} {{Title}}""#,
            r#""{\"order\": {\"id\": 1}} {{Title}}""#,
        ),
        (r#""no expressions""#, r#""no expressions""#),
    ] {
        resolves(input, expected);
    }
}

#[test]
fn lists_resolve_element_wise_and_flatten() {
    resolves(
        r#"[{"user": 1}, "{=GlobalConst.Observers}", "{=Responsible}", "{=Document.UF_MISSING}", "by {=Responsible}"]"#,
        r#"[{"user":1},{"user":5},{"user":9},{"user":5},"by Anna"]"#,
    );
    resolves(
        r#"["ok", "{=GlobalConst.Nope}"]"#,
        "error: item 1: `{=GlobalConst.Nope}`: there is no global constant `Nope`; define it or use one of: Boss, Clerk, Observers",
    );
}

#[test]
fn other_values_pass_through() {
    for input in [
        r#"{"money":"1.00 RUB"}"#,
        "42",
        "null",
        "true",
        r#"{"option":"{=Document.TITLE}"}"#,
    ] {
        resolves(input, input);
    }
}

#[test]
fn unknown_references_are_errors() {
    for (input, expected) in [
        (
            r#""{=GlobalConst.Clerc}""#,
            "error: `{=GlobalConst.Clerc}`: there is no global constant `Clerc`; define it or use one of: Boss, Clerk, Observers",
        ),
        (
            r#""Sent {=Robot.mail.ID}""#,
            "error: `{=Robot.mail.ID}`: no earlier robot of this stage has the key `mail`; use one of: send",
        ),
        (
            r#""Dear {=Docment.TITLE}""#,
            "error: `{=Docment.TITLE}` at 5: unknown namespace `Docment`; use Document, GlobalConst, Robot, Event, Responsible or Supervisor",
        ),
    ] {
        resolves(input, expected);
    }
}

#[test]
fn without_a_responsible_people_are_empty() {
    let entity = Entity {
        responsible: None,
        ..entity()
    };
    for input in [
        r#""{=Responsible}""#,
        r#""{=Supervisor}""#,
        r#""{=Document.ASSIGNED_BY_FRIENDLY}""#,
    ] {
        resolves_in(&entity, input, "null");
    }
    // Boris heads the top department: nobody supervises him.
    resolves_in(
        &Entity {
            responsible: Some(9),
            ..entity
        },
        r#""{=Supervisor}""#,
        "null",
    );
}

/// Parses `input` (a value's JSON form); `expected` is the references,
/// space-separated, or `error: ` and the message.
#[track_caller]
fn parses(input: &str, expected: &str) {
    let actual = match check(&value(input)) {
        Ok(references) => references.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
        Err(error) => format!("error: {error}"),
    };
    assert_eq!(actual, expected, "{input}");
}

#[test]
fn check_lists_references_and_rejects_bad_syntax() {
    for (input, expected) in [
        (r#""plain text""#, ""),
        (r#""{\"json\": {\"a\": 1}} and {{Title}}""#, ""),
        (r#"{"money": "1.00 RUB"}"#, ""),
        (
            r#""Hi {=Document.TITLE}, {=GlobalConst.Clerk}{=Robot.send.ID} {=Supervisor} {=Responsible}""#,
            "{=Document.TITLE} {=GlobalConst.Clerk} {=Robot.send.ID} {=Supervisor} {=Responsible}",
        ),
        (r#""{= Document.UF_CRM_ДОСТАВКА }""#, "{=Document.UF_CRM_ДОСТАВКА}"),
        (
            r#"[1, "{=Document.TITLE}", "{=GlobalConst.Clerk}"]"#,
            "{=Document.TITLE} {=GlobalConst.Clerk}",
        ),
        (
            r#""Dear {=Docment.TITLE}""#,
            "error: `{=Docment.TITLE}` at 5: unknown namespace `Docment`; use Document, GlobalConst, Robot, Event, Responsible or Supervisor",
        ),
        // Positions are in bytes.
        (
            r#""Привет {=document.TITLE}""#,
            "error: `{=document.TITLE}` at 13: unknown namespace `document`; use Document, GlobalConst, Robot, Event, Responsible or Supervisor",
        ),
        (
            r#""abc {=Document.TITLE""#,
            "error: `{=Document.TITLE` at 4: unclosed expression; end it with `}`",
        ),
        (
            r#""{=Document.TITLE and then a long letter that never closes""#,
            "error: `{=Document.TITLE and then a long letter …` at 0: unclosed expression; end it with `}`",
        ),
        (
            r#""{=}""#,
            "error: `{=}` at 0: empty name; write for example `{=Document.TITLE}`",
        ),
        (
            r#""x {=Document.}""#,
            "error: `{=Document.}` at 2: empty name; write for example `{=Document.TITLE}`",
        ),
        (
            r#""{=Document}""#,
            "error: `{=Document}` at 0: write it as `{=Document.FIELD}`, with names made of letters, digits, `_` and `-`",
        ),
        (
            r#""{=Document.TI TLE}""#,
            "error: `{=Document.TI TLE}` at 0: write it as `{=Document.FIELD}`, with names made of letters, digits, `_` and `-`",
        ),
        (
            r#""{=GlobalConst.A.B}""#,
            "error: `{=GlobalConst.A.B}` at 0: write it as `{=GlobalConst.NAME}`, with names made of letters, digits, `_` and `-`",
        ),
        (
            r#""{=Robot.send}""#,
            "error: `{=Robot.send}` at 0: write it as `{=Robot.KEY.VALUE}`, with names made of letters, digits, `_` and `-`",
        ),
        (
            r#""{=Supervisor.NAME}""#,
            "error: `{=Supervisor.NAME}` at 0: write it as `{=Supervisor}`, with names made of letters, digits, `_` and `-`",
        ),
        (
            r#"["{=Document.TITLE}", "{=Nope}"]"#,
            "error: item 1: `{=Nope}` at 0: unknown namespace `Nope`; use Document, GlobalConst, Robot, Event, Responsible or Supervisor",
        ),
    ] {
        parses(input, expected);
    }
}
