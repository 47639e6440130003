//! Declaring custom fields, and telling what stored values no longer fit
//! their declarations: a declaration changes, values stay as they were and
//! are reported, never dropped.

use serde::Serialize;

use super::{Engine, EngineError, Result};
use crate::domain::{EntityKind, FieldDecl, FieldValue, Schema};

/// Stored values that do not fit their declarations.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Misfits {
    /// How many (entity, field) pairs.
    pub count: u64,
    /// The first of them, in entity order.
    pub examples: Vec<Misfit>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Misfit {
    /// Such as `deal:42`.
    pub entity: String,
    pub field: String,
    pub problem: String,
}

/// How many misfits a report lists; it counts them all.
const EXAMPLES: usize = 50;

impl Engine {
    /// Declares a custom field or changes its declaration. Values stored
    /// under it stay; those that no longer fit are reported.
    pub async fn declare_field(&self, field: &FieldDecl) -> Result<Misfits> {
        field.check()?;
        self.configure(async |tx| tx.put_field(field).await).await?;
        self.field_misfits(Some(field.kind), Some(&field.code)).await
    }

    /// Removes a custom field's declaration; its stored values stay and are
    /// reported.
    pub async fn remove_field(&self, kind: EntityKind, code: &str) -> Result<Misfits> {
        if !self.configure(async |tx| tx.remove_field(kind, code).await).await? {
            return Err(EngineError::NotFound {
                what: format!("custom field `{code}` of {}", kind.as_str()),
            });
        }
        self.field_misfits(Some(kind), Some(code)).await
    }

    /// Stored values that do not fit their declarations (of one kind and
    /// field when named), and required fields left empty.
    pub async fn field_misfits(&self, kind: Option<EntityKind>, code: Option<&str>) -> Result<Misfits> {
        const PAGE: u32 = 1000;
        let schema: &Schema = &self.settings().fields;
        let mut report = Misfits::default();
        for kind in EntityKind::ALL
            .into_iter()
            .filter(|k| kind.is_none_or(|only| only == *k))
        {
            let required: Vec<&FieldDecl> = schema
                .of(kind)
                .filter(|d| d.required && code.is_none_or(|c| c == d.code))
                .collect();
            let mut after = 0;
            loop {
                let page = self.store.custom_values(kind, after, PAGE).await?;
                let Some((last, _)) = page.last() else { break };
                after = *last;
                for (id, fields) in page {
                    let mut found: Vec<(String, String)> = fields
                        .iter()
                        .filter(|(field, _)| code.is_none_or(|c| c == *field))
                        .filter_map(|(field, value)| Some((field.clone(), schema.misfit(kind, field, value)?)))
                        .collect();
                    found.extend(
                        (required.iter())
                            .filter(|d| fields.get(&d.code).is_none_or(|v| *v == FieldValue::Empty))
                            .map(|d| (d.code.clone(), "is required but empty".to_owned())),
                    );
                    for (field, problem) in found {
                        report.count += 1;
                        if report.examples.len() < EXAMPLES {
                            let entity = format!("{}:{id}", kind.as_str());
                            report.examples.push(Misfit { entity, field, problem });
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}
