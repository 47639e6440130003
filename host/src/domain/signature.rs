//! Signed inbound calls, in the scheme Stripe's webhooks made familiar: the
//! sender puts `Robohost-Signature: t=<unix seconds>,v1=<hex>` on each
//! call, where the hex is HMAC-SHA256, keyed with the endpoint's secret, of
//! `<t>.<body>`. Signing the time with the body lets the host refuse a
//! captured call replayed later; several `v1` are allowed, so a sender can
//! sign with an old and a new secret while the secret is rotated.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::inbound::SignatureCheck;

/// The header a signed call carries its signature in (lower case, as
/// [`super::InboundCall`] keeps header names).
pub const SIGNATURE_HEADER: &str = "robohost-signature";

/// How far a signature's time may be from the host's clock, in seconds.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body).finalize().into_bytes()))
}

/// Checks a call's signature header against `secret`, at `now` (unix
/// seconds). The comparison takes the same time whatever the bytes.
pub fn check_signature(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> SignatureCheck {
    let Some(header) = header else {
        return SignatureCheck::Missing;
    };
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => match hex::decode(value) {
                Ok(bytes) => signatures.push(bytes),
                Err(_) => return SignatureCheck::Malformed,
            },
            // Other schemes a sender adds (v0...) are not ours to check.
            Some(_) => {}
            None => return SignatureCheck::Malformed,
        }
    }
    let Some(t) = t else {
        return SignatureCheck::Malformed;
    };
    if signatures.is_empty() {
        return SignatureCheck::Malformed;
    }
    let skew = now.saturating_sub(t);
    if skew.abs() > SIGNATURE_TOLERANCE_S {
        return SignatureCheck::Stale {
            skew_s: skew,
            tolerance_s: SIGNATURE_TOLERANCE_S,
        };
    }
    let expected = mac(secret, t, body);
    if signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000;

    fn check(header: &str, body: &[u8]) -> SignatureCheck {
        check_signature("whsec_test", Some(header), body, NOW)
    }

    #[test]
    fn a_signature_made_with_the_secret_holds() {
        assert_eq!(check(&sign("whsec_test", NOW, b"{}"), b"{}"), SignatureCheck::Valid);
        // Within the tolerance either way.
        assert_eq!(
            check(&sign("whsec_test", NOW - 299, b"{}"), b"{}"),
            SignatureCheck::Valid
        );
        assert_eq!(
            check(&sign("whsec_test", NOW + 299, b"{}"), b"{}"),
            SignatureCheck::Valid
        );
    }

    #[test]
    fn a_known_vector_matches() {
        // printf '1764000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign("whsec_test", NOW, br#"{"a":1}"#),
            "t=1764000000,v1=c862972147a4361237a5bcb4f74195e2e5d448641115622fe658a65985c5ae8c"
        );
    }

    #[test]
    fn another_body_secret_or_time_does_not_hold() {
        let signed = sign("whsec_test", NOW, b"{}");
        assert_eq!(check(&signed, b"{ }"), SignatureCheck::Mismatch);
        assert_eq!(check(&sign("other", NOW, b"{}"), b"{}"), SignatureCheck::Mismatch);
        // The time is part of what is signed.
        let moved = signed.replace(&format!("t={NOW}"), &format!("t={}", NOW - 1));
        assert_eq!(check(&moved, b"{}"), SignatureCheck::Mismatch);
    }

    #[test]
    fn an_old_or_future_signature_is_stale() {
        let stale = SignatureCheck::Stale {
            skew_s: 301,
            tolerance_s: 300,
        };
        assert_eq!(check(&sign("whsec_test", NOW - 301, b"{}"), b"{}"), stale);
        let ahead = SignatureCheck::Stale {
            skew_s: -400,
            tolerance_s: 300,
        };
        assert_eq!(check(&sign("whsec_test", NOW + 400, b"{}"), b"{}"), ahead);
    }

    #[test]
    fn any_of_several_signatures_may_hold() {
        let new = sign("whsec_test", NOW, b"{}");
        let old = sign("whsec_old", NOW, b"{}");
        let both = format!("{old},{}", new.split_once(',').unwrap().1);
        assert_eq!(check(&both, b"{}"), SignatureCheck::Valid);
    }

    #[test]
    fn a_header_not_in_the_scheme_is_malformed() {
        assert_eq!(check_signature("s", None, b"", NOW), SignatureCheck::Missing);
        for header in [
            "",
            "v1=00",
            &format!("t={NOW}"),
            &format!("t={NOW},v1=zz"),
            "garbage",
            "t=soon,v1=00",
        ] {
            assert_eq!(check(header, b""), SignatureCheck::Malformed, "{header}");
        }
    }
}
