//! Parsers of single values (durations, URLs, header names), for the serde types of
//! [`super::sections`]: a value is parsed where it is read, so a bad one is refused naming its key.

use std::time::Duration;

use http::HeaderName;
use serde::{Deserialize, Deserializer, Serializer};
use url::Url;

/// Durations are humantime strings (`"250ms"`, `"3s"`, `"1m 30s"`). The error quotes the value,
/// which is never a secret, so a typo is easy to find.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(crate) fn serialize_opt<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserialize(d).map(Some)
    }

    /// humantime's syntax, except that a number must touch its unit: `"3 s"` is more likely a
    /// typo than a style, and the error says so.
    pub(crate) fn parse(text: &str) -> Result<Duration, String> {
        let spaced = text
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_whitespace());
        if spaced {
            return Err(format!(
                "invalid duration {text:?} (write the unit right after the number, as in \"3s\")"
            ));
        }
        humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?} ({e})"))
    }
}

/// URLs are parsed here; the rules about them (scheme, credentials) are in `validate`. The error
/// never echoes the text: it may hold credentials.
pub(crate) fn deserialize_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let text = String::deserialize(d)?;
    Url::parse(&text).map_err(|e| serde::de::Error::custom(format!("invalid URL ({e})")))
}

/// A header name, parsed where it is read so that a bad one is refused with its key.
pub(crate) fn parse_header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(text.as_bytes())
        .map_err(|_| format!("{text:?} is not a valid header name"))
}

pub(super) fn deserialize_header_name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<HeaderName, D::Error> {
    parse_header_name(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

pub(super) fn deserialize_header_names<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<HeaderName>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| parse_header_name(name).map_err(serde::de::Error::custom))
        .collect()
}

pub(super) fn deserialize_opt_header_name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<HeaderName>, D::Error> {
    deserialize_header_name(d).map(Some)
}

/// `auth.header`. Inside `[auth]` (an enum chosen by `type`) the error path stops at `auth`, so
/// the message names its own key.
pub(super) fn deserialize_auth_header<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<HeaderName>, D::Error> {
    parse_header_name(&String::deserialize(d)?)
        .map(Some)
        .map_err(|problem| serde::de::Error::custom(format!("auth.header: {problem}")))
}

pub(super) fn deserialize_opt_url<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Url>, D::Error> {
    deserialize_url(d).map(Some)
}

/// A URL as the profile checker shows it: masked like every URL this crate prints, since a proxy
/// or Redis URL may hold a password.
pub(super) fn serialize_url<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::redact::Redactor::default().url(url))
}

pub(super) fn serialize_opt_url<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serialize_url(url, s),
        None => s.serialize_none(),
    }
}

pub(super) fn serialize_header_name<S: Serializer>(
    name: &HeaderName,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

pub(super) fn serialize_opt_header_name<S: Serializer>(
    name: &Option<HeaderName>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match name {
        Some(name) => s.serialize_str(name.as_str()),
        None => s.serialize_none(),
    }
}

pub(super) fn serialize_header_names<S: Serializer>(
    names: &[HeaderName],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(names.iter().map(HeaderName::as_str))
}

/// The keys of a map, each value masked.
pub(super) fn serialize_masked_values<S: Serializer>(
    map: &std::collections::BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.keys().map(|k| (k, crate::redact::MASK)))
}
