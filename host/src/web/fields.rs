//! Custom fields in the board's settings: every kind's declared `UF_`
//! fields, declared and changed with a form and removed; after a change,
//! the stored values it no longer fits, as the API reports them.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::forms::{FormPage, Input, admin_form, admin_only, problem_of, value, values};
use super::session::Session;
use super::{Frame, form_fields, page};
use crate::api::ApiError;
use crate::domain::{Choice, EntityKind, FieldDecl, Localized, ValueType};
use crate::engine::{Engine, Misfits};

const TYPES: [&str; 11] = [
    "text", "integer", "decimal", "money", "boolean", "date", "datetime", "user", "entity", "option", "file",
];

#[derive(Template)]
#[template(path = "fields.html")]
struct FieldsPage {
    frame: Frame,
    /// (kind, code, type, name, options, multiple, required)
    fields: Vec<(String, String, String, String, String, bool, bool)>,
    misfits: Misfits,
}

async fn list(engine: &Engine, session: &Session) -> Response {
    let (lang, fields, misfits) = (
        session.lang,
        engine.store().custom_fields().await,
        engine.field_misfits(None, None).await,
    );
    let (fields, misfits) = match (fields, misfits) {
        (Ok(fields), Ok(misfits)) => (fields, misfits),
        (Err(e), _) => return ApiError::from(e).into_response(),
        (_, Err(e)) => return ApiError::from(e).into_response(),
    };
    let rows = fields
        .into_iter()
        .map(|f| {
            let options: Vec<&str> = f.options.iter().map(|c| c.code.as_str()).collect();
            (
                f.kind.as_str().to_owned(),
                f.code.clone(),
                f.value_type.as_str().to_owned(),
                lang.pick(&f.names, "").to_owned(),
                options.join(", "),
                f.multiple,
                f.required,
            )
        })
        .collect();
    page(&FieldsPage {
        frame: Frame::of(session, "/settings/fields".into()),
        fields: rows,
        misfits,
    })
}

pub async fn fields(State(engine): State<Arc<Engine>>, session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    list(&engine, &session).await
}

fn field_form(session: &Session, fields: &[(String, String)]) -> FormPage {
    let t = session.lang.text();
    let posted = |name: &str| value(fields, name).to_owned();
    let kinds = EntityKind::ALL
        .map(|k| (k.as_str().to_owned(), k.as_str().to_owned()))
        .to_vec();
    let types = TYPES.map(|ty| (ty.to_owned(), ty.to_owned())).to_vec();
    FormPage {
        frame: Frame::of(session, "/settings/fields/new".into()),
        heading: t.declare_field.into(),
        lead: t.declare_field_help.into(),
        action: "/settings/fields/new".into(),
        inputs: vec![
            Input::new("kind", t.entity_kind, "select")
                .value(posted("kind"))
                .choices(kinds),
            Input::new("code", t.field_code, "text")
                .value(posted("code"))
                .required(true)
                .help("UF_SEGMENT"),
            Input::new("type", t.field_type, "select")
                .value(posted("type"))
                .choices(types),
            Input::new("name_en", t.name_en, "text").value(posted("name_en")),
            Input::new("name_ru", t.name_ru, "text").value(posted("name_ru")),
            Input::new("options", t.field_options, "area")
                .value(posted("options"))
                .help(t.field_options_help),
            Input::new("multiple", t.field_multiple, "check").value(posted("multiple")),
            Input::new("required", t.field_required, "check").value(posted("required")),
        ],
        problems: Vec::new(),
        submit: t.save,
        back: "/settings/fields".into(),
        hidden: Vec::new(),
        inserts: Vec::new(),
    }
}

pub async fn new_field(session: Session) -> Response {
    if let Some(refused) = admin_only(&session) {
        return refused;
    }
    field_form(&session, &[]).respond()
}

/// Declares a field from the form: `options` one per line, `code` or
/// `code = name`.
pub async fn post_field(State(engine): State<Arc<Engine>>, session: Session, body: Bytes) -> Response {
    let fields = form_fields(&body);
    if let Some(refused) = admin_form(&session, &fields) {
        return refused;
    }
    let names: Localized = [("en", "name_en"), ("ru", "name_ru")]
        .into_iter()
        .filter(|(_, input)| !value(&fields, input).trim().is_empty())
        .map(|(lang, input)| (lang.to_owned(), value(&fields, input).trim().to_owned()))
        .collect();
    let options = values(&fields, "options")
        .into_iter()
        .map(|line| match line.split_once('=') {
            Some((code, name)) => Choice {
                code: code.trim().to_owned(),
                names: [("en".to_owned(), name.trim().to_owned())].into(),
            },
            None => Choice {
                code: line.clone(),
                names: Localized::new(),
            },
        })
        .collect();
    let value_type = serde_json::from_value::<ValueType>(value(&fields, "type").into()).unwrap_or(ValueType::Any);
    let Ok(kind) = value(&fields, "kind").parse::<EntityKind>() else {
        let problem = ("kind".to_owned(), session.lang.text().required.to_owned());
        return field_form(&session, &fields)
            .with_problems(vec![problem], |_| None)
            .respond();
    };
    let decl = FieldDecl {
        kind,
        code: value(&fields, "code").trim().to_owned(),
        value_type,
        names,
        options,
        multiple: value(&fields, "multiple") == "on",
        required: value(&fields, "required") == "on",
    };
    match engine.declare_field(&decl).await {
        Ok(_) => Redirect::to("/settings/fields").into_response(),
        Err(e) => {
            let (field, problem) = problem_of(e);
            // The declaration names its code; the form's input is `code`.
            let field = if field == decl.code { "code".to_owned() } else { field };
            field_form(&session, &fields)
                .with_problems(vec![(field, problem)], |_| None)
                .respond()
        }
    }
}

pub async fn remove_field(
    State(engine): State<Arc<Engine>>,
    session: Session,
    Path((kind, code)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refused) = admin_form(&session, &form_fields(&body)) {
        return refused;
    }
    let Ok(kind) = kind.parse::<EntityKind>() else {
        return super::not_found(&session);
    };
    match engine.remove_field(kind, &code).await {
        Ok(_) => Redirect::to("/settings/fields").into_response(),
        Err(crate::engine::EngineError::NotFound { .. }) => super::not_found(&session),
        Err(e) => ApiError::from(e).into_response(),
    }
}
