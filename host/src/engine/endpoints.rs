//! Endpoints, as an admin makes them: checked (a trigger plugin that is
//! installed, or a form on a lead pipeline), given an unguessable id and,
//! when signed, a secret; and the catalog of trigger codes a stage may use.
//! What becomes of the calls posted to them is `inbound.rs`'s.

use super::plugins::Handler;
use super::{Engine, EngineError, Result, invalid, stage};
use crate::domain::{Endpoint, EndpointSpec, EntityKind, FORM_SUBMITTED, Unmatched};

/// A new endpoint secret: 32 random bytes, in hex, with a prefix that
/// tells it apart from an API token.
pub fn new_secret() -> Result<String> {
    Ok(format!("whsec_{}", random_hex(32)?))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| EngineError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

impl Engine {
    /// Checks what an endpoint's settings name: a trigger plugin that is
    /// installed, a secret long enough, a header name.
    fn check_endpoint(&self, spec: &EndpointSpec) -> Result<()> {
        match (&spec.plugin, &spec.form) {
            (Some(plugin), None) => self.check_trigger_plugin(plugin)?,
            (None, Some(form)) => {
                stage::target(&self.settings(), EntityKind::Lead, &form.pipeline, None)
                    .map_err(|e| invalid("form.pipeline", e.to_string()))?;
                if form.fields.is_empty() {
                    return Err(invalid(
                        "form.fields",
                        "name the form fields a lead keeps, such as {\"email\": \"EMAIL\"}",
                    ));
                }
                if let Some(code) = form.fields.values().find(|code| !crate::domain::is_field_code(code)) {
                    return Err(invalid("form.fields", format!("`{code}` is not a field code")));
                }
            }
            _ => {
                return Err(invalid(
                    "plugin",
                    "give either `plugin` (a trigger plugin) or `form`, not both or neither",
                ));
            }
        }
        if let Unmatched::CreateLead { pipeline } = &spec.unmatched {
            stage::target(&self.settings(), EntityKind::Lead, pipeline, None)
                .map_err(|e| invalid("unmatched.pipeline", e.to_string()))?;
        }
        if spec.secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(invalid("secret", "a secret is at least 16 characters"));
        }
        let header = &spec.idempotency_header;
        if header.is_empty()
            || header.len() > 100
            || !header
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let problem = format!("`{header}` is not a header name in lower case, such as `idempotency-key`");
            return Err(invalid("idempotency-header", problem));
        }
        Ok(())
    }

    fn check_trigger_plugin(&self, plugin: &str) -> Result<()> {
        match self.plugin(plugin).as_deref().map(|i| &i.handler) {
            Some(Handler::Trigger(_)) => Ok(()),
            Some(_) => {
                let problem = format!("`{plugin}` is a robot plugin; an endpoint needs a trigger plugin");
                Err(invalid("plugin", problem))
            }
            None if self.broken(plugin).is_some() => Err(invalid(
                "plugin",
                format!("plugin `{plugin}` is installed but does not load"),
            )),
            None => {
                let problem = format!("no plugin `{plugin}` is installed; install its package first");
                Err(invalid("plugin", problem))
            }
        }
    }

    /// Creates an endpoint with an unguessable id (128 random bits).
    pub async fn add_endpoint(&self, spec: EndpointSpec) -> Result<Endpoint> {
        self.check_endpoint(&spec)?;
        let endpoint = Endpoint {
            id: random_hex(16)?,
            spec,
            created_at: self.now(),
        };
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Changes an endpoint's settings; its id stays.
    pub async fn update_endpoint(&self, id: &str, spec: EndpointSpec) -> Result<Endpoint> {
        let found = self.store.endpoint(id).await?.ok_or_else(|| EngineError::NotFound {
            what: format!("endpoint `{id}`"),
        })?;
        self.check_endpoint(&spec)?;
        let endpoint = Endpoint { spec, ..found };
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    pub async fn remove_endpoint(&self, id: &str) -> Result<()> {
        if !self.store.delete_endpoint(id).await? {
            return Err(EngineError::NotFound {
                what: format!("endpoint `{id}`"),
            });
        }
        Ok(())
    }
}

/// A trigger code an admin may put on a stage, and where it comes from.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CatalogTrigger {
    pub code: String,
    #[schema(value_type = Object, example = json!({"en": "Incoming call", "ru": "Входящий звонок"}))]
    pub names: crate::domain::Localized,
    #[schema(value_type = Object)]
    pub descriptions: crate::domain::Localized,
    /// The trigger plugin that describes it; absent for the host's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

/// The trigger codes the host fires itself: code, names in English and
/// Russian, descriptions in English and Russian.
const HOST_TRIGGERS: [[&str; 5]; 4] = [
    [
        super::UPDATED,
        "Fields changed",
        "Изменение полей",
        "A user changed the entity's fields: with a condition, moves it once a field reaches a value.",
        "Пользователь изменил поля элемента: с условием переводит его, когда поле достигло значения.",
    ],
    [
        crate::domain::EMAIL_OPENED,
        "Email opened",
        "Письмо прочитано",
        "The client opened an email a robot sent about the entity.",
        "Клиент открыл письмо, отправленное роботом по элементу.",
    ],
    [
        FORM_SUBMITTED,
        "Form submitted",
        "Заполнение CRM-формы",
        "A visitor submitted a web form: the lead it made enters its pipeline.",
        "Посетитель заполнил веб-форму: созданный лид попадает в воронку.",
    ],
    [
        crate::domain::LINK_CLICKED,
        "Link clicked",
        "Переход по ссылке",
        "The client followed a link in an email a robot sent about the entity.",
        "Клиент перешёл по ссылке из письма, отправленного роботом по элементу.",
    ],
];

impl Engine {
    /// Every trigger code with a source: the host's own (`updated`, the
    /// email tracking's `email_opened` and `link_clicked`, the forms'
    /// `form_submitted`) and
    /// those the installed trigger plugins describe, by code.
    pub fn trigger_catalog(&self) -> Vec<CatalogTrigger> {
        let localized = |en: &str, ru: &str| [("en".to_string(), en.to_string()), ("ru".into(), ru.into())].into();
        let mut catalog: Vec<CatalogTrigger> = HOST_TRIGGERS
            .iter()
            .map(|[code, en, ru, en_about, ru_about]| CatalogTrigger {
                code: code.to_string(),
                names: localized(en, ru),
                descriptions: localized(en_about, ru_about),
                plugin: None,
            })
            .collect();
        let plugins = self.plugins.read().unwrap_or_else(|e| e.into_inner());
        for (name, installed) in plugins.iter() {
            if let Handler::Trigger(plugin) = &installed.handler {
                catalog.extend(plugin.triggers().iter().map(|t| CatalogTrigger {
                    code: t.code.clone(),
                    names: t.names.clone(),
                    descriptions: t.descriptions.clone(),
                    plugin: Some(name.clone()),
                }));
            }
        }
        catalog.sort_by(|a, b| (&a.code, &a.plugin).cmp(&(&b.code, &b.plugin)));
        catalog
    }
}
