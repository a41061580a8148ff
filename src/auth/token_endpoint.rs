//! One OAuth 2.0 client-credentials token request (RFC 6749 §4.4), built by the `oauth2` crate
//! and sent over the client's own reqwest transport, so the profile's TLS settings, proxy and
//! time limits apply, redirects are never followed, and the response body is bounded.
//!
//! Every failure becomes an `is_auth()` error that names the cause in our own words. Neither the
//! client secret, nor the token, nor the response body ever reaches an error or a log: `oauth2`'s
//! parse errors (which carry the body) are reduced to the JSON path and the kind of problem.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use url::Url;

use crate::error::{Error, ErrorKind};
use crate::profile::sections::{AuthMethod, Timeouts};
use crate::redact::{Redactor, printable};
use crate::transport::{self, BodyLimit, Deadline, Limit, Timer};

/// A token response larger than this is refused: real ones are a few hundred bytes.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 64 * 1024;

/// Where and how to ask for tokens.
pub(crate) struct TokenEndpoint {
    pub(crate) http: std::sync::Arc<crate::reload::Transport>,
    pub(crate) url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: super::RotatingSecret,
    pub(crate) method: AuthMethod,
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) extra_params: BTreeMap<String, String>,
    pub(crate) timeouts: Timeouts,
}

/// A token as issued, before the cache dates it.
pub(crate) struct Issued {
    pub(crate) access_token: SecretString,
    /// `expires_in`, when the server sent it.
    pub(crate) lifetime: Option<Duration>,
}

/// Why a token request failed: our own words, safe to show, plus the endpoint's status.
#[derive(Debug, Clone)]
pub(crate) struct TokenFailure {
    pub(crate) cause: String,
    pub(crate) status: Option<StatusCode>,
}

impl TokenFailure {
    fn new(cause: impl Into<String>, status: Option<StatusCode>) -> TokenFailure {
        TokenFailure {
            cause: cause.into(),
            status,
        }
    }

    /// The error a waiting call gets.
    pub(crate) fn to_error(&self) -> Error {
        let err = Error::new(ErrorKind::Auth).with_detail(self.cause.clone());
        match self.status {
            Some(status) => err.with_status(status),
            None => err,
        }
    }
}

impl TokenEndpoint {
    /// Asks for a new token.
    pub(crate) async fn fetch(&self) -> Result<Issued, TokenFailure> {
        let deadline = Deadline {
            at: transport::later(Instant::now(), self.timeouts.attempt()),
            limit: Limit::Attempt(self.timeouts.attempt()),
        };
        let status = Mutex::new(None);
        let exchange = Exchange {
            endpoint: self,
            deadline,
            status: &status,
        };
        self.fetch_via(&exchange, &status).await
    }

    /// Asks for a token through `exchange`, which records the HTTP status in `status`. The
    /// fuzz target drives this with canned responses, so it checks exactly the production path.
    pub(crate) async fn fetch_via<C>(
        &self,
        exchange: &C,
        status: &Mutex<Option<StatusCode>>,
    ) -> Result<Issued, TokenFailure>
    where
        C: for<'c> oauth2::AsyncHttpClient<'c, Error = Error>,
    {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(
                self.client_secret
                    .with(|secret| ClientSecret::new(secret.expose_secret().to_owned())),
            )
            .set_token_uri(TokenUrl::from_url(self.url.clone()))
            .set_auth_type(match self.method {
                AuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                AuthMethod::ClientSecretPost => AuthType::RequestBody,
            });
        let mut request = client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        if let Some(audience) = &self.audience {
            request = request.add_extra_param("audience", audience.clone());
        }
        for (name, value) in &self.extra_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }

        let result = request.request_async(exchange).await;
        let status = *status.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(response) => validate(&response, status),
            Err(err) => Err(describe(err, status)),
        }
    }

    /// Sends one token request on our transport and reads its bounded body.
    async fn exchange(
        &self,
        request: oauth2::HttpRequest,
        deadline: Deadline,
        status: &Mutex<Option<StatusCode>>,
    ) -> Result<oauth2::HttpResponse, Error> {
        let mut request = reqwest::Request::try_from(request).map_err(|_| {
            Error::new(ErrorKind::Auth).with_detail("token request could not be built")
        })?;
        for (name, value) in request.headers_mut().iter_mut() {
            if name == http::header::AUTHORIZATION {
                value.set_sensitive(true);
            }
        }
        let mut timer = Timer::new(deadline, self.timeouts.read, Instant::now());
        let http = self.http.client();
        let mut response = transport::send(&http, request, &mut timer, &self.timeouts).await?;
        *status.lock().unwrap_or_else(PoisonError::into_inner) = Some(response.status());
        let mut answer = http::Response::builder().status(response.status());
        if let Some(content_type) = response.headers().get(http::header::CONTENT_TYPE) {
            answer = answer.header(http::header::CONTENT_TYPE, content_type.clone());
        }
        let limit = BodyLimit {
            max: MAX_TOKEN_RESPONSE_BYTES,
            key: "the token response limit",
        };
        let body = transport::read_body(&mut response, limit, &mut timer, &self.timeouts).await?;
        answer.body(body.to_vec()).map_err(|_| {
            Error::new(ErrorKind::Auth).with_detail("token response could not be read")
        })
    }

    /// An endpoint that is never called, for driving [`fetch_via`](Self::fetch_via) with canned
    /// responses.
    pub(crate) fn probe() -> TokenEndpoint {
        TokenEndpoint {
            http: crate::reload::Transport::fixed(reqwest::Client::new()),
            url: Url::parse("https://auth.probe.invalid/token").expect("a valid literal URL"),
            client_id: "probe".into(),
            client_secret: super::RotatingSecret::fixed(SecretString::from("probe-secret")),
            method: AuthMethod::ClientSecretBasic,
            scopes: Vec::new(),
            audience: None,
            extra_params: BTreeMap::new(),
            timeouts: Timeouts::default(),
        }
    }

    /// The endpoint for messages, redacted like every URL.
    pub(crate) fn shown_url(&self) -> String {
        Redactor::default().url(&self.url).to_string()
    }
}

/// Drives `oauth2` over our transport. A struct rather than a closure so the future is `Send`
/// for every borrow, as a background refresh needs.
struct Exchange<'a> {
    endpoint: &'a TokenEndpoint,
    deadline: Deadline,
    status: &'a Mutex<Option<StatusCode>>,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Exchange<'_> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.endpoint.exchange(request, self.deadline, self.status))
    }
}

/// RFC 6749 §5.1: a bearer token with, if given, a positive lifetime.
fn validate(
    response: &BasicTokenResponse,
    status: Option<StatusCode>,
) -> Result<Issued, TokenFailure> {
    let token_type = response.token_type().as_ref();
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenFailure::new(
            format!(
                "token response has token_type \"{}\"; only bearer tokens are supported",
                printable(token_type)
            ),
            status,
        ));
    }
    if response.access_token().secret().is_empty() {
        return Err(TokenFailure::new(
            "token response has an empty access_token",
            status,
        ));
    }
    let lifetime = response.expires_in();
    if lifetime == Some(Duration::ZERO) {
        return Err(TokenFailure::new(
            "token response has expires_in 0; it must be positive",
            status,
        ));
    }
    Ok(Issued {
        access_token: SecretString::from(response.access_token().secret().clone()),
        lifetime,
    })
}

/// Names the cause of a failed token request without the body, the token or the secret.
fn describe(
    err: RequestTokenError<Error, BasicErrorResponse>,
    status: Option<StatusCode>,
) -> TokenFailure {
    if let Some(code) = status
        && code.is_redirection()
    {
        return TokenFailure::new(
            format!(
                "token endpoint answered {} (a redirect); token requests never follow redirects",
                code.as_u16()
            ),
            status,
        );
    }
    let shown =
        |code: Option<StatusCode>| code.map_or(String::new(), |c| format!(" {}", c.as_u16()));
    match err {
        RequestTokenError::ServerResponse(response) => {
            let mut cause = format!(
                "token endpoint refused the request: {}",
                printable(response.error().as_ref())
            );
            if let Some(description) = response.error_description() {
                cause.push_str(&format!(" ({})", printable(description)));
            }
            TokenFailure::new(cause, status)
        }
        RequestTokenError::Request(err) => {
            TokenFailure::new(format!("token request failed: {err}"), status)
        }
        RequestTokenError::Parse(err, _body) => {
            let path = printable(&err.path().to_string());
            let inner = err.inner();
            let cause = match (status, inner.classify()) {
                (Some(code), _) if code != StatusCode::OK => format!(
                    "token endpoint answered{} without an OAuth error response",
                    shown(Some(code))
                ),
                (_, serde_json::error::Category::Syntax | serde_json::error::Category::Eof) => {
                    format!(
                        "token response is not valid JSON (line {}, column {})",
                        inner.line(),
                        inner.column()
                    )
                }
                // serde's "missing field `x`" names the field only.
                (_, _) if path == "." && inner.to_string().starts_with("missing field") => {
                    let message = inner.to_string();
                    let field = message.split('`').nth(1).unwrap_or("a required field");
                    format!("token response is missing `{field}`")
                }
                (_, _) if path == "." => "token response is not a JSON object".to_owned(),
                (_, _) => format!("token response field `{path}` has an invalid value"),
            };
            TokenFailure::new(cause, status)
        }
        RequestTokenError::Other(message) => {
            // oauth2's own words: an empty body, or a non-JSON content type (an HTML page).
            TokenFailure::new(
                format!(
                    "token endpoint answered{}: {}",
                    shown(status),
                    printable(&message)
                ),
                status,
            )
        }
    }
}
