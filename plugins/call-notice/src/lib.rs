//! A trigger component (the `trigger` world, written with the SDK) that turns
//! a telephony provider's call notice webhook into `incoming_call` and
//! `missed_call` hits on the caller's contact, the way Bitrix24's call
//! triggers work.
//!
//! It owns the notice's JSON shape, the decision which notices fire which
//! trigger, and phone normalisation. It keeps no state and calls only `log`:
//! finding the contact is left to the host, through a `lookup` target.
//!
//! Everything except `handle`'s logging is plain Rust, unit tested natively
//! (`cargo test -p call-notice`); a host import called outside a component
//! panics.

use robohost_sdk::{EntityKind, Failure, Hit, Request, Trigger, TriggerInfo, log};
use serde_json::{Map, Value as Json};

/// Fires when an inbound call was answered and has ended.
const INCOMING_CALL: &str = "incoming_call";
/// Fires when an inbound call ended unanswered.
const MISSED_CALL: &str = "missed_call";

/// The component's exports.
struct CallNotice;

impl Trigger for CallNotice {
    fn describe() -> Vec<TriggerInfo> {
        vec![
            TriggerInfo::new(INCOMING_CALL)
                .name("en", "Incoming call")
                .name("ru", "Входящий звонок")
                .description("en", "An inbound call from the contact was answered and has ended.")
                .description("ru", "Входящий звонок от контакта принят и завершён."),
            TriggerInfo::new(MISSED_CALL)
                .name("en", "Missed call")
                .name("ru", "Пропущенный звонок")
                .description("en", "An inbound call from the contact ended unanswered.")
                .description("ru", "Входящий звонок от контакта завершился без ответа."),
        ]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
        let Some(call) = accept(request)? else {
            return Ok(vec![]);
        };
        let id = call.call_id.as_deref().unwrap_or("without id");
        log::info(format!(
            "{} from {} (call {id}, {} s)",
            call.trigger, call.from, call.duration
        ));
        Ok(vec![call.into_hit()])
    }
}

robohost_sdk::export_triggers!(CallNotice);

/// An inbound call that fires one of the triggers.
#[derive(Debug, PartialEq)]
struct Call {
    /// [`INCOMING_CALL`] or [`MISSED_CALL`].
    trigger: &'static str,
    /// The caller's number, normalised by [`normalize_phone`].
    from: String,
    /// The provider's id of the call, when the notice has one.
    call_id: Option<String>,
    /// How long the call lasted, in seconds; 0 when the notice does not say.
    duration: i64,
}

impl Call {
    /// The hit on the contacts with the caller's number, carrying the call's data.
    fn into_hit(self) -> Hit {
        let mut hit = Hit::lookup(self.trigger, EntityKind::Contact, "PHONE", self.from.as_str());
        if let Some(id) = self.call_id {
            hit = hit.field("CALL_ID", id);
        }
        hit.field("DURATION", self.duration).field("FROM", self.from)
    }
}

/// Checks the method and reads the notice: the call it reports, or none when
/// the notice fires no trigger.
fn accept(request: &Request) -> Result<Option<Call>, Failure> {
    if request.method != "POST" {
        return Err(Failure::new(
            "method",
            format!(
                "method {} is not accepted: call notices are sent with POST",
                request.method
            ),
        ));
    }
    parse(&request.body)
}

/// Reads a notice body such as
/// `{"event": "call_end", "direction": "inbound", "from": "+7 912 345-67-89", "duration": 125, "call_id": "abc-1"}`.
fn parse(body: &[u8]) -> Result<Option<Call>, Failure> {
    let json: Json =
        serde_json::from_slice(body).map_err(|error| Failure::bad_payload(format!("the body is not JSON: {error}")))?;
    let notice = json
        .as_object()
        .ok_or_else(|| Failure::bad_payload("the body is not a JSON object"))?;
    let event = text(notice, "event")?;
    let direction = text(notice, "direction")?;
    let from = text(notice, "from")?;

    // Calls we place and notices of a call still going on are no one's
    // trigger; they are accepted without a look at the rest, because a
    // provider retries a notice we reject.
    if direction != "inbound" || !matches!(event, "call_end" | "call_missed") {
        return Ok(None);
    }
    let duration = seconds(notice, "duration")?;
    let trigger = if event == "call_end" && duration > 0 {
        INCOMING_CALL
    } else {
        MISSED_CALL
    };
    let from = normalize_phone(from)
        .ok_or_else(|| Failure::bad_payload(format!("field `from` holds no phone number: {from:?}")))?;
    let call_id = match notice.get("call_id") {
        None | Some(Json::Null) => None,
        Some(Json::String(id)) => Some(id.clone()),
        // Some providers number their calls.
        Some(Json::Number(id)) => Some(id.to_string()),
        Some(other) => {
            return Err(Failure::bad_payload(format!(
                "field `call_id` is {other}, not a string or a number"
            )));
        }
    };
    Ok(Some(Call {
        trigger,
        from,
        call_id,
        duration,
    }))
}

/// The number as `+` and its digits, or none when it has no digits. A Russian
/// number dialled nationally (11 digits, the first `8`, no `+`) gets `+7`, so
/// both spellings find the same contact.
fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let national = digits.len() == 11 && digits.starts_with('8') && !raw.trim_start().starts_with('+');
    Some(if national {
        format!("+7{}", &digits[1..])
    } else {
        format!("+{digits}")
    })
}

/// The string field `name`, which must be present.
fn text<'a>(notice: &'a Map<String, Json>, name: &str) -> Result<&'a str, Failure> {
    match notice.get(name) {
        Some(Json::String(value)) => Ok(value),
        None | Some(Json::Null) => Err(Failure::bad_payload(format!("field `{name}` is missing"))),
        Some(other) => Err(Failure::bad_payload(format!("field `{name}` is {other}, not a string"))),
    }
}

/// The field `name` as whole seconds; 0 when it is absent.
fn seconds(notice: &Map<String, Json>, name: &str) -> Result<i64, Failure> {
    match notice.get(name) {
        None | Some(Json::Null) => Ok(0),
        Some(value) => value
            .as_u64()
            .and_then(|seconds| i64::try_from(seconds).ok())
            .ok_or_else(|| Failure::bad_payload(format!("field `{name}` is {value}, not a whole number of seconds"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use robohost_sdk::{Field, Lookup, Target, Value};

    fn request(method: &str, body: &str) -> Request {
        Request::new(method, body).with_header("content-type", "application/json")
    }

    /// Asserts what a POSTed `body` turns into.
    fn check(body: &str, expect: Option<Call>) {
        assert_eq!(accept(&request("POST", body)).unwrap(), expect, "body: {body}");
    }

    /// Asserts that a POSTed `body` is refused as a bad payload naming `name`.
    fn check_bad(body: &str, name: &str) {
        let failure = accept(&request("POST", body)).unwrap_err();
        assert_eq!(failure.code, "bad_payload", "body: {body}");
        assert!(
            failure.message.contains(name),
            "{:?} does not name {name}",
            failure.message
        );
        assert!(!failure.retryable);
    }

    fn call(trigger: &'static str, call_id: Option<&str>, duration: i64) -> Option<Call> {
        Some(Call {
            trigger,
            from: "+79123456789".into(),
            call_id: call_id.map(Into::into),
            duration,
        })
    }

    #[test]
    fn normalises_phones() {
        for (raw, expect) in [
            ("+7 (912) 345-67-89", Some("+79123456789")),
            ("8 (912) 345-67-89", Some("+79123456789")),
            ("79123456789", Some("+79123456789")),
            ("+74951234567", Some("+74951234567")),
            // Not a national Russian number: the 8 is kept.
            ("+8 800 555 35 35", Some("+88005553535")),
            ("8 912 345", Some("+8912345")),
            ("+49 30 123456", Some("+4930123456")),
            ("", None),
            ("anonymous", None),
            ("+ ( ) -", None),
        ] {
            assert_eq!(normalize_phone(raw).as_deref(), expect, "raw: {raw:?}");
        }
    }

    #[test]
    fn answered_inbound_call_is_incoming() {
        check(
            r#"{"event": "call_end", "direction": "inbound", "from": "+7 (912) 345-67-89", "to": "+74951234567", "duration": 125, "call_id": "abc-1"}"#,
            call(INCOMING_CALL, Some("abc-1"), 125),
        );
    }

    #[test]
    fn unanswered_inbound_call_is_missed() {
        check(
            r#"{"event": "call_end", "direction": "inbound", "from": "8 912 345 67 89", "to": "+74951234567", "duration": 0, "call_id": "abc-2"}"#,
            call(MISSED_CALL, Some("abc-2"), 0),
        );
        check(
            r#"{"event": "call_missed", "direction": "inbound", "from": "+79123456789", "call_id": 42}"#,
            call(MISSED_CALL, Some("42"), 0),
        );
        check(
            r#"{"event": "call_end", "direction": "inbound", "from": "+79123456789"}"#,
            call(MISSED_CALL, None, 0),
        );
    }

    #[test]
    fn other_calls_fire_nothing() {
        check(
            r#"{"event": "call_end", "direction": "outbound", "from": "+74951234567", "to": "+79123456789", "duration": 60, "call_id": "abc-3"}"#,
            None,
        );
        check(
            r#"{"event": "call_missed", "direction": "outbound", "from": "+74951234567"}"#,
            None,
        );
        check(
            r#"{"event": "call_start", "direction": "inbound", "from": "+79123456789", "call_id": "abc-4"}"#,
            None,
        );
        // Irrelevant notices are not checked further.
        check(
            r#"{"event": "call_start", "direction": "inbound", "from": "anonymous", "duration": -1}"#,
            None,
        );
    }

    #[test]
    fn refuses_other_methods() {
        let failure = accept(&request("GET", "")).unwrap_err();
        assert_eq!(failure.code, "method");
        assert!(failure.message.contains("GET"), "{:?}", failure.message);
        assert!(!failure.retryable);
    }

    #[test]
    fn refuses_bad_payloads() {
        check_bad("event=call_end", "not JSON");
        check_bad("", "not JSON");
        check_bad(r#"["call_end"]"#, "not a JSON object");
        check_bad(r#"{"direction": "inbound", "from": "+79123456789"}"#, "`event`");
        check_bad(r#"{"event": "call_end", "from": "+79123456789"}"#, "`direction`");
        check_bad(r#"{"event": "call_end", "direction": "inbound"}"#, "`from`");
        check_bad(
            r#"{"event": 5, "direction": "inbound", "from": "+79123456789"}"#,
            "`event`",
        );
        check_bad(r#"{"event": "call_end", "direction": "inbound", "from": ""}"#, "`from`");
        check_bad(
            r#"{"event": "call_missed", "direction": "inbound", "from": "anonymous"}"#,
            "`from`",
        );
        check_bad(
            r#"{"event": "call_end", "direction": "inbound", "from": "+79123456789", "duration": -5}"#,
            "`duration`",
        );
        check_bad(
            r#"{"event": "call_end", "direction": "inbound", "from": "+79123456789", "duration": "125"}"#,
            "`duration`",
        );
        check_bad(
            r#"{"event": "call_end", "direction": "inbound", "from": "+79123456789", "duration": 12.5}"#,
            "`duration`",
        );
        check_bad(
            r#"{"event": "call_end", "direction": "inbound", "from": "+79123456789", "call_id": ["abc"]}"#,
            "`call_id`",
        );
    }

    #[test]
    fn hit_looks_up_the_caller_and_carries_the_call() {
        let hit = call(INCOMING_CALL, Some("abc-1"), 125).unwrap().into_hit();
        let text = |text: &str| Value::Text(text.into());
        assert_eq!(
            hit,
            Hit {
                trigger: "incoming_call".into(),
                target: Target::Lookup(Lookup {
                    kind: EntityKind::Contact,
                    code: "PHONE".into(),
                    value: text("+79123456789"),
                }),
                data: vec![
                    Field::new("CALL_ID", text("abc-1")),
                    Field::new("DURATION", Value::Integer(125)),
                    Field::new("FROM", text("+79123456789")),
                ],
            }
        );
        let without_id = call(MISSED_CALL, None, 0).unwrap().into_hit();
        let codes: Vec<_> = without_id.data.iter().map(|field| field.code.as_str()).collect();
        assert_eq!(codes, ["DURATION", "FROM"]);
    }

    #[test]
    fn describes_both_triggers_in_both_languages() {
        let triggers = CallNotice::describe();
        let codes: Vec<_> = triggers.iter().map(|info| info.code.as_str()).collect();
        assert_eq!(codes, [INCOMING_CALL, MISSED_CALL]);
        for info in &triggers {
            for texts in [&info.names, &info.descriptions] {
                let langs: Vec<_> = texts.iter().map(|text| text.lang.as_str()).collect();
                assert_eq!(langs, ["en", "ru"], "{}", info.code);
            }
        }
        assert_eq!(triggers[1].names[1].text, "Пропущенный звонок");
    }
}
