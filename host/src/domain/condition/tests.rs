use serde_json::json;

use super::*;

fn entity() -> Entity {
    serde_json::from_value(json!({
        "kind": "deal", "id": 42, "pipeline": "general", "stage": "NEW", "responsible": 5,
        "fields": {"TITLE": "Big deal", "OPPORTUNITY": {"money": "150000.00 RUB"}},
        "custom_fields": {
            "UF_IN_STOCK": false, "UF_FLAG": "Y", "UF_COUNT": 3, "UF_RATE": {"decimal": "2.50"},
            "UF_DATE": {"date": "2026-11-25"}, "UF_SEGMENT": {"option": "vip"},
            "UF_TAGS": [{"option": "vip"}, {"option": "new"}], "UF_BLANK": "", "UF_NONE": [],
        },
        "created_at": "2026-11-25T09:00:00Z",
    }))
    .unwrap()
}

fn cmp(field: &str, op: Op, value: &str) -> Condition {
    let value = serde_json::from_str(value).unwrap();
    Condition::Compare {
        field: field.into(),
        op,
        value,
    }
}

/// Evaluates `condition` on [`entity`]; `expected` is `pass: `, `fail: `
/// or `error: ` and the reason or message.
#[track_caller]
fn verdict(condition: Condition, expected: &str) {
    let actual = match evaluate(&condition, &entity()) {
        Ok(Verdict { passed: true, reason }) => format!("pass: {reason}"),
        Ok(Verdict { passed: false, reason }) => format!("fail: {reason}"),
        Err(error) => format!("error: {error}"),
    };
    assert_eq!(actual, expected, "{condition:?}");
}

#[test]
fn comparisons() {
    use Op::*;
    for (field, op, value, expected) in [
        // Text: exact and case-sensitive; a missing field is empty.
        (
            "TITLE",
            Eq,
            r#""Big deal""#,
            "pass: TITLE is Big deal, wanted = Big deal",
        ),
        (
            "TITLE",
            Eq,
            r#""big deal""#,
            "fail: TITLE is Big deal, wanted = big deal",
        ),
        ("TITLE", Ne, r#""x""#, "pass: TITLE is Big deal, wanted != x"),
        ("UF_MISSING", Eq, r#""x""#, "fail: UF_MISSING is empty, wanted = x"),
        ("UF_MISSING", Ne, r#""x""#, "pass: UF_MISSING is empty, wanted != x"),
        ("UF_MISSING", Eq, "null", "pass: UF_MISSING is empty, wanted = empty"),
        ("UF_BLANK", Eq, "null", "pass: UF_BLANK is empty, wanted = empty"),
        // Booleans, also as Bitrix24's Y/N and yes/no/true/false text.
        ("UF_IN_STOCK", Eq, r#""yes""#, "fail: UF_IN_STOCK is no, wanted = yes"),
        ("UF_IN_STOCK", Eq, "true", "fail: UF_IN_STOCK is no, wanted = yes"),
        ("UF_IN_STOCK", Ne, r#""Y""#, "pass: UF_IN_STOCK is no, wanted != Y"),
        (
            "UF_IN_STOCK",
            Eq,
            r#""FALSE""#,
            "pass: UF_IN_STOCK is no, wanted = FALSE",
        ),
        ("UF_IN_STOCK", Eq, r#""n""#, "pass: UF_IN_STOCK is no, wanted = n"),
        ("UF_FLAG", Eq, "true", "pass: UF_FLAG is Y, wanted = yes"),
        (
            "UF_IN_STOCK",
            Eq,
            r#""maybe""#,
            "error: cannot compare UF_IN_STOCK (boolean) with text; give the condition a value UF_IN_STOCK can be compared with",
        ),
        // Numbers across integer, decimal and money amounts, exactly.
        (
            "OPPORTUNITY",
            Eq,
            r#"{"money": "150000 RUB"}"#,
            "pass: OPPORTUNITY is 150000.00 RUB, wanted = 150000 RUB",
        ),
        (
            "OPPORTUNITY",
            Eq,
            r#"{"money": "150000.00 USD"}"#,
            "fail: OPPORTUNITY is 150000.00 RUB, wanted = 150000.00 USD",
        ),
        (
            "OPPORTUNITY",
            Eq,
            "150000",
            "pass: OPPORTUNITY is 150000.00 RUB, wanted = 150000",
        ),
        (
            "OPPORTUNITY",
            Gt,
            r#"{"decimal": "149999.99"}"#,
            "pass: OPPORTUNITY is 150000.00 RUB, wanted > 149999.99",
        ),
        (
            "OPPORTUNITY",
            Le,
            r#"{"money": "149999.99 RUB"}"#,
            "fail: OPPORTUNITY is 150000.00 RUB, wanted <= 149999.99 RUB",
        ),
        (
            "UF_COUNT",
            Eq,
            r#"{"decimal": "3.000"}"#,
            "pass: UF_COUNT is 3, wanted = 3.000",
        ),
        ("UF_RATE", Lt, "3", "pass: UF_RATE is 2.50, wanted < 3"),
        (
            "UF_RATE",
            Ge,
            r#"{"decimal": "2.5"}"#,
            "pass: UF_RATE is 2.50, wanted >= 2.5",
        ),
        ("UF_COUNT", Le, "2", "fail: UF_COUNT is 3, wanted <= 2"),
        (
            "OPPORTUNITY",
            Gt,
            r#"{"money": "1.00 USD"}"#,
            "error: cannot compare OPPORTUNITY (money in RUB) with money in USD; give the condition a value OPPORTUNITY can be compared with",
        ),
        (
            "OPPORTUNITY",
            Lt,
            r#"{"date": "2026-01-01"}"#,
            "error: cannot compare OPPORTUNITY (money in RUB) with date; give the condition a value OPPORTUNITY can be compared with",
        ),
        (
            "UF_COUNT",
            Eq,
            r#""3""#,
            "error: cannot compare UF_COUNT (integer) with text; give the condition a value UF_COUNT can be compared with",
        ),
        // Dates and date-times; a date is its midnight in UTC.
        (
            "UF_DATE",
            Eq,
            r#"{"datetime": "2026-11-25T00:00:00Z"}"#,
            "pass: UF_DATE is 2026-11-25, wanted = 2026-11-25T00:00:00.000Z",
        ),
        (
            "UF_DATE",
            Lt,
            r#"{"datetime": "2026-11-25T00:00:01Z"}"#,
            "pass: UF_DATE is 2026-11-25, wanted < 2026-11-25T00:00:01.000Z",
        ),
        (
            "UF_DATE",
            Ge,
            r#"{"date": "2026-11-26"}"#,
            "fail: UF_DATE is 2026-11-25, wanted >= 2026-11-26",
        ),
        (
            "DATE_CREATE",
            Gt,
            r#"{"date": "2026-11-25"}"#,
            "pass: DATE_CREATE is 2026-11-25T09:00:00.000Z, wanted > 2026-11-25",
        ),
        // Text orders lexicographically; nothing is ordered against empty.
        ("TITLE", Gt, r#""Apple""#, "pass: TITLE is Big deal, wanted > Apple"),
        ("TITLE", Lt, r#""Big""#, "fail: TITLE is Big deal, wanted < Big"),
        ("UF_MISSING", Gt, "1", "fail: UF_MISSING is empty, wanted > 1"),
        // Options compare codes, with options or text.
        (
            "UF_SEGMENT",
            Eq,
            r#"{"option": "vip"}"#,
            "pass: UF_SEGMENT is vip, wanted = vip",
        ),
        ("UF_SEGMENT", Eq, r#""vip""#, "pass: UF_SEGMENT is vip, wanted = vip"),
        (
            "UF_SEGMENT",
            Ne,
            r#"{"option": "new"}"#,
            "pass: UF_SEGMENT is vip, wanted != new",
        ),
        // Lists: equal to a single value means holding it.
        (
            "UF_TAGS",
            Eq,
            r#"{"option": "new"}"#,
            "pass: UF_TAGS is [vip, new], wanted = new",
        ),
        (
            "UF_TAGS",
            Eq,
            r#"{"option": "old"}"#,
            "fail: UF_TAGS is [vip, new], wanted = old",
        ),
        (
            "UF_TAGS",
            Eq,
            r#"[{"option": "vip"}, {"option": "new"}]"#,
            "pass: UF_TAGS is [vip, new], wanted = [vip, new]",
        ),
        (
            "UF_TAGS",
            Eq,
            r#"[{"option": "new"}, {"option": "vip"}]"#,
            "fail: UF_TAGS is [vip, new], wanted = [new, vip]",
        ),
        (
            "UF_TAGS",
            Gt,
            r#"{"option": "a"}"#,
            "error: cannot compare UF_TAGS (list of option) with option; give the condition a value UF_TAGS can be compared with",
        ),
        // Contains: text in text, a value in a list.
        (
            "TITLE",
            Contains,
            r#""deal""#,
            "pass: TITLE is Big deal, wanted contains deal",
        ),
        (
            "TITLE",
            Contains,
            r#""Deal""#,
            "fail: TITLE is Big deal, wanted contains Deal",
        ),
        (
            "UF_TAGS",
            Contains,
            r#"{"option": "vip"}"#,
            "pass: UF_TAGS is [vip, new], wanted contains vip",
        ),
        (
            "UF_NONE",
            Contains,
            r#"{"option": "vip"}"#,
            "fail: UF_NONE is empty, wanted contains vip",
        ),
        (
            "UF_MISSING",
            Contains,
            r#""x""#,
            "fail: UF_MISSING is empty, wanted contains x",
        ),
        (
            "UF_COUNT",
            Contains,
            r#""3""#,
            "error: cannot compare UF_COUNT (integer) with text; give the condition a value UF_COUNT can be compared with",
        ),
        // Empty: absent, empty text, empty list.
        ("UF_MISSING", Empty, "null", "pass: UF_MISSING is empty, wanted empty"),
        ("UF_BLANK", Empty, "null", "pass: UF_BLANK is empty, wanted empty"),
        ("UF_NONE", Empty, "null", "pass: UF_NONE is empty, wanted empty"),
        ("TITLE", Empty, "null", "fail: TITLE is Big deal, wanted empty"),
        ("TITLE", NotEmpty, "null", "pass: TITLE is Big deal, wanted not empty"),
        ("UF_NONE", NotEmpty, "null", "fail: UF_NONE is empty, wanted not empty"),
        // The same specials as in expressions.
        ("ID", Eq, "42", "pass: ID is 42, wanted = 42"),
        ("STAGE_ID", Eq, r#""NEW""#, "pass: STAGE_ID is NEW, wanted = NEW"),
        (
            "CATEGORY_ID",
            Ne,
            r#""general""#,
            "fail: CATEGORY_ID is general, wanted != general",
        ),
        (
            "ASSIGNED_BY_ID",
            Eq,
            r#"{"user": 5}"#,
            "pass: ASSIGNED_BY_ID is user 5, wanted = user 5",
        ),
        (
            "ASSIGNED_BY_FRIENDLY",
            Eq,
            r#""Anna""#,
            "error: ASSIGNED_BY_FRIENDLY is a display name, known only with the portal's directory; test ASSIGNED_BY_ID instead",
        ),
    ] {
        verdict(cmp(field, op, value), expected);
    }
}

#[test]
fn all_and_any() {
    let in_stock = || cmp("UF_IN_STOCK", Op::Eq, r#""yes""#);
    let titled = || cmp("TITLE", Op::NotEmpty, "null");
    let three = || cmp("UF_COUNT", Op::Eq, "3");
    let many = || cmp("UF_COUNT", Op::Gt, "5");
    let broken = || cmp("OPPORTUNITY", Op::Gt, r#"{"date": "2026-01-01"}"#);
    for (condition, expected) in [
        (Condition::All(vec![]), "pass: nothing to check"),
        (Condition::Any(vec![]), "fail: no alternative given"),
        (
            Condition::All(vec![titled(), in_stock(), broken()]),
            "fail: UF_IN_STOCK is no, wanted = yes",
        ),
        (
            Condition::All(vec![titled(), three()]),
            "pass: TITLE is Big deal, wanted not empty and UF_COUNT is 3, wanted = 3",
        ),
        (
            Condition::Any(vec![in_stock(), many()]),
            "fail: UF_IN_STOCK is no, wanted = yes and UF_COUNT is 3, wanted > 5",
        ),
        (
            Condition::Any(vec![in_stock(), three(), broken()]),
            "pass: UF_COUNT is 3, wanted = 3",
        ),
        (
            Condition::Any(vec![Condition::All(vec![titled(), in_stock()]), many()]),
            "fail: UF_IN_STOCK is no, wanted = yes and UF_COUNT is 3, wanted > 5",
        ),
        (
            Condition::All(vec![titled(), broken()]),
            "error: cannot compare OPPORTUNITY (money in RUB) with date; give the condition a value OPPORTUNITY can be compared with",
        ),
    ] {
        verdict(condition, expected);
    }
}
