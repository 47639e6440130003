//! Robot `rf_segment`: RF segmentation (scenario 9 of the domain notes). A
//! client's segment comes from Recency, the days since the last purchase,
//! and Frequency, the number of purchases, and is written to a field:
//!
//! | recency \ purchases | 1         | 2 to frequent-1 | frequent or more |
//! |---------------------|-----------|-----------------|------------------|
//! | up to `recent_days` | new       | promising       | loyal            |
//! | up to `lapsing_days`| wandering | wandering       | loyal            |
//! | up to `dormant_days`| dormant   | dormant         | at_risk          |
//! | longer              | lost      | lost            | lost             |
//!
//! The same robot is written in every SDK language; all give the same
//! segments on the same entities.

use robohost_sdk::{Capability, Choice, Context, Failure, Property, Returns, Robot, RobotInfo, Value, effects};

const SEGMENTS: [(&str, &str, &str); 7] = [
    ("new", "New", "Новые"),
    ("promising", "Promising", "Перспективные"),
    ("wandering", "Wandering", "Блуждающие"),
    ("dormant", "Dormant", "Спящие"),
    ("loyal", "Loyal", "Лояльные"),
    ("at_risk", "At risk", "В зоне риска"),
    ("lost", "Lost", "Потерянные"),
];

/// The segment of a client `days` after their last purchase with
/// `purchases` purchases in all.
fn segment(days: i64, purchases: i64, bounds: &Bounds) -> &'static str {
    let frequent = purchases >= bounds.frequent;
    if days > bounds.dormant_days {
        "lost"
    } else if days > bounds.lapsing_days {
        if frequent { "at_risk" } else { "dormant" }
    } else if frequent {
        "loyal"
    } else if days > bounds.recent_days {
        "wandering"
    } else if purchases == 1 {
        "new"
    } else {
        "promising"
    }
}

struct Bounds {
    recent_days: i64,
    lapsing_days: i64,
    dormant_days: i64,
    frequent: i64,
}

struct RfSegment;

fn days_property(code: &str, default: i64, en: &str, ru: &str) -> Property {
    Property::integer(code).default(default).name("en", en).name("ru", ru)
}

impl Robot for RfSegment {
    const CODE: &'static str = "rf_segment";

    fn info() -> RobotInfo {
        let mut segment = Property::option("segment").name("en", "Segment").name("ru", "Сегмент");
        for (code, en, ru) in SEGMENTS {
            segment = segment.choice(Choice::new(code).name("en", en).name("ru", ru));
        }
        RobotInfo::new(Self::CODE)
            .name("en", "RF segmentation")
            .name("ru", "RF-сегментация")
            .description(
                "en",
                "Writes the client's segment from days since the last purchase and the number of purchases.",
            )
            .description(
                "ru",
                "Записывает сегмент клиента по давности последней покупки и числу покупок.",
            )
            .capability(Capability::SetFields)
            .property(
                Property::text("last_purchase_field")
                    .default("UF_LAST_PURCHASE")
                    .name("en", "Last purchase date field")
                    .name("ru", "Поле даты последней покупки"),
            )
            .property(
                Property::text("purchases_field")
                    .default("UF_PURCHASES")
                    .name("en", "Number of purchases field")
                    .name("ru", "Поле числа покупок"),
            )
            .property(
                Property::text("segment_field")
                    .default("UF_RF_SEGMENT")
                    .name("en", "Segment field")
                    .name("ru", "Поле сегмента"),
            )
            .property(days_property(
                "recent_days",
                30,
                "Recent: days at most",
                "Недавние: не более дней",
            ))
            .property(days_property(
                "lapsing_days",
                90,
                "Lapsing: days at most",
                "Уходящие: не более дней",
            ))
            .property(days_property(
                "dormant_days",
                180,
                "Dormant: days at most",
                "Спящие: не более дней",
            ))
            .property(days_property(
                "frequent",
                5,
                "Frequent: purchases at least",
                "Частые: покупок не менее",
            ))
            .returns(segment)
    }

    fn run(cx: &Context) -> Result<Returns, Failure> {
        let bounds = Bounds {
            recent_days: cx.opt_integer("recent_days")?.unwrap_or(30),
            lapsing_days: cx.opt_integer("lapsing_days")?.unwrap_or(90),
            dormant_days: cx.opt_integer("dormant_days")?.unwrap_or(180),
            frequent: cx.opt_integer("frequent")?.unwrap_or(5),
        };
        if !(bounds.recent_days < bounds.lapsing_days && bounds.lapsing_days < bounds.dormant_days) {
            return Err(Failure::bad_property(
                "lapsing_days",
                "the day bounds must grow: recent_days < lapsing_days < dormant_days",
            ));
        }
        let entity = cx.entity();
        let purchases_field = cx.opt_text("purchases_field")?.unwrap_or("UF_PURCHASES");
        let purchases = match entity.value(purchases_field)? {
            Some(Value::Integer(n)) => *n,
            None => 0,
            Some(other) => {
                return Err(Failure::new(
                    "bad_field",
                    format!(
                        "`{purchases_field}` holds {}, not a number of purchases",
                        other.value_type()
                    ),
                ));
            }
        };
        let last_field = cx.opt_text("last_purchase_field")?.unwrap_or("UF_LAST_PURCHASE");
        let last = match entity.value(last_field)? {
            Some(Value::Date(date)) => date.days_from_epoch(),
            Some(Value::Datetime(at)) => at.div_euclid(86_400_000),
            _ if purchases == 0 => {
                return Err(Failure::new(
                    "no_purchases",
                    format!("the {} has made no purchase yet, so it has no segment", entity.kind),
                ));
            }
            _ => {
                return Err(Failure::new(
                    "no_last_purchase",
                    format!("`{last_field}` holds no date of the last purchase"),
                ));
            }
        };
        let days = cx.now().div_euclid(86_400_000) - last;
        let segment = segment(days, purchases.max(1), &bounds);
        let target = cx.opt_text("segment_field")?.unwrap_or("UF_RF_SEGMENT");
        effects::set_fields(cx.this())
            .set(target, Value::Option(segment.into()))
            .apply()?;
        Ok(Returns::new().set("segment", Value::Option(segment.into())))
    }
}

robohost_sdk::export_robots!(RfSegment);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_belong_to_the_nearer_segment() {
        let b = Bounds {
            recent_days: 30,
            lapsing_days: 90,
            dormant_days: 180,
            frequent: 5,
        };
        // Each bound belongs to the nearer segment.
        let cases = [
            (0, 1, "new"),
            (30, 4, "promising"),
            (31, 4, "wandering"),
            (30, 5, "loyal"),
            (90, 5, "loyal"),
            (91, 5, "at_risk"),
            (90, 1, "wandering"),
            (180, 1, "dormant"),
            (180, 5, "at_risk"),
            (181, 50, "lost"),
        ];
        for (days, purchases, expected) in cases {
            assert_eq!(
                segment(days, purchases, &b),
                expected,
                "{days} days, {purchases} purchases"
            );
        }
    }
}
