//! How a lookup ("the contact whose PHONE is ...") compares a field's value
//! with the value a hit gives. Outside services spell contacts' details
//! their own way, so phone numbers compare by their digits and email
//! addresses without regard to case; any other field compares exactly.

use super::value::Value;

/// How a field's values compare in a lookup, by its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// `PHONE` or a code ending in `_PHONE`: by digits.
    Phone,
    /// `EMAIL` or a code ending in `_EMAIL`: case-insensitively.
    Email,
    Exact,
}

impl Matching {
    pub fn of(code: &str) -> Matching {
        if code == "PHONE" || code.ends_with("_PHONE") {
            Matching::Phone
        } else if code == "EMAIL" || code.ends_with("_EMAIL") {
            Matching::Email
        } else {
            Matching::Exact
        }
    }

    /// Whether a stored value is the one looked for.
    pub fn same(self, stored: &Value, wanted: &Value) -> bool {
        match (self, stored, wanted) {
            (Matching::Phone, Value::Text(a), Value::Text(b)) => {
                phone_digits(a).is_some_and(|a| phone_digits(b).is_some_and(|b| a == b))
            }
            (Matching::Email, Value::Text(a), Value::Text(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
            _ => stored == wanted,
        }
    }
}

/// A phone number's digits, with a Russian number dialled nationally (11
/// digits starting with `8`, no `+`) written internationally (`7...`), so
/// `8 (912) 345-67-89` and `+7 912 345 67 89` are one number. `None` for a
/// text with fewer than 5 digits: not a number to find anyone by.
pub fn phone_digits(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return None;
    }
    if digits.len() == 11 && digits.starts_with('8') && !text.trim_start().starts_with('+') {
        return Some(format!("7{}", &digits[1..]));
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn phone_numbers_compare_by_their_digits() {
        let phone = Matching::of("PHONE");
        assert_eq!(phone, Matching::Phone);
        assert_eq!(Matching::of("UF_WORK_PHONE"), Matching::Phone);
        for spelling in ["+7 912 345-67-89", "8 (912) 345-67-89", "79123456789", "+7(912)3456789"] {
            assert!(phone.same(&text(spelling), &text("+79123456789")), "{spelling}");
        }
        assert!(!phone.same(&text("+7 912 345-67-80"), &text("+79123456789")));
        // `+8...` is another country's number, not a national Russian one.
        assert!(!phone.same(&text("+8 912 345-67-89"), &text("+79123456789")));
        assert!(
            !phone.same(&text("ext. 12"), &text("12")),
            "too few digits to be a number"
        );
    }

    #[test]
    fn emails_compare_without_case_and_other_fields_exactly() {
        let email = Matching::of("EMAIL");
        assert!(email.same(&text("Ivan@Example.COM "), &text("ivan@example.com")));
        assert!(!email.same(&text("ivan@example.org"), &text("ivan@example.com")));
        let exact = Matching::of("TITLE");
        assert_eq!(exact, Matching::Exact);
        assert!(!exact.same(&text("Pumps"), &text("pumps")));
        assert!(exact.same(&Value::Integer(7), &Value::Integer(7)));
    }
}
