//! Web forms: an endpoint whose calls are a site's form submissions
//! (`application/x-www-form-urlencoded`, as a browser posts a form, or a
//! JSON object), each becoming a lead whose fields the form's mapping names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::Fields;
use super::inbound::InboundCall;
use super::value::{FieldValue, Value};

/// The trigger code a submission fires on the lead it makes.
pub const FORM_SUBMITTED: &str = "form_submitted";

/// A form's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FormSpec {
    /// The lead pipeline a submission's lead enters, at its first stage.
    pub pipeline: String,
    /// Each form field the lead keeps, and the lead field it goes to, such
    /// as `email` → `EMAIL`; other form fields are dropped.
    pub fields: BTreeMap<String, String>,
    /// A field hidden from people, which bots fill in: a submission that
    /// fills it is answered as taken and dropped.
    #[serde(default = "honeypot")]
    pub honeypot: String,
    /// Where a browser goes after submitting (303 See Other); without it
    /// the answer is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
}

fn honeypot() -> String {
    "website".into()
}

/// What a submission holds, as the form maps it.
#[derive(Debug, PartialEq)]
pub enum Submission {
    /// The lead's fields (text values, empty ones left out).
    Lead(Fields),
    /// The honeypot is filled: a bot.
    Spam,
}

/// Reads a submission: a URL-encoded or JSON body. An error says what is
/// wrong with it, for the call's record.
pub fn read_submission(spec: &FormSpec, call: &InboundCall) -> Result<Submission, String> {
    let json = call
        .header("content-type")
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    let pairs: Vec<(String, String)> = if json {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&call.body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
        object
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                serde_json::Value::Null => (k, String::new()),
                other => (k, other.to_string()),
            })
            .collect()
    } else {
        form_urlencoded::parse(&call.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };
    if pairs.iter().any(|(k, v)| *k == spec.honeypot && !v.trim().is_empty()) {
        return Ok(Submission::Spam);
    }
    let mut fields = Fields::new();
    for (name, value) in pairs {
        let value = value.trim();
        if let Some(code) = spec.fields.get(&name)
            && !value.is_empty()
        {
            fields.insert(code.clone(), FieldValue::Single(Value::Text(value.to_owned())));
        }
    }
    if fields.is_empty() {
        let names: Vec<&str> = spec.fields.keys().map(String::as_str).collect();
        return Err(format!(
            "the submission fills none of the form's fields ({})",
            names.join(", ")
        ));
    }
    Ok(Submission::Lead(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FormSpec {
        FormSpec {
            pipeline: "leads".into(),
            fields: [("name", "NAME"), ("email", "EMAIL")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .into(),
            honeypot: honeypot(),
            redirect: None,
        }
    }

    fn call(content_type: &str, body: &str) -> InboundCall {
        InboundCall {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::Single(Value::Text(s.into()))
    }

    #[test]
    fn a_browsers_submission_maps_to_lead_fields() {
        let body = "name=Ivan+Petrov&email=ivan%40example.com&comment=hi&website=";
        let read = read_submission(&spec(), &call("application/x-www-form-urlencoded", body)).unwrap();
        let expected = Fields::from([
            ("NAME".into(), text("Ivan Petrov")),
            ("EMAIL".into(), text("ivan@example.com")),
        ]);
        assert_eq!(read, Submission::Lead(expected));
    }

    #[test]
    fn a_json_submission_maps_too() {
        let read = read_submission(
            &spec(),
            &call("application/json", r#"{"email": " a@b.c ", "name": null}"#),
        )
        .unwrap();
        assert_eq!(read, Submission::Lead(Fields::from([("EMAIL".into(), text("a@b.c"))])));
        let bad = read_submission(&spec(), &call("application/json", "[1]")).unwrap_err();
        assert!(bad.starts_with("the body is not a JSON object"), "{bad}");
    }

    #[test]
    fn a_filled_honeypot_is_spam_and_an_empty_form_is_refused() {
        let bot = "name=Bot&email=bot%40spam.example&website=http%3A%2F%2Fspam.example";
        assert_eq!(
            read_submission(&spec(), &call("application/x-www-form-urlencoded", bot)),
            Ok(Submission::Spam)
        );
        let empty = read_submission(&spec(), &call("application/x-www-form-urlencoded", "comment=hi")).unwrap_err();
        assert_eq!(empty, "the submission fills none of the form's fields (email, name)");
    }
}
