//! What a trigger component exchanges with the host, made convenient: its
//! catalog entries (`TriggerInfo`), the inbound call it reads (`Request`) and
//! the hits it returns (`Hit`). Plain Rust with no host call.
//!
//! The SDK reads a request's headers, query and body as bytes and text only:
//! parsing a JSON or form body is the plugin's choice (`serde_json` with
//! `default-features = false, features = ["alloc"]` is enough), so the SDK
//! pulls in no parser.

use std::borrow::Cow;

use crate::{
    EntityKind, EntityRef, Failure, Field, FieldValue, Hit, Localized, Lookup, Request, Target, TriggerInfo, Value,
};

impl TriggerInfo {
    /// An entry for trigger `code` with no names or descriptions yet.
    pub fn new(code: impl Into<String>) -> Self {
        TriggerInfo {
            code: code.into(),
            names: Vec::new(),
            descriptions: Vec::new(),
        }
    }

    /// Adds the trigger's name in `lang`.
    pub fn name(mut self, lang: &str, text: &str) -> Self {
        self.names.push(Localized::new(lang, text));
        self
    }

    /// Adds when the trigger fires, in `lang`.
    pub fn description(mut self, lang: &str, text: &str) -> Self {
        self.descriptions.push(Localized::new(lang, text));
        self
    }
}

impl Hit {
    /// A hit firing trigger `trigger` for `target`, with no data yet.
    pub fn new(trigger: impl Into<String>, target: impl Into<Target>) -> Self {
        Hit {
            trigger: trigger.into(),
            target: target.into(),
            data: Vec::new(),
        }
    }

    /// A hit firing trigger `trigger` for the known entity `entity`.
    ///
    /// ```
    /// # use robohost_sdk::{EntityKind, EntityRef, Hit};
    /// let hit = Hit::entity("paid", EntityRef::new(EntityKind::Deal, 42)).field("PAYMENT_ID", "pay_1");
    /// ```
    pub fn entity(trigger: impl Into<String>, entity: EntityRef) -> Self {
        Hit::new(trigger, entity)
    }

    /// A hit firing trigger `trigger` for the entities of `kind` whose field
    /// `code` holds `value`, which the host finds: such as the contacts with
    /// a phone number.
    ///
    /// ```
    /// # use robohost_sdk::{EntityKind, Hit};
    /// let hit = Hit::lookup("missed_call", EntityKind::Contact, "PHONE", "+79123456789").field("DURATION", 0);
    /// ```
    pub fn lookup(trigger: impl Into<String>, kind: EntityKind, code: &str, value: impl Into<Value>) -> Self {
        Hit::new(trigger, Lookup::new(kind, code, value))
    }

    /// Sets field `code` of the event's data to `value`, replacing an earlier
    /// value of `code`. The host keeps the data with the event.
    pub fn field(self, code: &str, value: impl Into<Value>) -> Self {
        self.field_value(code, FieldValue::Single(value.into()))
    }

    /// Sets field `code` of the event's data to a value of any shape: empty,
    /// one value or several.
    pub fn field_value(mut self, code: &str, value: FieldValue) -> Self {
        match self.data.iter_mut().find(|field| field.code == code) {
            Some(field) => field.value = value,
            None => self.data.push(Field {
                code: code.into(),
                value,
            }),
        }
        self
    }

    /// The value of field `code` of the event's data, if set.
    pub fn data_field(&self, code: &str) -> Option<&FieldValue> {
        self.data
            .iter()
            .find(|field| field.code == code)
            .map(|field| &field.value)
    }
}

impl Lookup {
    /// The entities of `kind` whose field `code` holds `value`.
    pub fn new(kind: EntityKind, code: impl Into<String>, value: impl Into<Value>) -> Self {
        Lookup {
            kind,
            code: code.into(),
            value: value.into(),
        }
    }
}

impl From<EntityRef> for Target {
    fn from(entity: EntityRef) -> Self {
        Target::Entity(entity)
    }
}

impl From<Lookup> for Target {
    fn from(lookup: Lookup) -> Self {
        Target::Lookup(lookup)
    }
}

/// Reading an inbound call.
impl Request {
    /// The first value of header `name`, whose case does not matter.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Every value of header `name`, whose case does not matter, in the
    /// order received.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The media type of the body without its parameters, such as
    /// `application/json` for `application/json; charset=utf-8`; `None` when
    /// the request has no `content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        let value = self.header("content-type")?;
        Some(value.split(';').next().unwrap_or(value).trim())
    }

    /// Whether the method is `method`, such as `POST`. Methods are
    /// case-sensitive, as in HTTP.
    pub fn is_method(&self, method: &str) -> bool {
        self.method == method
    }

    /// Fails with code `method` unless the method is `method`.
    pub fn expect_method(&self, method: &str) -> Result<(), Failure> {
        if self.is_method(method) {
            return Ok(());
        }
        Err(Failure::new(
            "method",
            format!("method {} is not accepted: only {method} is", self.method),
        ))
    }

    /// The body as text; a `bad_payload` failure when it is not UTF-8.
    pub fn body_str(&self) -> Result<&str, Failure> {
        core::str::from_utf8(&self.body)
            .map_err(|error| Failure::bad_payload(format!("the body is not UTF-8 text: {error}")))
    }

    /// The query's `name=value` pairs in order, percent-decoded (`+` is a
    /// space); a pair without `=` has an empty value.
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value)
    }
}

/// Building requests by hand, for unit tests of triggers: the host passes
/// real ones.
impl Request {
    /// A request with `method` and `body`, on the plugin's address itself,
    /// with no query or headers.
    pub fn new(method: &str, body: impl Into<Vec<u8>>) -> Self {
        Request {
            method: method.into(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `POST` of `body`.
    pub fn post(body: impl Into<Vec<u8>>) -> Self {
        Request::new("POST", body)
    }

    /// With one more header: `name` (lower-cased, as the host passes names)
    /// with `value`.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// With `path` after the plugin's address.
    pub fn with_path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    /// With query string `query`, without `?`.
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = query.into();
        self
    }
}

/// `text` with `+` as a space and each `%XX` as its byte. A `%` not followed
/// by two hex digits stays as it is, and bytes that are not UTF-8 become
/// U+FFFD: a query is the sender's, and reading it must not fail.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    // Two hex digits make at most 0xff.
                    decoded.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decimal, Money};

    #[test]
    fn builds_a_catalog_entry() {
        let info = TriggerInfo::new("payment_received")
            .name("en", "Payment received")
            .name("ru", "Оплата получена")
            .description("en", "The deal was paid.");
        assert_eq!(info.code, "payment_received");
        let langs: Vec<_> = info.names.iter().map(|name| name.lang.as_str()).collect();
        assert_eq!(langs, ["en", "ru"]);
        assert_eq!(info.descriptions, [Localized::new("en", "The deal was paid.")]);
    }

    #[test]
    fn builds_hits_on_an_entity_and_on_a_lookup() {
        let deal = EntityRef::new(EntityKind::Deal, 42);
        let paid = Money::new(Decimal::new(150_000, 2), "RUB");
        let hit = Hit::entity("paid", deal)
            .field("AMOUNT", paid.clone())
            .field("PAYMENT_ID", "pay_1");
        assert_eq!(hit.trigger, "paid");
        assert_eq!(hit.target, Target::Entity(deal));
        assert_eq!(hit.data_field("AMOUNT"), Some(&FieldValue::Single(Value::Money(paid))));
        assert_eq!(hit.data_field("NONE"), None);

        let hit = Hit::lookup("missed_call", EntityKind::Contact, "PHONE", "+79123456789");
        assert_eq!(
            hit.target,
            Target::Lookup(Lookup {
                kind: EntityKind::Contact,
                code: "PHONE".into(),
                value: Value::text("+79123456789"),
            })
        );
        assert!(hit.data.is_empty());
    }

    #[test]
    fn a_later_data_field_replaces_an_earlier_one() {
        let hit = Hit::entity("poked", EntityRef::new(EntityKind::Lead, 1))
            .field("NOTE", "first")
            .field("COUNT", 1)
            .field("NOTE", "second")
            .field_value("TAGS", vec![Value::text("a"), Value::text("b")].into());
        let codes: Vec<_> = hit.data.iter().map(|field| field.code.as_str()).collect();
        assert_eq!(codes, ["NOTE", "COUNT", "TAGS"]);
        assert_eq!(hit.data[0], Field::new("NOTE", "second"));
    }

    fn request() -> Request {
        Request::post(r#"{"ok": true}"#)
            .with_header("Content-Type", "application/json; charset=utf-8")
            .with_header("x-signature", "one")
            .with_header("X-Signature", "two")
            .with_path("/payments")
            .with_query("order=deal%3A42&note=paid+in+full&flag&empty=&bad=%zz%4&order=7")
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let request = request();
        assert_eq!(request.headers[0].0, "content-type");
        assert_eq!(request.header("CONTENT-TYPE"), Some("application/json; charset=utf-8"));
        assert_eq!(request.header("x-signature"), Some("one"));
        assert_eq!(request.header_values("X-SIGNATURE").collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.content_type(), Some("application/json"));
        assert_eq!(Request::post("").content_type(), None);
    }

    #[test]
    fn reads_the_query_percent_decoded() {
        let request = request();
        assert_eq!(request.query_param("order").as_deref(), Some("deal:42"));
        assert_eq!(request.query_param("note").as_deref(), Some("paid in full"));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        assert_eq!(request.query_param("empty").as_deref(), Some(""));
        assert_eq!(request.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(request.query_param("missing"), None);
        assert_eq!(request.query_pairs().count(), 6);
        assert!(matches!(request.query_param("flag"), Some(Cow::Borrowed(_))));
        assert_eq!(percent_decode("%D0%9E%d0%BF"), "Оп");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(Request::post("").query_pairs().count(), 0);
    }

    #[test]
    fn reads_the_body_as_text() {
        assert_eq!(request().body_str().unwrap(), r#"{"ok": true}"#);
        let failure = Request::post(vec![b'{', 0xff]).body_str().unwrap_err();
        assert_eq!(failure.code, "bad_payload");
        assert!(
            failure.message.starts_with("the body is not UTF-8 text"),
            "{}",
            failure.message
        );
        assert!(!failure.retryable);
    }

    #[test]
    fn checks_the_method() {
        let request = request();
        assert!(request.is_method("POST"));
        assert!(!request.is_method("post"));
        assert_eq!(request.expect_method("POST"), Ok(()));
        let failure = Request::new("GET", "").expect_method("POST").unwrap_err();
        assert_eq!(failure.code, "method");
        assert_eq!(failure.message, "method GET is not accepted: only POST is");
        assert!(!failure.retryable);
    }
}
