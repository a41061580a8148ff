//! Step 1 of every attempt (and every redirect hop): where a request may go.
//!
//! Only `https` (plain `http` only with `allow_insecure_http`), only hosts in `allowed_hosts`
//! (default: `base_url`'s host), and never a URL carrying credentials. A refusal happens before
//! any I/O, so a mistaken or attacker-influenced absolute URL cannot reach another host (SSRF) or
//! travel in clear text.

use url::Url;

use crate::error::Error;
use crate::profile::Settings;

/// The profile's rules for destinations.
#[derive(Debug, Clone)]
pub(crate) struct OriginGate {
    /// Lowercase, without a trailing dot.
    allowed_hosts: Vec<String>,
    allow_insecure_http: bool,
}

impl OriginGate {
    /// The gate for validated `settings`.
    pub(crate) fn new(settings: &Settings, base_url: &Url) -> Self {
        let hosts = match &settings.allowed_hosts {
            Some(hosts) => hosts.iter().map(|h| normalize(h)).collect(),
            None => vec![normalize(base_url.host_str().unwrap_or_default())],
        };
        OriginGate {
            allowed_hosts: hosts,
            allow_insecure_http: settings.allow_insecure_http,
        }
    }

    /// Whether `url` may be requested. The error never quotes the URL itself.
    pub(crate) fn check(&self, url: &Url) -> Result<(), Error> {
        match self.refusal(url) {
            Some(why) => Err(Error::disallowed(why)),
            None => Ok(()),
        }
    }

    /// Why `url` may not be requested, if it may not.
    pub(crate) fn refusal(&self, url: &Url) -> Option<String> {
        if !url.username().is_empty() || url.password().is_some() {
            return Some("URL must not contain credentials".into());
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {}
            "http" => {
                return Some(
                    "http:// is refused unless the profile sets allow_insecure_http = true".into(),
                );
            }
            other => return Some(format!("scheme {other:?} is not allowed; only https")),
        }
        let host = host_of(url);
        if !self.allowed_hosts.iter().any(|allowed| allowed == host) {
            return Some(format!("host {host:?} is not in allowed_hosts"));
        }
        None
    }
}

/// `url`'s host as every per-origin rule compares it: the url crate lowercases the host of
/// http(s) URLs, so only a trailing dot (`api.example.`, the same host) can differ.
pub(crate) fn host_of(url: &Url) -> &str {
    url.host_str().unwrap_or_default().trim_end_matches('.')
}

/// Two URLs of one origin: scheme, host (as [`host_of`] compares it) and port. The one rule
/// behind per-origin state, credential scope and the confinement of relative paths.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    // The same text up to the path is the same scheme, host and port: the common case, asked
    // several times per call, settled by one comparison.
    a[..url::Position::BeforePath] == b[..url::Position::BeforePath]
        || a.scheme() == b.scheme()
            && host_of(a) == host_of(b)
            && a.port_or_known_default() == b.port_or_known_default()
}

/// A host name as written in a profile (`allowed_hosts`, `auth.hosts`), as [`host_of`] gives it.
pub(crate) fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(insecure: bool, hosts: Option<&[&str]>) -> OriginGate {
        let settings = Settings {
            allow_insecure_http: insecure,
            allowed_hosts: hosts.map(|h| h.iter().map(|s| s.to_string()).collect()),
            ..Settings::default()
        };
        let base = Url::parse("https://api.example").expect("valid");
        OriginGate::new(&settings, &base)
    }

    fn check(gate: &OriginGate, url: &str) -> Result<(), Error> {
        gate.check(&Url::parse(url).expect("valid"))
    }

    #[test]
    fn base_host_is_the_default_allow_list() {
        let g = gate(false, None);
        assert!(check(&g, "https://API.example./v1").is_ok());
        assert!(check(&g, "https://api.example:8443/v1").is_ok());
        let err = check(&g, "https://evil.example/").unwrap_err();
        assert!(err.is_disallowed() && err.to_string().contains("evil.example"));
        assert!(
            check(&g, "https://sub.api.example/")
                .unwrap_err()
                .is_disallowed()
        );
    }

    #[test]
    fn http_needs_the_opt_in() {
        assert!(
            check(&gate(false, None), "http://api.example/")
                .unwrap_err()
                .is_disallowed()
        );
        assert!(check(&gate(true, None), "http://api.example/").is_ok());
        assert!(
            check(&gate(true, None), "ftp://api.example/")
                .unwrap_err()
                .is_disallowed()
        );
    }

    #[test]
    fn userinfo_is_refused_without_being_quoted() {
        let err = check(&gate(false, None), "https://u:hunter2@api.example/").unwrap_err();
        assert!(err.is_disallowed());
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }

    #[test]
    fn explicit_allow_list_replaces_the_default() {
        let g = gate(false, Some(&["api.example", "files.example"]));
        assert!(check(&g, "https://files.example/x").is_ok());
        assert!(check(&g, "https://other.example/x").is_err());
    }
}
