//! Masking of bodies for the opt-in body log (`[log] bodies = true`).
//!
//! JSON fields on the redaction list are masked at any depth, keeping at most the last four
//! characters of values long enough to be useful for matching (`************1234`); names match
//! case-insensitively and ignoring `_` and `-`, so `accessToken`, `access_token` and
//! `Access-Token` are one name. A string anywhere that looks like a payment card number (13 to
//! 19 digits passing the Luhn check) is masked whatever its field is called. Form bodies are
//! masked like query strings. Other bodies are described, never shown.

use serde_json::Value;

/// Fields whose values are always masked, in normalized form (lowercase, no `_` or `-`).
pub(super) const SENSITIVE_JSON_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "clientsecret",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "token",
    "authorization",
    "privatekey",
    "cardnumber",
    "cardno",
    "pan",
    "cvv",
    "cvv2",
    "cvc",
    "securitycode",
    "ssn",
];

const STARS: &str = "************";

/// `accessToken`, `access_token` and `Access-Token` are one name.
pub(super) fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Masks `value` in place: sensitive fields at any depth, and card-like strings anywhere.
pub(super) fn mask_json(value: &mut Value, is_sensitive: &dyn Fn(&str) -> bool) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if is_sensitive(key) {
                    *field = masked(field);
                } else {
                    mask_json(field, is_sensitive);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                mask_json(item, is_sensitive);
            }
        }
        Value::String(text) if looks_like_card(text) => *value = Value::String(mask_text(text)),
        _ => {}
    }
}

fn masked(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(text) => Value::String(mask_text(text)),
        Value::Number(number) => Value::String(mask_text(&number.to_string())),
        _ => Value::String(STARS.to_owned()),
    }
}

/// Twelve stars, then the last four characters if at least twelve remain hidden.
fn mask_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= 16 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{STARS}{tail}")
    } else {
        STARS.to_owned()
    }
}

/// 13 to 19 digits (spaces and dashes allowed between them) that pass the Luhn check.
fn looks_like_card(text: &str) -> bool {
    if text.len() > 40
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return false;
    }
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => *d,
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(json: &str, extra: &[&str]) -> String {
        let extra: Vec<String> = extra.iter().map(|s| normalize(s)).collect();
        let sensitive = |name: &str| {
            let name = normalize(name);
            SENSITIVE_JSON_FIELDS.contains(&name.as_str()) || extra.contains(&name)
        };
        let mut value: Value = serde_json::from_str(json).expect("json");
        mask_json(&mut value, &sensitive);
        value.to_string()
    }

    #[test]
    fn sensitive_fields_are_masked_at_any_depth_keeping_four_characters() {
        let shown = mask(
            r#"{"user":{"name":"ada","password":"correct-horse-battery-staple"},
                "items":[{"accessToken":"tok-canary-000000001234"}],"amount":10}"#,
            &[],
        );
        assert!(
            shown.contains(r#""password":"************aple""#),
            "{shown}"
        );
        assert!(
            shown.contains(r#""accessToken":"************1234""#),
            "{shown}"
        );
        assert!(
            shown.contains(r#""name":"ada""#) && shown.contains(r#""amount":10"#),
            "{shown}"
        );
        assert!(!shown.contains("correct-horse"), "{shown}");
    }

    #[test]
    fn short_values_numbers_and_objects_are_masked_whole() {
        let shown = mask(
            r#"{"pin":"1234","cvv":123,"secret":{"nested":"x"},"token":null}"#,
            &["pin"],
        );
        assert_eq!(
            shown,
            r#"{"cvv":"************","pin":"************","secret":"************","token":null}"#
        );
    }

    #[test]
    fn card_numbers_are_masked_whatever_the_field() {
        let shown = mask(
            r#"{"note":"4111 1111 1111 1111","ref":"4111111111111112"}"#,
            &[],
        );
        assert!(shown.contains(r#""note":"************1111""#), "{shown}");
        assert!(
            shown.contains("4111111111111112"),
            "a non-Luhn number is kept: {shown}"
        );
    }
}
