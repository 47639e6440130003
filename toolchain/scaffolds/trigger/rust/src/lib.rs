//! Trigger `{{code}}`: a form on the site posts what the visitor entered as
//! JSON, such as `{"form": "contact-us", "email": "ann@example.com",
//! "message": "Call me back"}`, and the trigger fires for the contact with
//! that email (the host compares emails ignoring case), with the form's name
//! and the message as the event's data.
//! `robohost plugin build` compiles it into a component;
//! `robohost plugin test` runs it on the cases in `tests/`.

use robohost_sdk::{EntityKind, Failure, Hit, Request, Trigger, TriggerInfo, log};
use serde_json::{Map, Value as Json};

struct FormSubmitted;

impl Trigger for FormSubmitted {
    fn describe() -> Vec<TriggerInfo> {
        vec![
            TriggerInfo::new("{{code}}")
                .name("en", "Form submitted")
                .name("ru", "Форма отправлена")
                .description("en", "A visitor submitted a form on the site with the contact's email.")
                .description("ru", "Посетитель отправил форму на сайте с email контакта."),
        ]
    }

    fn handle(request: &Request) -> Result<Vec<Hit>, Failure> {
        // Failures refuse the call: `method` and `bad_payload` are the codes
        // a test case's `expect.failure` names.
        request.expect_method("POST")?;
        let form: Map<String, Json> = serde_json::from_slice(&request.body)
            .map_err(|_| Failure::bad_payload("the body is not a JSON object"))?;
        let text = |name: &str| form.get(name).and_then(Json::as_str).unwrap_or("");
        let email = text("email");
        if !email.contains('@') {
            return Err(Failure::bad_payload("field `email` is missing or not an email address"));
        }
        log::info(format!("form `{}` submitted by {email}", text("form")));
        let hit = Hit::lookup("{{code}}", EntityKind::Contact, "EMAIL", email)
            .field("FORM", text("form"))
            .field("MESSAGE", text("message"));
        Ok(vec![hit])
    }
}

robohost_sdk::export_triggers!(FormSubmitted);
