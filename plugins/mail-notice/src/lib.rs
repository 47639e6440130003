//! A trigger component (the `trigger` world, written with the SDK) that turns
//! a mail service's inbound email notification into an `incoming_email` hit
//! on the sender.
//!
//! A notification is a JSON object POSTed to the plugin's endpoint, the mail
//! service's inbound webhook written as JSON:
//!
//! ```json
//! {
//!   "event": "email.received",
//!   "message_id": "<CAF1234@mail.partner.example>",
//!   "from": "Partner Ltd <Sales@Partner.example>",
//!   "to": ["manager@portal.example"],
//!   "subject": "Re: Dealer certificate",
//!   "text": "Attached is our certificate.",
//!   "in_reply_to": "<CAF1000@portal.example>",
//!   "auto_submitted": false
//! }
//! ```
//!
//! - `event`: only `email.received` fires the trigger. Any other event (the
//!   service's reports on mail sent, such as `email.delivered` or
//!   `email.bounced`) gives no hit, and the rest of the body is not looked at.
//! - `message_id`: the email's `Message-ID`, a string that is not blank.
//! - `from`: the sender, a bare address (`sales@partner.example`) or a display
//!   name and an address (`Partner Ltd <sales@partner.example>`, the name
//!   possibly quoted: `"Partner, Ltd" <sales@partner.example>`). The address
//!   has one `@` with something on each side and no spaces or angle brackets;
//!   it is lower-cased, so `Sales@Partner.example` finds
//!   `sales@partner.example`.
//! - `subject`: a string, possibly empty; absent or null reads as empty.
//! - `text`: the email's plain text, a string, possibly empty, never absent.
//! - `in_reply_to`: the `Message-ID` answered, a string; optional, and null
//!   reads as absent.
//! - `auto_submitted`: whether the email was sent automatically (RFC 3834),
//!   `true` or `false`; optional, and null reads as `false`. An automatic
//!   reply, such as an out-of-office notice, is read like any other email but
//!   gives no hit, only a log line: it is not the client answering.
//!
//! Other fields, `to` among them, are ignored. The hit is a lookup of the
//! contacts whose `EMAIL` holds the sender's address (the host then looks
//! among companies, then leads) and carries `NAME` (the display name, only
//! when the sender has a non-empty one), `SUBJECT`, `TEXT`, `MESSAGE_ID` (all
//! text) and `IS_REPLY` (boolean: true when `in_reply_to` is not blank or the
//! subject starts with `Re:` or `Ответ:`, in any case). A body that is not
//! such a notification is refused with code `bad_payload` and a message
//! naming the field and what is wrong with it; a method other than `POST`,
//! with code `method`. Neither is retryable: the same call would be refused
//! again.
//!
//! It owns the notification's shape and the reading of senders and replies.
//! It keeps no state and calls only `log`: finding the sender is left to the
//! host.
//!
//! Everything except `handle`'s logging is plain Rust, unit tested natively
//! (`cargo test -p mail-notice`); a host import called outside a component
//! panics.

use robohost_sdk::{EntityKind, Failure, Hit, Request, Trigger, TriggerInfo, log};
use serde_json::{Map, Value as Json};

/// Fires when an email from a client arrived.
const INCOMING_EMAIL: &str = "incoming_email";

/// The component's exports.
struct MailNotice;

impl Trigger for MailNotice {
    fn describe() -> Vec<TriggerInfo> {
        vec![
            TriggerInfo::new(INCOMING_EMAIL)
                .name("en", "Incoming email")
                .name("ru", "Входящее письмо")
                .description(
                    "en",
                    "An email from the contact, company or lead arrived (automatic replies do not count).",
                )
                .description(
                    "ru",
                    "Пришло письмо от контакта, компании или лида (автоответы не в счёт).",
                ),
        ]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
        match accept(request)? {
            Notice::Other => Ok(vec![]),
            Notice::AutoReply(email) => {
                log::info(format!(
                    "{INCOMING_EMAIL}: no hit for email {} from {}: an automatic reply",
                    email.message_id, email.from
                ));
                Ok(vec![])
            }
            Notice::Email(email) => {
                log::info(format!(
                    "{INCOMING_EMAIL}: email {} from {}",
                    email.message_id, email.from
                ));
                Ok(vec![email.into_hit()])
            }
        }
    }
}

robohost_sdk::export_triggers!(MailNotice);

/// What a notification reports.
#[derive(Debug, PartialEq)]
enum Notice {
    /// An event other than a received email.
    Other,
    /// An email sent automatically, which fires nothing.
    AutoReply(Email),
    /// An email that fires the trigger.
    Email(Email),
}

/// A received email.
#[derive(Debug, PartialEq)]
struct Email {
    /// Its `Message-ID`.
    message_id: String,
    /// The sender's address, lower-cased.
    from: String,
    /// The sender's display name, when it has a non-empty one.
    name: Option<String>,
    subject: String,
    text: String,
    /// Whether it answers an earlier email, by [`is_reply`].
    is_reply: bool,
}

impl Email {
    /// The hit on whoever has the sender's address, carrying the email's data.
    fn into_hit(self) -> Hit {
        let mut hit = Hit::lookup(INCOMING_EMAIL, EntityKind::Contact, "EMAIL", self.from);
        if let Some(name) = self.name {
            hit = hit.field("NAME", name);
        }
        hit.field("SUBJECT", self.subject)
            .field("TEXT", self.text)
            .field("MESSAGE_ID", self.message_id)
            .field("IS_REPLY", self.is_reply)
    }
}

/// Checks the method and reads the notification.
fn accept(request: &Request) -> Result<Notice, Failure> {
    request.expect_method("POST")?;
    parse(&request.body)
}

/// Reads a notification body (its shape is in the crate's documentation).
fn parse(body: &[u8]) -> Result<Notice, Failure> {
    let json: Json =
        serde_json::from_slice(body).map_err(|error| Failure::bad_payload(format!("the body is not JSON: {error}")))?;
    let notice = json
        .as_object()
        .ok_or_else(|| Failure::bad_payload("the body is not a JSON object"))?;

    // Reports on mail sent are no one's trigger; they are accepted without a
    // look at the rest, because a service retries a notification we reject.
    if text(notice, "event")? != "email.received" {
        return Ok(Notice::Other);
    }
    let message_id = text(notice, "message_id")?;
    if message_id.trim().is_empty() {
        return Err(Failure::bad_payload("field `message_id` is blank"));
    }
    let from = text(notice, "from")?;
    let (address, name) = parse_sender(from).ok_or_else(|| {
        Failure::bad_payload(format!(
            "field `from` is {from:?}, not a sender such as \"local@domain\" or \"Name <local@domain>\""
        ))
    })?;
    let subject = optional_text(notice, "subject")?.unwrap_or_default();
    let email = Email {
        message_id: message_id.into(),
        from: address,
        name,
        subject: subject.into(),
        text: text(notice, "text")?.into(),
        is_reply: is_reply(subject, optional_text(notice, "in_reply_to")?),
    };
    Ok(match notice.get("auto_submitted") {
        None | Some(Json::Null | Json::Bool(false)) => Notice::Email(email),
        Some(Json::Bool(true)) => Notice::AutoReply(email),
        Some(other) => {
            return Err(Failure::bad_payload(format!(
                "field `auto_submitted` is {other}, not true or false"
            )));
        }
    })
}

/// The string field `name`, which must be present.
fn text<'a>(notice: &'a Map<String, Json>, name: &str) -> Result<&'a str, Failure> {
    optional_text(notice, name)?.ok_or_else(|| Failure::bad_payload(format!("field `{name}` is missing")))
}

/// The string field `name`; none when it is absent or null.
fn optional_text<'a>(notice: &'a Map<String, Json>, name: &str) -> Result<Option<&'a str>, Failure> {
    match notice.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(value)) => Ok(Some(value)),
        Some(other) => Err(Failure::bad_payload(format!("field `{name}` is {other}, not a string"))),
    }
}

/// The address in `from`, lower-cased, and the display name when it is not
/// empty; none when `from` is neither `address` nor `Name <address>`.
fn parse_sender(from: &str) -> Option<(String, Option<String>)> {
    let from = from.trim();
    let (name, address) = match from.strip_suffix('>').and_then(|rest| rest.rsplit_once('<')) {
        Some((name, address)) => (unquote(name.trim()), address),
        None => (String::new(), from),
    };
    let (local, domain) = address.split_once('@')?;
    let part =
        |part: &str| !part.is_empty() && !part.contains(|c: char| c.is_whitespace() || matches!(c, '@' | '<' | '>'));
    if !(part(local) && part(domain)) {
        return None;
    }
    Some((address.to_lowercase(), (!name.is_empty()).then_some(name)))
}

/// A display name without its quotes, if quoted: `"Partner, Ltd"` is
/// `Partner, Ltd`, and a backslash inside quotes escapes the next character.
fn unquote(name: &str) -> String {
    let Some(quoted) = name.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return name.into();
    };
    let mut unquoted = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        unquoted.push(if c == '\\' { chars.next().unwrap_or(c) } else { c });
    }
    unquoted.trim().into()
}

/// Whether an email answers an earlier one: it names the email answered, or
/// its subject starts with `Re:` or `Ответ:` in any case.
fn is_reply(subject: &str, in_reply_to: Option<&str>) -> bool {
    let subject = subject.trim_start();
    let starts_with = |prefix: &str| {
        let start = subject.chars().take(prefix.chars().count());
        start.flat_map(char::to_lowercase).eq(prefix.chars())
    };
    in_reply_to.is_some_and(|id| !id.trim().is_empty()) || ["re:", "ответ:"].into_iter().any(starts_with)
}

#[cfg(test)]
mod tests {
    use super::*;
    use robohost_sdk::{Field, Lookup, Target, Value};

    const GOOD: &str = r#"{"event": "email.received", "message_id": "<CAF1234@mail.partner.example>",
        "from": "Partner Ltd <Sales@Partner.example>", "to": ["manager@portal.example"],
        "subject": "Re: Dealer certificate", "text": "Attached is our certificate.",
        "in_reply_to": "<CAF1000@portal.example>", "auto_submitted": false}"#;

    /// Asserts what a POSTed `body` turns into.
    fn check(body: &str, expect: Notice) {
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

    /// `GOOD` with field `name` set to the JSON `value`, or removed when
    /// `value` is empty.
    fn with(name: &str, value: &str) -> String {
        let mut notice: Map<String, Json> = serde_json::from_str(GOOD).unwrap();
        if value.is_empty() {
            notice.remove(name);
        } else {
            notice.insert(name.into(), serde_json::from_str(value).unwrap());
        }
        Json::Object(notice).to_string()
    }

    /// The email of `GOOD`.
    fn good() -> Email {
        Email {
            message_id: "<CAF1234@mail.partner.example>".into(),
            from: "sales@partner.example".into(),
            name: Some("Partner Ltd".into()),
            subject: "Re: Dealer certificate".into(),
            text: "Attached is our certificate.".into(),
            is_reply: true,
        }
    }

    #[test]
    fn a_received_email_is_incoming() {
        check(GOOD, Notice::Email(good()));
        check(&with("auto_submitted", "null"), Notice::Email(good()));
        check(&with("auto_submitted", ""), Notice::Email(good()));
        check(
            r#"{"event": "email.received", "message_id": "m-2", "from": " Sales@Partner.example ", "text": "",
                "in_reply_to": null, "spam_score": 0.1}"#,
            Notice::Email(Email {
                message_id: "m-2".into(),
                from: "sales@partner.example".into(),
                name: None,
                subject: String::new(),
                text: String::new(),
                is_reply: false,
            }),
        );
        check(
            &with("from", r#""\"Partner, \\\"Best\\\" Ltd\" <sales@partner.example>""#),
            Notice::Email(Email {
                name: Some(r#"Partner, "Best" Ltd"#.into()),
                ..good()
            }),
        );
    }

    #[test]
    fn automatic_replies_fire_nothing() {
        check(&with("auto_submitted", "true"), Notice::AutoReply(good()));
    }

    #[test]
    fn other_events_fire_nothing() {
        for event in ["email.delivered", "email.bounced", "email.opened", "email.spam"] {
            check(&with("event", &format!("{event:?}")), Notice::Other);
        }
        // Irrelevant notifications are not checked further.
        check(r#"{"event": "email.bounced"}"#, Notice::Other);
        check(
            r#"{"event": "email.delivered", "from": "nobody", "text": 5, "auto_submitted": "yes"}"#,
            Notice::Other,
        );
    }

    #[test]
    fn refuses_other_methods() {
        let failure = accept(&Request::new("GET", GOOD)).unwrap_err();
        assert_eq!(failure.code, "method");
        assert_eq!(failure.message, "method GET is not accepted: only POST is");
        assert!(!failure.retryable);
    }

    #[test]
    fn refuses_bodies_that_are_no_notification() {
        check_bad("event=email.received", "the body is not JSON");
        check_bad("", "the body is not JSON");
        check_bad(r#"["email.received"]"#, "the body is not a JSON object");
        check_bad(&with("event", ""), "field `event` is missing");
        check_bad(&with("event", "1"), "field `event` is 1, not a string");
    }

    #[test]
    fn refuses_emails_naming_the_bad_field() {
        for (name, value, expect) in [
            ("message_id", "", "field `message_id` is missing"),
            ("message_id", "1234", "field `message_id` is 1234, not a string"),
            ("message_id", r#"" ""#, "field `message_id` is blank"),
            ("from", "", "field `from` is missing"),
            ("from", "null", "field `from` is missing"),
            (
                "from",
                r#"["sales@partner.example"]"#,
                "field `from` is [\"sales@partner.example\"], not a string",
            ),
            (
                "from",
                r#""Partner Ltd""#,
                "field `from` is \"Partner Ltd\", not a sender such as \"local@domain\" or \"Name <local@domain>\"",
            ),
            ("from", r#""""#, "field `from` is \"\", not a sender"),
            (
                "from",
                r#""Partner Ltd <>""#,
                "field `from` is \"Partner Ltd <>\", not a sender",
            ),
            ("from", r#""Partner <sales@partner.example""#, "not a sender"),
            ("subject", "7", "field `subject` is 7, not a string"),
            ("text", "", "field `text` is missing"),
            ("text", "null", "field `text` is missing"),
            (
                "text",
                r#"{"plain": "hi"}"#,
                "field `text` is {\"plain\":\"hi\"}, not a string",
            ),
            ("in_reply_to", "[]", "field `in_reply_to` is [], not a string"),
            (
                "auto_submitted",
                r#""auto-replied""#,
                "field `auto_submitted` is \"auto-replied\", not true or false",
            ),
            ("auto_submitted", "1", "field `auto_submitted` is 1, not true or false"),
        ] {
            check_bad(&with(name, value), expect);
        }
    }

    #[test]
    fn reads_senders() {
        let sender = |address: &str, name: Option<&str>| Some((address.into(), name.map(Into::into)));
        for (from, expect) in [
            ("sales@partner.example", sender("sales@partner.example", None)),
            ("Sales@Partner.EXAMPLE", sender("sales@partner.example", None)),
            ("<sales@partner.example>", sender("sales@partner.example", None)),
            (
                "Partner Ltd <Sales@Partner.example>",
                sender("sales@partner.example", Some("Partner Ltd")),
            ),
            ("Partner<s@p.example>", sender("s@p.example", Some("Partner"))),
            (r#""" <s@p.example>"#, sender("s@p.example", None)),
            (r#""  " <s@p.example>"#, sender("s@p.example", None)),
            (
                r#""Smith, Anna" <s@p.example>"#,
                sender("s@p.example", Some("Smith, Anna")),
            ),
            (r#""a <b@c>" <s@p.example>"#, sender("s@p.example", Some("a <b@c>"))),
            ("Иван <Иван@Почта.example>", sender("иван@почта.example", Some("Иван"))),
            ("", None),
            ("Partner Ltd", None),
            ("@partner.example", None),
            ("sales@", None),
            ("sales@@partner.example", None),
            ("sales@partner@example", None),
            ("sales @partner.example", None),
            ("Partner <sales @partner.example>", None),
            ("sales@partner.example, info@partner.example", None),
            ("Partner <sales@partner.example", None),
            ("sales@partner.example>", None),
            ("<>", None),
        ] {
            assert_eq!(parse_sender(from), expect, "from: {from:?}");
        }
    }

    #[test]
    fn tells_replies() {
        for (subject, in_reply_to, expect) in [
            ("Re: Dealer certificate", None, true),
            ("RE: Dealer certificate", None, true),
            ("re:certificate", None, true),
            ("  Re: certificate", None, true),
            ("Ответ: сертификат", None, true),
            ("ОТВЕТ: сертификат", None, true),
            ("Dealer certificate", Some("<CAF1000@portal.example>"), true),
            ("", Some("<CAF1000@portal.example>"), true),
            ("Dealer certificate", None, false),
            ("Dealer certificate", Some(""), false),
            ("Dealer certificate", Some("  "), false),
            ("Fwd: Re: certificate", None, false),
            ("Re certificate", None, false),
            ("Reply: certificate", None, false),
            ("Отв", None, false),
            ("", None, false),
        ] {
            assert_eq!(is_reply(subject, in_reply_to), expect, "{subject:?}, {in_reply_to:?}");
        }
    }

    #[test]
    fn hit_looks_up_the_sender_and_carries_the_email() {
        let text = |text: &str| Value::Text(text.into());
        assert_eq!(
            good().into_hit(),
            Hit {
                trigger: "incoming_email".into(),
                target: Target::Lookup(Lookup {
                    kind: EntityKind::Contact,
                    code: "EMAIL".into(),
                    value: text("sales@partner.example"),
                }),
                data: vec![
                    Field::new("NAME", "Partner Ltd"),
                    Field::new("SUBJECT", "Re: Dealer certificate"),
                    Field::new("TEXT", "Attached is our certificate."),
                    Field::new("MESSAGE_ID", "<CAF1234@mail.partner.example>"),
                    Field::new("IS_REPLY", Value::Boolean(true)),
                ],
            }
        );
        let without_name = Email {
            name: None,
            is_reply: false,
            ..good()
        }
        .into_hit();
        let codes: Vec<_> = without_name.data.iter().map(|field| field.code.as_str()).collect();
        assert_eq!(codes, ["SUBJECT", "TEXT", "MESSAGE_ID", "IS_REPLY"]);
        assert_eq!(without_name.data[3], Field::new("IS_REPLY", false));
    }

    #[test]
    fn describes_the_trigger_in_both_languages() {
        let triggers = MailNotice::describe();
        let codes: Vec<_> = triggers.iter().map(|info| info.code.as_str()).collect();
        assert_eq!(codes, [INCOMING_EMAIL]);
        for texts in [&triggers[0].names, &triggers[0].descriptions] {
            let langs: Vec<_> = texts.iter().map(|text| text.lang.as_str()).collect();
            assert_eq!(langs, ["en", "ru"]);
        }
        assert_eq!(triggers[0].names[0].text, "Incoming email");
        assert_eq!(triggers[0].names[1].text, "Входящее письмо");
    }
}
