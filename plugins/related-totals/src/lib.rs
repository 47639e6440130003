//! Robot `related_totals`: counts the deals of a contact or company and sums
//! their amounts in one currency into the custom fields `UF_DEALS_COUNT` and
//! `UF_DEALS_TOTAL`. Amounts in other currencies are not converted (the robot
//! has no rates): those deals are counted, skipped from the sum and logged.

use robohost_sdk::{
    Capability, Context, Decimal, Entity, EntityKind, Failure, Money, Property, Returns, Robot, RobotInfo, Value, crm,
    effects, log,
};

/// The currency summed when the admin names none.
const DEFAULT_CURRENCY: &str = "RUB";
/// The deal field holding its amount.
const AMOUNT_FIELD: &str = "OPPORTUNITY";

struct RelatedTotals;

impl Robot for RelatedTotals {
    const CODE: &'static str = "related_totals";

    fn info() -> RobotInfo {
        RobotInfo::new(Self::CODE)
            .name("en", "Deal totals")
            .name("ru", "Итоги по сделкам")
            .description(
                "en",
                "Writes the number of the contact's or company's deals and the sum of their \
                 amounts in one currency to UF_DEALS_COUNT and UF_DEALS_TOTAL.",
            )
            .description(
                "ru",
                "Записывает число сделок контакта или компании и сумму их сумм в одной валюте \
                 в поля UF_DEALS_COUNT и UF_DEALS_TOTAL.",
            )
            .capability(Capability::CrmRead)
            .capability(Capability::SetFields)
            .property(
                Property::text("currency")
                    .default(DEFAULT_CURRENCY)
                    .name("en", "Currency")
                    .name("ru", "Валюта")
                    .description("en", "ISO 4217 code; deals in other currencies are skipped.")
                    .description("ru", "Код ISO 4217; сделки в других валютах пропускаются."),
            )
            .returns(
                Property::integer("deals_count")
                    .name("en", "Deals")
                    .name("ru", "Сделок"),
            )
            .returns(Property::money("deals_total").name("en", "Total").name("ru", "Сумма"))
            .returns(
                Property::integer("skipped")
                    .name("en", "Deals in other currencies")
                    .name("ru", "Сделок в других валютах"),
            )
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let this = cx.this();
        if !matches!(this.kind, EntityKind::Contact | EntityKind::Company) {
            return Err(Failure::new(
                "wrong_entity",
                format!("related_totals runs on contacts and companies, not on a {}", this.kind),
            ));
        }
        let currency = cx.opt_text("currency")?.unwrap_or(DEFAULT_CURRENCY);
        let deals = crm::list_related(this, EntityKind::Deal)?;
        let totals = sum_deals(&deals, currency)?;
        for reason in &totals.skipped {
            log::warn(reason);
        }
        let count = deals.len() as i64;
        let skipped = totals.skipped.len() as i64;
        effects::set_fields(this)
            .set("UF_DEALS_COUNT", count)
            .set("UF_DEALS_TOTAL", totals.total.clone())
            .apply()?;
        Ok(Returns::new()
            .set("deals_count", count)
            .set("deals_total", totals.total)
            .set("skipped", skipped))
    }
}

struct Totals {
    total: Money,
    /// Why each skipped deal was left out of the total.
    skipped: Vec<String>,
}

/// Sums the amounts in `currency`. A deal without an amount adds nothing; one
/// with an amount in another currency, or not in money, is skipped.
fn sum_deals(deals: &[Entity], currency: &str) -> Result<Totals, Failure> {
    let mut total = Decimal::ZERO;
    let mut skipped = Vec::new();
    for deal in deals {
        let id = deal.id;
        match deal.value(AMOUNT_FIELD) {
            Ok(None) => {}
            Ok(Some(Value::Money(money))) if money.currency == currency => {
                total = total
                    .checked_add(money.amount)
                    .ok_or_else(|| Failure::new("overflow", format!("the total overflows at deal {id}")))?;
            }
            Ok(Some(Value::Money(money))) => {
                skipped.push(format!("deal {id}: amount {money} is not in {currency}; skipped"));
            }
            Ok(Some(other)) => skipped.push(format!(
                "deal {id}: amount is {}, not money; skipped",
                other.value_type()
            )),
            Err(failure) => skipped.push(format!("deal {id}: {}; skipped", failure.message)),
        }
    }
    Ok(Totals {
        total: Money::new(total, currency),
        skipped,
    })
}

robohost_sdk::export_robots!(RelatedTotals);

#[cfg(test)]
mod tests {
    use super::*;

    fn deal(id: u64, amount: &str, currency: &str) -> Entity {
        let amount = Money::new(amount.parse().unwrap(), currency);
        Entity::new(EntityKind::Deal, id).with_field(AMOUNT_FIELD, amount)
    }

    #[test]
    fn sums_only_the_amounts_in_the_currency() {
        let deals = [
            deal(1, "100.50", "RUB"),
            deal(2, "20", "EUR"),
            deal(3, "0.25", "RUB"),
            Entity::new(EntityKind::Deal, 4),
            Entity::new(EntityKind::Deal, 5).with_field(AMOUNT_FIELD, 7),
        ];
        let totals = sum_deals(&deals, "RUB").unwrap();
        assert_eq!(totals.total.to_string(), "100.75 RUB");
        assert_eq!(
            totals.skipped,
            [
                "deal 2: amount 20 EUR is not in RUB; skipped",
                "deal 5: amount is integer, not money; skipped",
            ]
        );
    }

    #[test]
    fn no_deals_total_zero() {
        let totals = sum_deals(&[], "EUR").unwrap();
        assert_eq!(totals.total.to_string(), "0 EUR");
        assert!(totals.skipped.is_empty());
    }

    #[test]
    fn an_overflowing_total_fails() {
        let huge = Money::new(Decimal::new(i64::MAX, 0), "RUB");
        let deals = [
            Entity::new(EntityKind::Deal, 1).with_field(AMOUNT_FIELD, huge.clone()),
            Entity::new(EntityKind::Deal, 2).with_field(AMOUNT_FIELD, huge),
        ];
        let failure = sum_deals(&deals, "RUB").err().unwrap();
        assert_eq!(failure.code, "overflow");
    }
}
