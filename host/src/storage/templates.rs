//! Installed templates: each one's version and what it declared.

use super::{Backend, Result, Store, from_json};
use crate::domain::InstalledTemplate;

impl Store {
    /// Every installed template, by code.
    pub async fn templates(&self) -> Result<Vec<InstalledTemplate>> {
        let specs: Vec<String> =
            on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM templates ORDER BY code").fetch_all(c).await)?;
        specs.iter().map(|s| from_json("installed template", s)).collect()
    }

    pub async fn template(&self, code: &str) -> Result<Option<InstalledTemplate>> {
        let spec: Option<String> = on!(&*self.db, c => sqlx::query_scalar("SELECT spec FROM templates WHERE code = $1").bind(code).fetch_optional(c).await)?;
        spec.map(|s| from_json("installed template", &s)).transpose()
    }
}
