//! A trigger component (the `trigger` world, written with the SDK) that turns
//! a payment provider's payment notification into a `payment_received` hit on
//! the deal paid for.
//!
//! A notification is a JSON object POSTed to the plugin's endpoint:
//!
//! ```json
//! {
//!   "event": "payment.succeeded",
//!   "payment": {
//!     "id": "pay_123",
//!     "amount": "1500.00",
//!     "currency": "RUB",
//!     "order_id": "deal:42",
//!     "paid_at": "2026-11-25T10:00:00Z"
//!   }
//! }
//! ```
//!
//! - `event`: only `payment.succeeded` fires the trigger. Any other event
//!   (`payment.pending`, `payment.canceled`, a refund's `refund.succeeded`)
//!   gives no hit, and the rest of the body is not looked at.
//! - `payment.id`: the provider's id of the payment, a string.
//! - `payment.amount`: the amount paid, more than zero, a decimal number
//!   written as a string: a JSON number is binary floating point and may have
//!   lost a cent on the way.
//! - `payment.currency`: its ISO 4217 code, three letters (`rub` reads as
//!   `RUB`).
//! - `payment.order_id`: the deal paid for: `deal:42`, or `42` meaning deal 42
//!   (a string, or a JSON whole number).
//! - `payment.paid_at`: when it was paid, an RFC 3339 date and time such as
//!   `2026-11-25T10:00:00Z` or `2026-11-25T13:00:00.250+03:00`.
//!
//! Other fields are ignored. The hit is on the deal and carries `AMOUNT`
//! (money), `PAYMENT_ID` (text) and `PAID_AT` (datetime). A body that is not
//! such a notification is refused with code `bad_payload` and a message
//! naming the field and what is wrong with it; a method other than `POST`,
//! with code `method`. Neither is retryable: the same call would be refused
//! again.
//!
//! It owns the notification's shape and the reading of its amounts, deal
//! references and times. It keeps no state and calls only `log`.
//!
//! Everything except `handle`'s logging is plain Rust, unit tested natively
//! (`cargo test -p payment-notice`); a host import called outside a component
//! panics.

use core::ops::Range;

use robohost_sdk::{
    Date, Decimal, EntityKind, EntityRef, Failure, Hit, Money, Request, Timestamp, Trigger, TriggerInfo, Value, log,
};
use serde_json::{Map, Value as Json};

/// Fires when a payment for a deal succeeded.
const PAYMENT_RECEIVED: &str = "payment_received";

/// The component's exports.
struct PaymentNotice;

impl Trigger for PaymentNotice {
    fn describe() -> Vec<TriggerInfo> {
        vec![
            TriggerInfo::new(PAYMENT_RECEIVED)
                .name("en", "Payment received")
                .name("ru", "Оплата получена")
                .description(
                    "en",
                    "The payment provider reports that a payment for the deal succeeded.",
                )
                .description("ru", "Платёжная система сообщила об успешной оплате сделки."),
        ]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
        let Some(payment) = accept(request)? else {
            return Ok(vec![]);
        };
        log::info(format!(
            "{PAYMENT_RECEIVED}: payment {} of {} for deal {}",
            payment.id, payment.amount, payment.deal
        ));
        Ok(vec![payment.into_hit()])
    }
}

robohost_sdk::export_triggers!(PaymentNotice);

/// A successful payment for a deal.
#[derive(Debug, PartialEq)]
struct Payment {
    /// The provider's id of the payment.
    id: String,
    /// How much was paid.
    amount: Money,
    /// The id of the deal paid for.
    deal: u64,
    /// When it was paid.
    paid_at: Timestamp,
}

impl Payment {
    /// The hit on the deal, carrying the payment's data.
    fn into_hit(self) -> Hit {
        Hit::entity(PAYMENT_RECEIVED, EntityRef::new(EntityKind::Deal, self.deal))
            .field("AMOUNT", self.amount)
            .field("PAYMENT_ID", self.id)
            .field("PAID_AT", Value::Datetime(self.paid_at))
    }
}

/// Checks the method and reads the notification: the payment it reports, or
/// none when it fires no trigger.
fn accept(request: &Request) -> Result<Option<Payment>, Failure> {
    request.expect_method("POST")?;
    parse(&request.body)
}

/// Reads a notification body (its shape is in the crate's documentation).
fn parse(body: &[u8]) -> Result<Option<Payment>, Failure> {
    let json: Json =
        serde_json::from_slice(body).map_err(|error| Failure::bad_payload(format!("the body is not JSON: {error}")))?;
    let notice = json
        .as_object()
        .ok_or_else(|| Failure::bad_payload("the body is not a JSON object"))?;

    // Pending and canceled payments and refunds are no one's trigger; they
    // are accepted without a look at the rest, because a provider retries a
    // notification we reject.
    if text(notice, "", "event")? != "payment.succeeded" {
        return Ok(None);
    }
    let payment = match notice.get("payment") {
        Some(Json::Object(payment)) => payment,
        None | Some(Json::Null) => return Err(Failure::bad_payload("field `payment` is missing")),
        Some(other) => {
            return Err(Failure::bad_payload(format!(
                "field `payment` is {other}, not an object"
            )));
        }
    };
    Ok(Some(Payment {
        id: text(payment, "payment.", "id")?.into(),
        amount: Money::new(amount(payment)?, currency(payment)?),
        deal: deal(payment)?,
        paid_at: paid_at(payment)?,
    }))
}

/// The string field `name` of `object`, which must be present; `path` is
/// where `object` is, for messages (`payment.`).
fn text<'a>(object: &'a Map<String, Json>, path: &str, name: &str) -> Result<&'a str, Failure> {
    match object.get(name) {
        Some(Json::String(value)) => Ok(value),
        None | Some(Json::Null) => Err(Failure::bad_payload(format!("field `{path}{name}` is missing"))),
        Some(other) => Err(Failure::bad_payload(format!(
            "field `{path}{name}` is {other}, not a string"
        ))),
    }
}

/// `payment.amount`: a decimal number in a string, more than zero.
fn amount(payment: &Map<String, Json>) -> Result<Decimal, Failure> {
    if let Some(number @ Json::Number(_)) = payment.get("amount") {
        return Err(Failure::bad_payload(format!(
            "field `payment.amount` is {number}, not a string: amounts are written as strings such as \"1500.00\""
        )));
    }
    let text = text(payment, "payment.", "amount")?;
    let amount: Decimal = text
        .parse()
        .map_err(|error| Failure::bad_payload(format!("field `payment.amount` is {text:?}: {error}")))?;
    if amount <= Decimal::ZERO {
        return Err(Failure::bad_payload(format!(
            "field `payment.amount` is {text:?}: a payment is more than zero"
        )));
    }
    Ok(amount)
}

/// `payment.currency`: three letters, upper-cased.
fn currency(payment: &Map<String, Json>) -> Result<String, Failure> {
    let code = text(payment, "payment.", "currency")?;
    if code.len() != 3 || !code.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(Failure::bad_payload(format!(
            "field `payment.currency` is {code:?}, not an ISO 4217 code such as \"RUB\""
        )));
    }
    Ok(code.to_ascii_uppercase())
}

/// `payment.order_id`: the id of the deal paid for, from `deal:42`, `42` or
/// the number 42.
fn deal(payment: &Map<String, Json>) -> Result<u64, Failure> {
    let value = match payment.get("order_id") {
        None | Some(Json::Null) => return Err(Failure::bad_payload("field `payment.order_id` is missing")),
        Some(value) => value,
    };
    let id = match value {
        Json::Number(number) => number.as_u64(),
        Json::String(order) => whole_number(order.strip_prefix("deal:").unwrap_or(order)),
        _ => None,
    };
    id.ok_or_else(|| {
        Failure::bad_payload(format!(
            "field `payment.order_id` is {value}, not a deal: expected \"deal:N\" or the deal's number N"
        ))
    })
}

/// `payment.paid_at`: an RFC 3339 date and time.
fn paid_at(payment: &Map<String, Json>) -> Result<Timestamp, Failure> {
    let text = text(payment, "payment.", "paid_at")?;
    parse_datetime(text).ok_or_else(|| {
        Failure::bad_payload(format!(
            "field `payment.paid_at` is {text:?}, not an RFC 3339 date and time such as \"2026-11-25T10:00:00Z\""
        ))
    })
}

/// `text` when it is only ASCII digits (no sign, no space), as a number.
fn whole_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `text` as milliseconds since 1970-01-01T00:00:00Z, when it is an RFC 3339
/// date and time: `2026-11-25T10:00:00` with `Z` or an offset such as
/// `+03:00`, and optionally fractions of a second between them (digits past
/// the milliseconds are dropped). Leap seconds (`:60`) are not read.
fn parse_datetime(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    let at = |index: usize, expect: &[u8]| bytes.get(index).is_some_and(|byte| expect.contains(byte));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(text, 0..4)?, digits(text, 5..7)?, digits(text, 8..10)?);
    let (hour, minute, second) = (digits(text, 11..13)?, digits(text, 14..16)?, digits(text, 17..19)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }

    // Bytes 0..19 are ASCII, so 19 is a character boundary.
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return None;
        }
        // `.5` is 500 ms, `.123456` is 123 ms.
        millis = fraction[..count]
            .bytes()
            .chain(*b"00")
            .take(3)
            .fold(0, |ms, digit| ms * 10 + i64::from(digit - b'0'));
        rest = &fraction[count..];
    }
    let offset_minutes = match rest.as_bytes() {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(rest, 1..3)?, digits(rest, 4..6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };

    let date = Date {
        year: i32::try_from(year).ok()?,
        month: u8::try_from(month).ok()?,
        day: u8::try_from(day).ok()?,
    };
    let seconds = date.days_from_epoch() * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// The ASCII digits at `range` of `text` as a number; none when anything
/// else is there.
fn digits(text: &str, range: Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    if !part.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// How many days `month` of `year` has, in the Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use robohost_sdk::{Field, Target};

    /// 2026-11-25T10:00:00Z.
    const PAID_AT: Timestamp = 1_795_600_800_000;

    fn body(payment: &str) -> String {
        format!(r#"{{"event": "payment.succeeded", "payment": {payment}}}"#)
    }

    const GOOD: &str = r#"{"id": "pay_123", "amount": "1500.00", "currency": "RUB", "order_id": "deal:42", "paid_at": "2026-11-25T10:00:00Z"}"#;

    /// Asserts what a POSTed `body` turns into.
    fn check(body: &str, expect: Option<Payment>) {
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

    /// A payment with the id of `GOOD`.
    fn payment(amount: Money, deal: u64, paid_at: Timestamp) -> Option<Payment> {
        Some(Payment {
            id: "pay_123".into(),
            amount,
            deal,
            paid_at,
        })
    }

    fn rub(amount: &str) -> Money {
        Money::new(amount.parse().unwrap(), "RUB")
    }

    #[test]
    fn a_succeeded_payment_is_received() {
        check(&body(GOOD), payment(rub("1500.00"), 42, PAID_AT));
        // Extra fields, as providers send, are ignored.
        check(
            r#"{"event": "payment.succeeded", "livemode": true, "payment": {"id": "pay_123", "amount": "0.01",
                "currency": "eur", "order_id": "7", "paid_at": "2026-11-25T13:00:00.250+03:00",
                "description": "Order 7", "metadata": {"source": "site"}}}"#,
            payment(Money::new(Decimal::new(1, 2), "EUR"), 7, PAID_AT + 250),
        );
        check(
            &body(
                r#"{"id": "pay_123", "amount": "99", "currency": "RUB", "order_id": 9, "paid_at": "2026-11-25t10:00:00z"}"#,
            ),
            payment(rub("99"), 9, PAID_AT),
        );
    }

    #[test]
    fn other_events_fire_nothing() {
        for event in [
            "payment.pending",
            "payment.canceled",
            "refund.succeeded",
            "payment.waiting_for_capture",
        ] {
            check(&format!(r#"{{"event": "{event}", "payment": {GOOD}}}"#), None);
        }
        // Irrelevant notifications are not checked further.
        check(r#"{"event": "payment.canceled"}"#, None);
        check(
            r#"{"event": "refund.succeeded", "payment": {"amount": "-1500.00", "order_id": "lead:5"}}"#,
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
        check_bad("event=payment.succeeded", "the body is not JSON");
        check_bad("", "the body is not JSON");
        check_bad(r#"["payment.succeeded"]"#, "the body is not a JSON object");
        check_bad(r#"{"payment": {}}"#, "field `event` is missing");
        check_bad(r#"{"event": 1}"#, "field `event` is 1, not a string");
        check_bad(r#"{"event": "payment.succeeded"}"#, "field `payment` is missing");
        check_bad(
            r#"{"event": "payment.succeeded", "payment": "pay_123"}"#,
            "field `payment` is \"pay_123\", not an object",
        );
    }

    /// `GOOD` with field `name` set to the JSON `value`, or removed when
    /// `value` is empty.
    fn with(name: &str, value: &str) -> String {
        let mut payment: Map<String, Json> = serde_json::from_str(GOOD).unwrap();
        if value.is_empty() {
            payment.remove(name);
        } else {
            payment.insert(name.into(), serde_json::from_str(value).unwrap());
        }
        body(&Json::Object(payment).to_string())
    }

    #[test]
    fn refuses_payments_naming_the_bad_field() {
        for (name, value, expect) in [
            ("id", "", "field `payment.id` is missing"),
            ("id", "123", "field `payment.id` is 123, not a string"),
            ("amount", "", "field `payment.amount` is missing"),
            (
                "amount",
                "1500.0",
                "field `payment.amount` is 1500.0, not a string: amounts are written as strings",
            ),
            (
                "amount",
                r#""1 500,00""#,
                "field `payment.amount` is \"1 500,00\": not a decimal number",
            ),
            (
                "amount",
                r#""0.00""#,
                "field `payment.amount` is \"0.00\": a payment is more than zero",
            ),
            (
                "amount",
                r#""-5""#,
                "field `payment.amount` is \"-5\": a payment is more than zero",
            ),
            ("currency", "", "field `payment.currency` is missing"),
            (
                "currency",
                r#""rubles""#,
                "field `payment.currency` is \"rubles\", not an ISO 4217 code",
            ),
            ("currency", r#""R1B""#, "`payment.currency`"),
            ("order_id", "", "field `payment.order_id` is missing"),
            ("order_id", "null", "field `payment.order_id` is missing"),
            (
                "order_id",
                r#""lead:5""#,
                "field `payment.order_id` is \"lead:5\", not a deal: expected \"deal:N\" or the deal's number N",
            ),
            ("order_id", r#""deal:""#, "`payment.order_id` is \"deal:\", not a deal"),
            (
                "order_id",
                r#""deal: 42""#,
                "`payment.order_id` is \"deal: 42\", not a deal",
            ),
            ("order_id", r#""+42""#, "`payment.order_id` is \"+42\", not a deal"),
            ("order_id", "-42", "`payment.order_id` is -42, not a deal"),
            ("order_id", "4.5", "`payment.order_id` is 4.5, not a deal"),
            ("order_id", "[42]", "`payment.order_id` is [42], not a deal"),
            ("order_id", r#""99999999999999999999""#, "`payment.order_id`"),
            ("paid_at", "", "field `payment.paid_at` is missing"),
            (
                "paid_at",
                "1795600800",
                "field `payment.paid_at` is 1795600800, not a string",
            ),
            (
                "paid_at",
                r#""25.11.2026 10:00""#,
                "field `payment.paid_at` is \"25.11.2026 10:00\", not an RFC 3339 date and time such as \
                 \"2026-11-25T10:00:00Z\"",
            ),
        ] {
            check_bad(&with(name, value), expect);
        }
    }

    #[test]
    fn reads_rfc_3339_times() {
        for (text, expect) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-25T10:00:00Z", Some(PAID_AT)),
            ("2026-11-25T13:00:00+03:00", Some(PAID_AT)),
            ("2026-11-25T06:30:00-03:30", Some(PAID_AT)),
            ("2026-11-25T10:00:00.5Z", Some(PAID_AT + 500)),
            ("2026-11-25T10:00:00.123456789Z", Some(PAID_AT + 123)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("1969-12-31T23:59:59Z", Some(-1_000)),
            ("2026-11-25T10:00:00", None),
            ("2026-11-25", None),
            ("2026-11-25 10:00:00Z", None),
            ("2026-11-25T10:00:00.Z", None),
            ("2026-11-25T10:00:00+0300", None),
            ("2026-11-25T10:00:00+03", None),
            ("2026-11-25T10:00:00+24:00", None),
            ("2026-11-25T24:00:00Z", None),
            ("2026-11-25T10:60:00Z", None),
            ("2026-11-25T10:00:60Z", None),
            ("2026-02-29T10:00:00Z", None),
            ("2026-13-01T10:00:00Z", None),
            ("2026-00-10T10:00:00Z", None),
            ("2026-11-00T10:00:00Z", None),
            ("2026-11-31T10:00:00Z", None),
            ("+026-11-25T10:00:00Z", None),
            ("2026-11-25T10:00:00Zjunk", None),
            ("2026-11-25T10:00:00+03:00é", None),
            ("2026-11-25T10:00:00é", None),
            ("", None),
        ] {
            assert_eq!(parse_datetime(text), expect, "{text:?}");
        }
    }

    #[test]
    fn hit_is_on_the_deal_and_carries_the_payment() {
        let hit = payment(rub("1500.00"), 42, PAID_AT).unwrap().into_hit();
        assert_eq!(
            hit,
            Hit {
                trigger: "payment_received".into(),
                target: Target::Entity(EntityRef::new(EntityKind::Deal, 42)),
                data: vec![
                    Field::new("AMOUNT", Money::new(Decimal::new(150_000, 2), "RUB")),
                    Field::new("PAYMENT_ID", "pay_123"),
                    Field::new("PAID_AT", Value::Datetime(PAID_AT)),
                ],
            }
        );
    }

    #[test]
    fn describes_the_trigger_in_both_languages() {
        let triggers = PaymentNotice::describe();
        let codes: Vec<_> = triggers.iter().map(|info| info.code.as_str()).collect();
        assert_eq!(codes, [PAYMENT_RECEIVED]);
        for texts in [&triggers[0].names, &triggers[0].descriptions] {
            let langs: Vec<_> = texts.iter().map(|text| text.lang.as_str()).collect();
            assert_eq!(langs, ["en", "ru"]);
        }
        assert_eq!(triggers[0].names[0].text, "Payment received");
        assert_eq!(triggers[0].names[1].text, "Оплата получена");
    }
}
