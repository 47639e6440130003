//! The demo portal `robohost serve --demo` sets up, so a new user sees
//! robots run within a minute: the Prom2B template, a sales department with
//! its employees bound to the template's constants, and a few leads and
//! deals whose robots start at once. Only what is missing is added, so
//! starting the demo again changes nothing.

use serde_json::json;

use super::{Engine, PROM2B, Result};
use crate::domain::{Department, Entity, FieldValue, User, Value};

/// The employees: (id, name, the constant they are bound to).
const PEOPLE: [(u64, &str, Option<&str>); 7] = [
    (1, "Anna Smirnova (manager)", None),
    (2, "Boris Petrov (head of sales)", None),
    (3, "Clara Orlova (consultant)", Some("Consultant")),
    (4, "Dmitry Volkov (clerk)", Some("Clerk")),
    (5, "Elena Sokolova (accountant)", Some("Accountant")),
    (6, "Fyodor Kuznetsov (lawyer)", Some("Lawyer")),
    (7, "Galina Lebedeva (purchaser)", Some("Purchaser")),
];

impl Engine {
    /// Sets up the demo portal; returns how many sample entities it made.
    pub async fn install_demo(&self) -> Result<usize> {
        self.install_template(PROM2B).await?;
        let sales = Department {
            id: 1,
            name: "Sales".into(),
            head: Some(2),
            parent: None,
        };
        if self.settings().directory.departments.is_empty() {
            self.put_department(&sales).await?;
        }
        for (id, name, constant) in PEOPLE {
            if !self.settings().directory.users.iter().any(|u| u.id == id) {
                let user = User {
                    id,
                    name: name.into(),
                    department: Some(1),
                    active: true,
                    away: None,
                    hours: None,
                };
                self.put_user(&user).await?;
            }
            if let Some(code) = constant
                && !self.settings().constants.contains_key(code)
            {
                self.set_constant(code, &FieldValue::Single(Value::User(id))).await?;
            }
        }
        if !self
            .store
            .entities(crate::domain::EntityKind::Lead, 0, 1)
            .await?
            .is_empty()
        {
            return Ok(0);
        }
        let samples = [
            json!({"kind": "lead", "id": 0, "pipeline": "leads", "responsible": 1, "fields": {
                "TITLE": "Pumps for a water plant", "NAME": "Ivan", "LAST_NAME": "Ivanov",
                "PHONE": "+7 900 100-20-30", "EMAIL": "ivan@plant.example", "COMPANY_TITLE": "Water Plant LLC",
                "SOURCE_ID": "WEB", "UF_CLIENT_REQUEST": "Ten centrifugal pumps", "UF_NEEDS_CONSULTATION": true}}),
            json!({"kind": "lead", "id": 0, "pipeline": "leads", "responsible": 1, "fields": {
                "TITLE": "Valves, urgent", "NAME": "Olga", "PHONE": "+7 900 555-00-11", "SOURCE_ID": "CALL"}}),
            json!({"kind": "deal", "id": 0, "pipeline": "general", "stage": "FORMING_KP", "responsible": 1, "fields": {
                "TITLE": "Compressor line", "OPPORTUNITY": {"money": "1250000 RUB"},
                "UF_CLIENT_REQUEST": "A compressor line for a new workshop"}}),
            json!({"kind": "deal", "id": 0, "pipeline": "shipment", "stage": "ORDER_FROM_SUPPLIER", "responsible": 1, "fields": {
                "TITLE": "Gearboxes", "OPPORTUNITY": {"money": "480000 RUB"}, "UF_IN_STOCK": false,
                "UF_PAYMENT_TYPE": {"option": "postpayment"}}}),
        ];
        // Each is numbered when created: its id here is a placeholder.
        for sample in &samples {
            let entity: Entity = serde_json::from_value(sample.clone()).expect("the samples are valid");
            self.create_entity(entity, Vec::new()).await?;
        }
        Ok(samples.len())
    }
}
