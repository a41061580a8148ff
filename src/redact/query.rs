//! Query strings and URL references: masking them for display, and dropping sensitive
//! parameters from a URL that is about to go to another origin.

use std::fmt;

use url::Url;

use super::{MASK, Redactor};

impl Redactor {
    /// A `Display` of a query string (or form body) with sensitive values masked.
    pub(super) fn query<'a>(&'a self, query: &'a str) -> RedactedQuery<'a> {
        RedactedQuery {
            query,
            redactor: self,
        }
    }

    /// `url` without the query parameters on the redaction list (which include an `api_key`
    /// profile's credential parameter): for a hop to another origin, so a server that copies
    /// them into a `Location` cannot make us deliver them there.
    pub(crate) fn without_sensitive_params(&self, mut url: Url) -> Url {
        let Some(query) = url.query() else {
            return url;
        };
        // Every other pair is kept as written, with the separator that came before it, so a
        // server that reads `;` literally sees the same query minus the dropped pairs.
        let mut kept = String::with_capacity(query.len());
        let mut before = "";
        let mut dropped = false;
        for (pair, separator) in pairs(query) {
            if !pair.is_empty() && self.is_sensitive_pair(pair) {
                dropped = true;
            } else {
                if !kept.is_empty() {
                    kept.push_str(before);
                }
                kept.push_str(pair);
            }
            before = separator;
        }
        if dropped {
            url.set_query((!kept.is_empty()).then_some(kept.as_str()));
        }
        url
    }

    /// Whether one `name=value` pair names a parameter on the redaction list, compared as a
    /// server decodes it (so `api%5Fkey` is caught like `api_key`).
    fn is_sensitive_pair(&self, pair: &str) -> bool {
        let raw_name = pair.split_once('=').map_or(pair, |(name, _)| name);
        let name = url::form_urlencoded::parse(raw_name.as_bytes())
            .next()
            .map(|(name, _)| name.into_owned())
            .unwrap_or_default();
        self.is_sensitive_param(&name)
    }

    /// A `Display` of a URL reference such as a `Location` value, which may be relative.
    pub(crate) fn reference<'a>(&'a self, text: &'a str) -> RedactedReference<'a> {
        RedactedReference {
            text,
            redactor: self,
        }
    }
}

/// A query string that shows itself with sensitive values masked.
pub(super) struct RedactedQuery<'a> {
    query: &'a str,
    redactor: &'a Redactor,
}

impl fmt::Display for RedactedQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pair, separator) in pairs(self.query) {
            if self.redactor.is_sensitive_pair(pair) {
                let raw_name = pair.split_once('=').map_or(pair, |(name, _)| name);
                write!(f, "{raw_name}={MASK}")?;
            } else {
                f.write_str(pair)?;
            }
            f.write_str(separator)?;
        }
        Ok(())
    }
}

/// The `name=value` pairs of a query, each with the separator that follows it (empty for the
/// last). Both `&` and `;` separate pairs: servers that read `;` (the HTML 4 recommendation,
/// many frameworks) would see a parameter we did not mask.
fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = query;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (pair, separator, tail) = match rest.find(['&', ';']) {
            Some(i) => (&rest[..i], &rest[i..=i], &rest[i + 1..]),
            None => (rest, "", ""),
        };
        rest = tail;
        Some((pair, separator))
    })
}

/// A URL reference (absolute or relative, as in `Location`) with its userinfo, sensitive query
/// values and fragment masked.
pub(crate) struct RedactedReference<'a> {
    text: &'a str,
    redactor: &'a Redactor,
}

impl fmt::Display for RedactedReference<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Ok(url) = Url::parse(self.text) {
            return write!(f, "{}", self.redactor.url(&url));
        }
        // Scheme-relative (`//user:pw@host/…`): parsed with a scheme so its userinfo is masked
        // like an absolute URL's, then shown without it.
        if let Some(rest) = self.text.trim_start().strip_prefix("//")
            && let Ok(url) = Url::parse(&format!("https://{rest}"))
        {
            let shown = self.redactor.url(&url).to_string();
            return f.write_str(shown.strip_prefix("https:").unwrap_or(&shown));
        }
        let (reference, fragment) = match self.text.split_once('#') {
            Some((reference, _)) => (reference, true),
            None => (self.text, false),
        };
        match reference.split_once('?') {
            Some((path, query)) => write!(f, "{path}?{}", self.redactor.query(query))?,
            None => f.write_str(reference)?,
        }
        if fragment {
            write!(f, "#{MASK}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-7f3a9";

    fn show(url: &str) -> String {
        let url = Url::parse(url).expect("test URL parses");
        Redactor::default().url(&url).to_string()
    }

    #[test]
    fn semicolon_separated_params_are_masked_like_ampersand_separated_ones() {
        assert_eq!(
            show(&format!(
                "https://api.example/v1?page=2;api_key={CANARY};sig={CANARY}"
            )),
            "https://api.example/v1?page=2;api_key=REDACTED;sig=REDACTED"
        );
    }

    #[test]
    fn credential_params_are_dropped_for_another_origin() {
        let redactor = Redactor::new(&[], &["partner_key".into()], &[]);
        let url = Url::parse(&format!(
            "https://b.example/x?partner_key={CANARY}&keep=1;Api%5FKey={CANARY}&page=2"
        ))
        .expect("url");
        let kept = redactor.without_sensitive_params(url);
        assert_eq!(kept.as_str(), "https://b.example/x?keep=1&page=2");
        let url = Url::parse(&format!("https://b.example/x?f=a;b&sig={CANARY}&g=1")).expect("url");
        assert_eq!(
            redactor.without_sensitive_params(url).as_str(),
            "https://b.example/x?f=a;b&g=1"
        );
        let bare = Url::parse(&format!("https://b.example/x?sig={CANARY}")).expect("url");
        assert_eq!(
            redactor.without_sensitive_params(bare).as_str(),
            "https://b.example/x"
        );
    }
}
