//! Constants hold values of their declared type: checked when one is bound
//! ([`Engine::set_constant`]) and when a robot's properties or recipient
//! use one ([`Engine::constant_type_problems`], asked by every check of a
//! robot binding and by templates for the constants they declare).

use std::collections::HashMap;

use super::{Engine, Handler, Result, invalid};
use crate::domain::{ConstantDecl, FieldValue, Recipient, Reference, RobotBinding, Value, ValueType, check};

/// Whether a value of type `given` may stand where `wanted` is taken: the
/// same type, a whole number for a decimal, anything for text (it is
/// written as text) or for `any`.
fn accepts(wanted: ValueType, given: ValueType) -> bool {
    wanted == given
        || matches!(wanted, ValueType::Text | ValueType::Any)
        || given == ValueType::Any
        || (wanted == ValueType::Decimal && given == ValueType::Integer)
}

/// Whether a text is one expression and nothing else, so it resolves to
/// the referenced value itself rather than to a text.
fn alone(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("{=") && text.ends_with('}') && text.matches("{=").count() == 1
}

impl Engine {
    /// Binds a constant, refused when the value is not of the type the
    /// constant is declared with (a `user` constant holds a user of the
    /// portal). Emptying a constant is always allowed.
    pub async fn set_constant(&self, code: &str, value: &FieldValue) -> Result<()> {
        let declared = self.store.constant_decls().await?;
        if let Some(decl) = declared.iter().find(|d| d.code == code) {
            self.check_constant_value(decl, value)?;
        }
        self.configure(async |tx| tx.set_constant(code, value).await).await
    }

    fn check_constant_value(&self, decl: &ConstantDecl, value: &FieldValue) -> Result<()> {
        let values = match value {
            FieldValue::Empty => return Ok(()),
            FieldValue::Single(v) => std::slice::from_ref(v),
            FieldValue::List(vs) => vs.as_slice(),
        };
        let wanted = decl.value_type.as_str();
        for value in values {
            let fits = match (decl.value_type, value) {
                (ValueType::Any, _) | (ValueType::Decimal, Value::Integer(_)) => true,
                (ValueType::User, Value::User(id)) => {
                    if self.settings().directory.user(*id).is_none() {
                        let problem = format!(
                            "constant `{}` is a user, and there is no user {id}; add them under settings, people first",
                            decl.code
                        );
                        return Err(invalid("value", problem));
                    }
                    true
                }
                (_, value) => value.type_name() == wanted,
            };
            if !fits {
                let problem = format!(
                    "constant `{}` is declared as {wanted}; `{value}` is {}",
                    decl.code,
                    value.type_name()
                );
                return Err(invalid("value", problem));
            }
        }
        Ok(())
    }

    /// What a robot does with constants their declared types do not allow,
    /// as (field, problem): a recipient that is a constant not of type
    /// `user`, and `{=GlobalConst.X}` in a property whose type does not take
    /// X's type (alone, the expression is X's value; inside a text it is
    /// text). `decls` are the declarations to check against.
    pub(super) fn constant_type_problems(
        &self,
        robot: &RobotBinding,
        decls: &HashMap<String, ConstantDecl>,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(Recipient::Constant(code)) = &robot.recipient
            && let Some(decl) = decls.get(code)
            && !matches!(decl.value_type, ValueType::User | ValueType::Any)
        {
            let problem = format!(
                "constant `{code}` is declared as {}, not a user: a robot is addressed to a user",
                decl.value_type.as_str()
            );
            problems.push(("recipient".to_owned(), problem));
        }
        let Some(installed) = self.plugin(&robot.plugin) else {
            return problems;
        };
        let Handler::Wasm(plugin) = &installed.handler else {
            return problems;
        };
        let Some(info) = plugin.robots().iter().find(|r| r.code == robot.robot) else {
            return problems;
        };
        for (code, value) in &robot.properties {
            let Some(spec) = info.properties.iter().find(|p| &p.code == code) else {
                continue;
            };
            let texts: Vec<&str> = match value {
                FieldValue::Single(Value::Text(t)) => vec![t.as_str()],
                FieldValue::List(vs) => vs
                    .iter()
                    .filter_map(|v| match v {
                        Value::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for text in texts {
                let one = FieldValue::Single(Value::Text(text.to_owned()));
                let Ok(references) = check(&one) else { continue };
                for reference in references {
                    let Reference::GlobalConst(constant) = reference else {
                        continue;
                    };
                    let Some(decl) = decls.get(&constant) else { continue };
                    let given = if alone(text) { decl.value_type } else { ValueType::Text };
                    if !accepts(spec.value_type, given) {
                        let problem = if alone(text) {
                            format!(
                                "constant `{constant}` is declared as {}; this property takes {}",
                                decl.value_type.as_str(),
                                spec.value_type.as_str()
                            )
                        } else {
                            format!(
                                "constant `{constant}` inside a text makes a text; this property takes {}",
                                spec.value_type.as_str()
                            )
                        };
                        problems.push((format!("properties.{code}"), problem));
                    }
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_property_takes_a_constant_of_its_type_and_text_takes_any() {
        assert!(accepts(ValueType::User, ValueType::User));
        assert!(accepts(ValueType::Text, ValueType::User));
        assert!(accepts(ValueType::Decimal, ValueType::Integer));
        assert!(accepts(ValueType::Any, ValueType::Date));
        assert!(!accepts(ValueType::User, ValueType::Text));
        assert!(!accepts(ValueType::Integer, ValueType::Decimal));
    }

    #[test]
    fn an_expression_alone_is_its_value_and_inside_a_text_is_text() {
        assert!(alone("{=GlobalConst.Clerk}"));
        assert!(alone(" {=GlobalConst.Clerk} "));
        assert!(!alone("For {=GlobalConst.Clerk}"));
        assert!(!alone("{=GlobalConst.A}{=GlobalConst.B}"));
    }
}
