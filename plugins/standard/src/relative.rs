//! Relative times in time properties, as an admin writes them: "in 15
//! minutes", "in 2 hours", "in 3 days", "in 1 week", "in 2 working days",
//! "in 4 working hours", and in Russian "через 15 минут", "через 2
//! рабочих дня". Counted from the run; working ones by the portal's
//! calendar (the `calendar` host interface).

/// What a relative time counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    /// The same time of day that many working days later.
    WorkingDays,
    /// That much working time later.
    WorkingHours,
}

/// The most of any unit: ten years of minutes, so arithmetic on
/// milliseconds never overflows.
const MAX_AMOUNT: i64 = 10 * 366 * 24 * 60;

/// The amount and unit of a relative time, or `None` when `text` is not one.
pub fn parse(text: &str) -> Option<(i64, Unit)> {
    let lower = text.trim().to_lowercase();
    let rest = lower
        .strip_prefix("in ")
        .or_else(|| lower.strip_prefix("через "))?
        .trim_start();
    let (amount, unit) = rest.split_once(char::is_whitespace)?;
    let amount: i64 = amount.parse().ok().filter(|a| (1..=MAX_AMOUNT).contains(a))?;
    let words: Vec<&str> = unit.split_whitespace().collect();
    let is = |word: &str, stems: &[&str]| stems.iter().any(|s| word.starts_with(s));
    let day = ["day", "дн", "ден", "день"];
    let hour = ["hour", "час"];
    let unit = match words.as_slice() {
        [w] if is(w, &["min", "мин"]) => Unit::Minutes,
        [w] if is(w, &hour) => Unit::Hours,
        [w] if is(w, &day) => Unit::Days,
        [w] if is(w, &["week", "недел"]) => Unit::Weeks,
        [working, w] if is(working, &["working", "business", "рабоч"]) && is(w, &day) => Unit::WorkingDays,
        [working, w] if is(working, &["working", "business", "рабоч"]) && is(w, &hour) => Unit::WorkingHours,
        _ => return None,
    };
    Some((amount, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_in_english_and_russian() {
        for (text, expected) in [
            ("in 15 minutes", Some((15, Unit::Minutes))),
            ("in 1 minute", Some((1, Unit::Minutes))),
            ("  In 2 Hours ", Some((2, Unit::Hours))),
            ("in 3 days", Some((3, Unit::Days))),
            ("in 1 week", Some((1, Unit::Weeks))),
            ("in 2 working days", Some((2, Unit::WorkingDays))),
            ("in 1 business day", Some((1, Unit::WorkingDays))),
            ("in 4 working hours", Some((4, Unit::WorkingHours))),
            ("через 15 минут", Some((15, Unit::Minutes))),
            ("через 2 часа", Some((2, Unit::Hours))),
            ("через 1 день", Some((1, Unit::Days))),
            ("через 5 дней", Some((5, Unit::Days))),
            ("через 2 рабочих дня", Some((2, Unit::WorkingDays))),
            ("in 0 minutes", None),
            ("in -1 days", None),
            ("in two days", None),
            ("in 2 fortnights", None),
            ("2 days", None),
            ("in 99999999 minutes", None),
            ("tomorrow", None),
        ] {
            assert_eq!(parse(text), expected, "{text}");
        }
    }
}
