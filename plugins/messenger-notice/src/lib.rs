//! A trigger component (the `trigger` world, written with the SDK) that turns
//! a messenger connector's message notification into a `messenger_message`
//! hit on the sender.
//!
//! A notification is a JSON object POSTed to the plugin's endpoint:
//!
//! ```json
//! {
//!   "event": "message.received",
//!   "message": {
//!     "id": "m-1",
//!     "channel": "chat",
//!     "text": "Hello, do you have pumps?",
//!     "from": {"phone": "+7 (912) 345-67-89", "name": "Ivan Petrov"}
//!   }
//! }
//! ```
//!
//! - `event`: only `message.received` fires the trigger. Any other event (the
//!   connector's reports on messages sent, such as `message.delivered` or
//!   `message.read`) gives no hit, and the rest of the body is not looked at.
//! - `message.id`: the connector's id of the message, a string that is not
//!   blank.
//! - `message.channel`: the messenger it came through, a name of letters,
//!   digits, `-` and `_` (`Chat` reads as `chat`).
//! - `message.text`: the message's text, a string, possibly empty.
//! - `message.from.phone`: the sender's phone number, a string holding digits;
//!   it is normalised as call notices' numbers are (`+` and the digits, a
//!   Russian number dialled with `8` gets `+7`), so both find the same
//!   contact.
//! - `message.from.name`: the sender's name in the messenger, a string;
//!   optional, and null reads as absent.
//!
//! Other fields are ignored. The hit is a lookup of the contacts whose
//! `PHONE` holds the sender's number and carries `NAME` (only when the sender
//! has a name that is not blank), `TEXT`, `CHANNEL` and `MESSAGE_ID` (all
//! text). A body that is not such a notification is refused with code
//! `bad_payload` and a message naming the field and what is wrong with it; a
//! method other than `POST`, with code `method`. Neither is retryable: the
//! same call would be refused again.
//!
//! It owns the notification's shape and phone normalisation. It keeps no
//! state and calls only `log`: finding the sender is left to the host.
//!
//! Everything except `handle`'s logging is plain Rust, unit tested natively
//! (`cargo test -p messenger-notice`); a host import called outside a
//! component panics.

use robohost_sdk::{EntityKind, Failure, Hit, Request, Trigger, TriggerInfo, log};
use serde_json::{Map, Value as Json};

/// Fires when a client wrote in a messenger.
const MESSENGER_MESSAGE: &str = "messenger_message";

/// The component's exports.
struct MessengerNotice;

impl Trigger for MessengerNotice {
    fn describe() -> Vec<TriggerInfo> {
        vec![
            TriggerInfo::new(MESSENGER_MESSAGE)
                .name("en", "Messenger message")
                .name("ru", "Сообщение в мессенджере")
                .description("en", "The contact wrote a message in a messenger.")
                .description("ru", "Контакт написал сообщение в мессенджере."),
        ]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
        let Some(message) = accept(request)? else {
            return Ok(vec![]);
        };
        log::info(format!(
            "{MESSENGER_MESSAGE}: message {} on {} from {}",
            message.id, message.channel, message.from
        ));
        Ok(vec![message.into_hit()])
    }
}

robohost_sdk::export_triggers!(MessengerNotice);

/// A message received from a client.
#[derive(Debug, PartialEq)]
struct Message {
    /// The connector's id of the message.
    id: String,
    /// The messenger, lower-cased.
    channel: String,
    text: String,
    /// The sender's number, normalised by [`normalize_phone`].
    from: String,
    /// The sender's name, when it has one that is not blank.
    name: Option<String>,
}

impl Message {
    /// The hit on the contacts with the sender's number, carrying the message's data.
    fn into_hit(self) -> Hit {
        let mut hit = Hit::lookup(MESSENGER_MESSAGE, EntityKind::Contact, "PHONE", self.from);
        if let Some(name) = self.name {
            hit = hit.field("NAME", name);
        }
        hit.field("TEXT", self.text)
            .field("CHANNEL", self.channel)
            .field("MESSAGE_ID", self.id)
    }
}

/// Checks the method and reads the notification: the message it reports, or
/// none when it fires no trigger.
fn accept(request: &Request) -> Result<Option<Message>, Failure> {
    request.expect_method("POST")?;
    parse(&request.body)
}

/// Reads a notification body (its shape is in the crate's documentation).
fn parse(body: &[u8]) -> Result<Option<Message>, Failure> {
    let json: Json =
        serde_json::from_slice(body).map_err(|error| Failure::bad_payload(format!("the body is not JSON: {error}")))?;
    let notice = json
        .as_object()
        .ok_or_else(|| Failure::bad_payload("the body is not a JSON object"))?;

    // Delivery and read reports are no one's trigger; they are accepted
    // without a look at the rest, because a connector retries a notification
    // we reject.
    if text(notice, "", "event")? != "message.received" {
        return Ok(None);
    }
    let message = object(notice, "", "message")?;
    let id = text(message, "message.", "id")?;
    if id.trim().is_empty() {
        return Err(Failure::bad_payload("field `message.id` is blank"));
    }
    let channel = text(message, "message.", "channel")?;
    if channel.is_empty()
        || !channel
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_".contains(&byte))
    {
        return Err(Failure::bad_payload(format!(
            "field `message.channel` is {channel:?}, not a messenger's name of letters, digits, `-` and `_`"
        )));
    }
    let message_text = text(message, "message.", "text")?;
    let from = object(message, "message.", "from")?;
    let phone = text(from, "message.from.", "phone")?;
    let phone = normalize_phone(phone)
        .ok_or_else(|| Failure::bad_payload(format!("field `message.from.phone` holds no phone number: {phone:?}")))?;
    let name = optional_text(from, "message.from.", "name")?.map(str::trim);
    Ok(Some(Message {
        id: id.into(),
        channel: channel.to_ascii_lowercase(),
        text: message_text.into(),
        from: phone,
        name: name.filter(|name| !name.is_empty()).map(Into::into),
    }))
}

/// The object field `name` of `object`, which must be present; `path` is
/// where `object` is, for messages (`message.`).
fn object<'a>(object: &'a Map<String, Json>, path: &str, name: &str) -> Result<&'a Map<String, Json>, Failure> {
    match object.get(name) {
        Some(Json::Object(value)) => Ok(value),
        None | Some(Json::Null) => Err(Failure::bad_payload(format!("field `{path}{name}` is missing"))),
        Some(other) => Err(Failure::bad_payload(format!(
            "field `{path}{name}` is {other}, not an object"
        ))),
    }
}

/// The string field `name` of `object`, which must be present.
fn text<'a>(object: &'a Map<String, Json>, path: &str, name: &str) -> Result<&'a str, Failure> {
    optional_text(object, path, name)?.ok_or_else(|| Failure::bad_payload(format!("field `{path}{name}` is missing")))
}

/// The string field `name` of `object`; none when it is absent or null.
fn optional_text<'a>(object: &'a Map<String, Json>, path: &str, name: &str) -> Result<Option<&'a str>, Failure> {
    match object.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(value)) => Ok(Some(value)),
        Some(other) => Err(Failure::bad_payload(format!(
            "field `{path}{name}` is {other}, not a string"
        ))),
    }
}

/// The number as `+` and its digits, or none when it has no digits. A Russian
/// number dialled nationally (11 digits, the first `8`, no `+`) gets `+7`, so
/// both spellings find the same contact. The same rules as call notices'.
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

#[cfg(test)]
mod tests {
    use super::*;
    use robohost_sdk::{Field, Lookup, Target, Value};

    const GOOD: &str = r#"{"id": "m-1", "channel": "chat", "text": "Hello, do you have pumps?",
        "from": {"phone": "+7 (912) 345-67-89", "name": "Ivan Petrov"}}"#;

    fn body(message: &str) -> String {
        format!(r#"{{"event": "message.received", "message": {message}}}"#)
    }

    /// Asserts what a POSTed `body` turns into.
    fn check(body: &str, expect: Option<Message>) {
        assert_eq!(accept(&Request::post(body)).unwrap(), expect, "body: {body}");
    }

    /// Asserts that a POSTed `body` is refused as a bad payload whose message
    /// holds `expect`.
    fn check_bad(body: &str, expect: &str) {
        let failure = accept(&Request::post(body)).unwrap_err();
        assert_eq!(failure.code, "bad_payload", "body: {body}");
        assert!(
            failure.message.contains(expect),
            "{:?} does not say {expect:?}",
            failure.message
        );
        assert!(!failure.retryable);
    }

    /// The message of `GOOD`.
    fn good() -> Message {
        Message {
            id: "m-1".into(),
            channel: "chat".into(),
            text: "Hello, do you have pumps?".into(),
            from: "+79123456789".into(),
            name: Some("Ivan Petrov".into()),
        }
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
    fn a_received_message_is_a_hit() {
        check(&body(GOOD), Some(good()));
        // Extra fields, as connectors send, are ignored.
        check(
            r#"{"event": "message.received", "account": "sales", "message": {"id": "m-2", "channel": "Web-Chat_2",
                "text": "", "sent_at": 1795600800, "from": {"phone": "8 912 345 67 89", "name": "  "}}}"#,
            Some(Message {
                id: "m-2".into(),
                channel: "web-chat_2".into(),
                text: String::new(),
                name: None,
                ..good()
            }),
        );
        check(
            &body(r#"{"id": "m-3", "channel": "chat", "text": "Hi", "from": {"phone": "79123456789", "name": null}}"#),
            Some(Message {
                id: "m-3".into(),
                text: "Hi".into(),
                name: None,
                ..good()
            }),
        );
    }

    #[test]
    fn other_events_fire_nothing() {
        for event in ["message.delivered", "message.read", "message.sent", "chat.opened"] {
            check(&format!(r#"{{"event": "{event}", "message": {GOOD}}}"#), None);
        }
        // Irrelevant notifications are not checked further.
        check(r#"{"event": "message.read"}"#, None);
        check(
            r#"{"event": "message.delivered", "message": {"id": 5, "from": {"phone": "anonymous"}}}"#,
            None,
        );
    }

    #[test]
    fn refuses_other_methods() {
        let failure = accept(&Request::new("GET", body(GOOD))).unwrap_err();
        assert_eq!(failure.code, "method");
        assert_eq!(failure.message, "method GET is not accepted: only POST is");
        assert!(!failure.retryable);
    }

    #[test]
    fn refuses_bodies_that_are_no_notification() {
        check_bad("event=message.received", "the body is not JSON");
        check_bad("", "the body is not JSON");
        check_bad(r#"["message.received"]"#, "the body is not a JSON object");
        check_bad(r#"{"message": {}}"#, "field `event` is missing");
        check_bad(r#"{"event": true}"#, "field `event` is true, not a string");
        check_bad(r#"{"event": "message.received"}"#, "field `message` is missing");
        check_bad(
            r#"{"event": "message.received", "message": "Hello"}"#,
            "field `message` is \"Hello\", not an object",
        );
    }

    /// `GOOD` with field `name` (`from.` and a name for the sender's) set to
    /// the JSON `value`, or removed when `value` is empty.
    fn with(name: &str, value: &str) -> String {
        let mut message: Json = serde_json::from_str(GOOD).unwrap();
        let (object, name) = match name.strip_prefix("from.") {
            Some(name) => (&mut message["from"], name),
            None => (&mut message, name),
        };
        let object = object.as_object_mut().unwrap();
        if value.is_empty() {
            object.remove(name);
        } else {
            object.insert(name.into(), serde_json::from_str(value).unwrap());
        }
        body(&message.to_string())
    }

    #[test]
    fn refuses_messages_naming_the_bad_field() {
        for (name, value, expect) in [
            ("id", "", "field `message.id` is missing"),
            ("id", "1", "field `message.id` is 1, not a string"),
            ("id", r#""""#, "field `message.id` is blank"),
            ("channel", "", "field `message.channel` is missing"),
            ("channel", "null", "field `message.channel` is missing"),
            (
                "channel",
                "[\"chat\"]",
                "field `message.channel` is [\"chat\"], not a string",
            ),
            (
                "channel",
                r#""""#,
                "field `message.channel` is \"\", not a messenger's name of letters, digits, `-` and `_`",
            ),
            (
                "channel",
                r#""web chat""#,
                "field `message.channel` is \"web chat\", not a messenger's name",
            ),
            (
                "channel",
                r#""чат""#,
                "field `message.channel` is \"чат\", not a messenger's name",
            ),
            ("channel", r#""chat.2""#, "`message.channel` is \"chat.2\""),
            ("text", "", "field `message.text` is missing"),
            (
                "text",
                r#"{"body": "Hi"}"#,
                "field `message.text` is {\"body\":\"Hi\"}, not a string",
            ),
            ("from", "", "field `message.from` is missing"),
            (
                "from",
                r#""+79123456789""#,
                "field `message.from` is \"+79123456789\", not an object",
            ),
            ("from.phone", "", "field `message.from.phone` is missing"),
            (
                "from.phone",
                "79123456789",
                "field `message.from.phone` is 79123456789, not a string",
            ),
            (
                "from.phone",
                r#""anonymous""#,
                "field `message.from.phone` holds no phone number: \"anonymous\"",
            ),
            (
                "from.phone",
                r#""""#,
                "field `message.from.phone` holds no phone number: \"\"",
            ),
            ("from.name", "42", "field `message.from.name` is 42, not a string"),
        ] {
            check_bad(&with(name, value), expect);
        }
    }

    #[test]
    fn hit_looks_up_the_sender_and_carries_the_message() {
        let text = |text: &str| Value::Text(text.into());
        assert_eq!(
            good().into_hit(),
            Hit {
                trigger: "messenger_message".into(),
                target: Target::Lookup(Lookup {
                    kind: EntityKind::Contact,
                    code: "PHONE".into(),
                    value: text("+79123456789"),
                }),
                data: vec![
                    Field::new("NAME", "Ivan Petrov"),
                    Field::new("TEXT", "Hello, do you have pumps?"),
                    Field::new("CHANNEL", "chat"),
                    Field::new("MESSAGE_ID", "m-1"),
                ],
            }
        );
        let without_name = Message { name: None, ..good() }.into_hit();
        let codes: Vec<_> = without_name.data.iter().map(|field| field.code.as_str()).collect();
        assert_eq!(codes, ["TEXT", "CHANNEL", "MESSAGE_ID"]);
    }

    #[test]
    fn describes_the_trigger_in_both_languages() {
        let triggers = MessengerNotice::describe();
        let codes: Vec<_> = triggers.iter().map(|info| info.code.as_str()).collect();
        assert_eq!(codes, [MESSENGER_MESSAGE]);
        for texts in [&triggers[0].names, &triggers[0].descriptions] {
            let langs: Vec<_> = texts.iter().map(|text| text.lang.as_str()).collect();
            assert_eq!(langs, ["en", "ru"]);
        }
        assert_eq!(triggers[0].names[0].text, "Messenger message");
        assert_eq!(triggers[0].names[1].text, "Сообщение в мессенджере");
    }
}
