//! Robot `assign_by_amount`: makes the user of an entity's amount band
//! responsible for it, and says why in a comment. The bands are cut by
//! ascending upper bounds: with bounds 100 000 and 500 000, a deal of 250 000
//! is in band 2 of 3.

use robohost_sdk::{
    Capability, Context, Decimal, Failure, Property, Returns, Robot, RobotInfo, UserId, Value, effects,
};

/// Where the amount is read from when the admin names no field.
const DEFAULT_AMOUNT_FIELD: &str = "OPPORTUNITY";

struct AssignByAmount;

impl Robot for AssignByAmount {
    const CODE: &'static str = "assign_by_amount";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Assign by amount")
            .name("ru", "Назначить по сумме")
            .description(
                "en",
                "Makes the user of the amount's band responsible and comments on the choice.",
            )
            .description(
                "ru",
                "Назначает ответственным сотрудника диапазона, в который попала сумма, \
                 и объясняет выбор в комментарии.",
            )
            .capability(Capability::ChangeResponsible)
            .capability(Capability::AddComment)
            .property(
                Property::text("amount_field")
                    .default(DEFAULT_AMOUNT_FIELD)
                    .name("en", "Amount field")
                    .name("ru", "Поле суммы")
                    .description("en", "The field holding the amount: money, decimal or integer.")
                    .description("ru", "Поле с суммой: деньги, дробное или целое число."),
            )
            .property(
                Property::decimal("bounds")
                    .required()
                    .multiple()
                    .name("en", "Band bounds")
                    .name("ru", "Границы диапазонов")
                    .description(
                        "en",
                        "Ascending upper bounds: an amount below the first is in band 1, \
                         and one at or above the last is in the last band.",
                    )
                    .description(
                        "ru",
                        "Верхние границы по возрастанию: сумма меньше первой попадает в \
                         диапазон 1, а не меньше последней — в последний.",
                    ),
            )
            .property(
                Property::user("users")
                    .required()
                    .multiple()
                    .name("en", "Users by band")
                    .name("ru", "Сотрудники по диапазонам")
                    .description("en", "One user per band: one more than there are bounds.")
                    .description("ru", "По сотруднику на диапазон: на одного больше, чем границ."),
            )
            .returns(
                Property::user("assigned_user")
                    .name("en", "Assigned user")
                    .name("ru", "Назначенный сотрудник"),
            )
            .returns(
                Property::integer("band")
                    .name("en", "Band, from 1")
                    .name("ru", "Номер диапазона, с 1"),
            )
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let choice = choose(cx)?;
        let this = cx.this();
        if cx.entity().responsible != Some(choice.user) {
            effects::change_responsible(this, choice.user)?;
        }
        effects::comment(
            this,
            &format!(
                "Assigned to user {}: amount {} is in band {} of {}",
                choice.user, choice.amount, choice.band, choice.bands
            ),
        )?;
        Ok(Returns::new()
            .set("assigned_user", Value::User(choice.user))
            .set("band", choice.band as i64))
    }
}

/// Who gets the entity and why, decided before any effect.
#[derive(Debug, PartialEq)]
struct Choice {
    user: UserId,
    amount: Decimal,
    /// 1-based.
    band: usize,
    bands: usize,
}

fn choose(cx: &Context) -> Result<Choice, Failure> {
    let field = cx.opt_text("amount_field")?.unwrap_or(DEFAULT_AMOUNT_FIELD);
    let bounds = cx.prop_decimals("bounds")?;
    let users = cx.prop_users("users")?;
    if let Some(pair) = bounds.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(Failure::bad_property(
            "bounds",
            format!(
                "bounds must be strictly ascending, but {} is followed by {}",
                pair[0], pair[1]
            ),
        ));
    }
    let bands = bounds.len() + 1;
    if users.len() != bands {
        return Err(Failure::bad_property(
            "users",
            format!(
                "expected {bands} users, one per band of the {} bounds, got {}",
                bounds.len(),
                users.len()
            ),
        ));
    }
    let amount = cx.entity().amount(field)?.ok_or_else(|| {
        Failure::new(
            "no_amount",
            format!("the {} has no amount in field `{field}`", cx.entity().kind),
        )
    })?;
    let band = bounds.iter().position(|bound| amount < *bound).unwrap_or(bounds.len());
    Ok(Choice {
        user: users[band],
        amount,
        band: band + 1,
        bands,
    })
}

robohost_sdk::export_robots!(AssignByAmount);

#[cfg(test)]
mod tests {
    use super::*;
    use robohost_sdk::{Entity, EntityKind, Invocation, Money};

    fn run_on(deal: Entity, bounds: &[i64], users: &[UserId]) -> Result<Choice, Failure> {
        let invocation = Invocation::new(AssignByAmount::CODE, deal)
            .with_properties("bounds", bounds.iter().map(|&b| Value::from(b)).collect())
            .with_properties("users", users.iter().map(|&u| Value::User(u)).collect());
        choose(&Context::new(invocation))
    }

    fn deal(amount: i64) -> Entity {
        let amount = Money::new(Decimal::new(amount * 100, 2), "RUB");
        Entity::new(EntityKind::Deal, 1).with_field("OPPORTUNITY", amount)
    }

    #[test]
    fn an_amount_belongs_to_the_first_band_whose_bound_is_above_it() {
        let band = |amount| run_on(deal(amount), &[1000, 5000], &[10, 11, 12]).unwrap();
        assert_eq!((band(999).user, band(999).band), (10, 1));
        assert_eq!((band(1000).user, band(1000).band), (11, 2));
        assert_eq!((band(4999).user, band(4999).band), (11, 2));
        assert_eq!((band(5000).user, band(5000).band, band(5000).bands), (12, 3, 3));
        assert_eq!(band(1000).amount.to_string(), "1000.00");
    }

    #[test]
    fn reads_the_amount_from_the_named_field() {
        let entity = Entity::new(EntityKind::Lead, 2).with_custom_field("UF_BUDGET", 7000);
        let invocation = Invocation::new(AssignByAmount::CODE, entity)
            .with_property("amount_field", "UF_BUDGET")
            .with_properties("bounds", vec![Value::from(5000)])
            .with_properties("users", vec![Value::User(1), Value::User(2)]);
        assert_eq!(choose(&Context::new(invocation)).unwrap().user, 2);
    }

    #[test]
    fn a_missing_amount_is_no_amount() {
        let failure = run_on(Entity::new(EntityKind::Deal, 1), &[1000], &[10, 11]).unwrap_err();
        assert_eq!(failure.code, "no_amount");
        assert_eq!(failure.message, "the deal has no amount in field `OPPORTUNITY`");
    }

    #[test]
    fn bad_settings_name_the_property() {
        let failure = run_on(deal(1), &[5000, 1000], &[10, 11, 12]).unwrap_err();
        assert_eq!(failure.code, "bad_property");
        assert_eq!(
            failure.message,
            "property `bounds`: bounds must be strictly ascending, but 5000 is followed by 1000"
        );
        let failure = run_on(deal(1), &[1000, 5000], &[10, 11]).unwrap_err();
        assert_eq!(
            failure.message,
            "property `users`: expected 3 users, one per band of the 2 bounds, got 2"
        );
    }
}
