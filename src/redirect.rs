//! Redirects, followed by our own loop rather than reqwest's policy.
//!
//! Off by default: the 3xx is returned to the caller. With `follow_redirects = true`, each hop
//! passes the origin gate, https never becomes http, a change of origin drops `Authorization`,
//! `Cookie`, `Proxy-Authorization` and every header on the redaction list (reqwest keeps custom
//! credential headers such as `X-Api-Key`), 303 (and 301/302 after a POST) becomes a body-less
//! GET, a body is re-sent on 307/308 only to the same origin, and no `Referer` is ever added.

use std::sync::atomic::AtomicBool;

use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

use crate::auth::{Credentials, Scope};
use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::gate::OriginGate;
use crate::isolation;
use crate::origins::{Origin, PerOrigin};
use crate::profile::sections::Timeouts;
use crate::redact::Redactor;
use crate::transport::{self, Timer};

/// At most this many redirects are followed for one attempt.
pub(crate) const MAX_HOPS: usize = 5;

/// One request on the wire: what a redirect may rewrite.
#[derive(Clone)]
pub(crate) struct Hop {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    /// Headers the `on_attempt` hook added (a signature): they never follow a redirect to
    /// another origin.
    pub(crate) hooked: Vec<http::HeaderName>,
}

/// What the loop needs from the client.
pub(crate) struct Wire<'a> {
    /// Asked for its client per hop, so renewed TLS files serve the next attempt.
    pub(crate) http: &'a crate::reload::Transport,
    pub(crate) gate: &'a OriginGate,
    pub(crate) redactor: &'a Redactor,
    pub(crate) timeouts: &'a Timeouts,
    pub(crate) follow: bool,
    /// The kill switch, asked again before every later hop.
    pub(crate) isolated: &'a AtomicBool,
    /// Per-origin breakers and pacing, which every later hop passes too.
    pub(crate) origins: &'a PerOrigin<Origin>,
    /// An API key in a query parameter goes on every hop its scope covers, and no other.
    pub(crate) credentials: &'a Credentials,
    pub(crate) scope: &'a Scope,
}

/// How one attempt ended, after any redirects: what its last hop got, and where that hop went.
pub(crate) struct Attempted {
    pub(crate) result: Result<reqwest::Response, Error>,
    /// The URL of the last hop when it is a later hop rather than the request as the caller
    /// sent it. Its answer (a 401 where credentials were stripped, a 429 from another origin)
    /// or its failure says nothing about the first request's credentials or origin.
    pub(crate) redirected_to: Option<Url>,
}

/// Sends `hop` and, if the profile says so, follows redirects. Errors carry the method and the
/// (redacted) URL of the hop that failed.
///
/// "Never received" is a fact about the first request only: once a hop has been answered, the
/// server has acted on the request, so a failure on a later hop is never marked never-sent.
///
/// The hop is lent, not given: the caller's future holds it once instead of handing a copy to
/// this one.
pub(crate) async fn send(wire: &Wire<'_>, hop: &mut Hop, timer: &mut Timer) -> Attempted {
    let mut hops = 0;
    loop {
        let redirected = hops > 0;
        let end = |result: Result<reqwest::Response, Error>, hop: &mut Hop| Attempted {
            result: result.map_err(|err| {
                let err = err.with_request(&hop.method, wire.redactor.url(&hop.url).to_string());
                if redirected {
                    err.maybe_received()
                } else {
                    err
                }
            }),
            redirected_to: redirected.then(|| hop.url.clone()),
        };
        if redirected && let Err(err) = admit(wire, &hop.url, timer).await {
            return end(Err(err), hop);
        }
        let mut request = reqwest::Request::new(hop.method.clone(), hop.url.clone());
        // The hop's headers are needed again only to follow a redirect.
        *request.headers_mut() = if wire.follow {
            hop.headers.clone()
        } else {
            std::mem::take(&mut hop.headers)
        };
        if let Some(body) = &hop.body {
            match body.for_attempt().await {
                Ok(body) => *request.body_mut() = Some(body),
                Err(err) => return end(Err(err), hop),
            }
        }
        let http = wire.http.client();
        let response = match transport::send(&http, request, timer, wire.timeouts).await {
            Ok(response) => response,
            Err(err) => return end(Err(err), hop),
        };
        if !wire.follow || !is_followed(response.status()) {
            return end(Ok(response), hop);
        }
        let Some(location) = response.headers().get(header::LOCATION) else {
            return end(Ok(response), hop);
        };
        hops += 1;
        if hops > MAX_HOPS {
            return end(Err(refused(format!("more than {MAX_HOPS} redirects"))), hop);
        }
        let Some(next) = location
            .to_str()
            .ok()
            .and_then(|location| hop.url.join(location).ok())
        else {
            return end(Err(refused("Location is not a valid URL".into())), hop);
        };
        let status = response.status();
        drop(response);
        if let Err(err) = next_hop(wire, hop, next, status) {
            return end(Err(err), hop);
        }
    }
}

/// Before a later hop, which is a request like any other: the kill switch, the breaker of the
/// hop's origin (failing fast when it is open) and that origin's quota and pauses, within the
/// attempt's deadline.
async fn admit(wire: &Wire<'_>, url: &Url, timer: &mut Timer) -> Result<(), Error> {
    isolation::check(wire.isolated)?;
    let origin = wire.origins.get(url);
    if let Some(breaker) = &origin.breaker {
        breaker.check()?;
    }
    origin.limiter.acquire(timer.deadline()).await?;
    // Time spent waiting for a slot is not time without data.
    timer.resume();
    Ok(())
}

fn is_followed(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn refused(detail: String) -> Error {
    Error::new(ErrorKind::Redirect).with_detail(detail)
}

/// Rewrites `hop` for a redirect to `next`, or explains why it is refused (leaving `hop` as it
/// was, so the error names the hop that was refused).
fn next_hop(wire: &Wire<'_>, hop: &mut Hop, next: Url, status: StatusCode) -> Result<(), Error> {
    if hop.url.scheme() == "https" && next.scheme() != "https" {
        return Err(refused("refused a redirect from https to http".into()));
    }
    if let Some(why) = wire.gate.refusal(&next) {
        return Err(refused(format!("Location is outside the profile: {why}")));
    }
    let same_origin = next.origin() == hop.url.origin();
    let becomes_get = status == StatusCode::SEE_OTHER && hop.method != Method::HEAD
        || matches!(status.as_u16(), 301 | 302) && hop.method == Method::POST;
    if becomes_get {
        hop.method = Method::GET;
        hop.body = None;
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
        ] {
            hop.headers.remove(name);
        }
    } else if hop.body.as_ref().is_some_and(|body| !body.can_resend()) {
        return Err(refused(
            "refused to follow a redirect that needs the streamed body again".into(),
        ));
    } else if hop.body.is_some() && !same_origin {
        return Err(refused(
            "refused to re-send the request body to another origin".into(),
        ));
    }
    if !same_origin {
        hop.url = wire.redactor.without_sensitive_params(next);
        let sensitive: Vec<_> = hop
            .headers
            .keys()
            .filter(|name| {
                matches!(
                    *name,
                    &header::AUTHORIZATION | &header::COOKIE | &header::PROXY_AUTHORIZATION
                ) || wire.redactor.is_sensitive_header(name)
            })
            .cloned()
            .collect();
        for name in sensitive.into_iter().chain(std::mem::take(&mut hop.hooked)) {
            hop.headers.remove(name);
        }
    } else {
        hop.url = next;
    }
    // A Location that dropped the query (or a hop back from another origin) still carries the
    // key where the key belongs.
    if wire.scope.covers(&hop.url) {
        wire.credentials.restore_query(&mut hop.url);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Settings;

    fn check_hop(from: &str, to: &str, status: u16, method: Method) -> Result<Hop, Error> {
        let settings = Settings {
            allow_insecure_http: true,
            allowed_hosts: Some(vec!["a.example".into(), "b.example".into()]),
            ..Settings::default()
        };
        let base = Url::parse("https://a.example").expect("url");
        let gate = OriginGate::new(&settings, &base);
        let http = crate::reload::Transport::fixed(reqwest::Client::new());
        let redactor = Redactor::default();
        let timeouts = Timeouts::default();
        let wire = Wire {
            http: &http,
            gate: &gate,
            redactor: &redactor,
            timeouts: &timeouts,
            follow: true,
            isolated: &AtomicBool::new(false),
            origins: &PerOrigin::new(&base, |name| Origin {
                labels: crate::telemetry::Labels::new("", name),
                budget: crate::retry::RetryBudget::new(20),
                breaker: None,
                limiter: crate::ratelimit::Limiter::new(name.to_owned(), None),
                outcomes: crate::health::Outcomes::new(),
                in_flight: crate::health::InFlight::new(None),
                name: name.into(),
            }),
            credentials: &Credentials::None,
            scope: &Scope::new(&base, None),
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer t".parse().expect("value"));
        let mut hop = Hop {
            method,
            url: Url::parse(from).expect("url"),
            headers,
            body: None,
            hooked: Vec::new(),
        };
        let status = StatusCode::from_u16(status).expect("status");
        next_hop(&wire, &mut hop, Url::parse(to).expect("url"), status).map(|()| hop)
    }

    #[test]
    fn https_to_http_is_refused_even_when_http_is_allowed() {
        let err = check_hop("https://a.example/", "http://a.example/x", 302, Method::GET)
            .map(drop)
            .expect_err("downgrade");
        assert!(err.is_redirect());
        assert!(err.to_string().contains("from https to http"), "{err}");
    }

    #[test]
    fn head_stays_head_on_see_other() {
        let hop = check_hop(
            "https://a.example/",
            "https://a.example/x",
            303,
            Method::HEAD,
        )
        .expect("followed");
        assert_eq!(hop.method, Method::HEAD);
    }

    #[test]
    fn same_origin_keeps_authorization_and_other_origin_loses_it() {
        let same = check_hop(
            "https://a.example/",
            "https://a.example/x",
            307,
            Method::GET,
        )
        .expect("followed");
        assert!(same.headers.contains_key(header::AUTHORIZATION));
        let other = check_hop(
            "https://a.example/",
            "https://b.example/x",
            307,
            Method::GET,
        )
        .expect("followed");
        assert!(!other.headers.contains_key(header::AUTHORIZATION));
    }
}
