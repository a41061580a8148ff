//! Step 5: the wire. Builds the one `reqwest::Client` of an `outbound::Client`, sends one hop
//! under a deadline, and maps `reqwest::Error` to an [`ErrorKind`] (the only place that reads
//! reqwest's error predicates).
//!
//! Time limits, from the innermost out: `timeouts.connect` (TCP + TLS handshake) is enforced by
//! reqwest; `timeouts.read` (no response head or body chunk for that long), the attempt deadline
//! (`min(timeouts.attempt, time left)`) and the call's total deadline are ours, kept by one
//! [`Timer`] per attempt that also bounds reading the body. reqwest's own read timeout would
//! add two more timers to every request.

use std::fmt;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind};
use crate::profile::sections::{Proxy, Timeouts, TlsVersion};
use crate::profile::{ConfigError, Settings};

/// Idle pooled connections are dropped before common server keep-alive limits (60 s and up), so
/// a request is rarely written to a connection the server is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const POOL_MAX_IDLE_PER_HOST: usize = 64;
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Builds the transport for validated settings of `profile`.
pub(crate) fn build(profile: &str, s: &Settings) -> Result<reqwest::Client, Error> {
    let t = &s.timeouts;
    let mut builder = reqwest::Client::builder()
        .user_agent(crate::profile::user_agent(profile))
        // Our own redirect loop applies the origin gate and strips credentials on every hop.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .https_only(!s.allow_insecure_http)
        .connect_timeout(t.connect)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .tcp_keepalive(TCP_KEEPALIVE)
        .gzip(true)
        .tls_backend_rustls()
        .tls_version_min(match s.tls.min_version {
            TlsVersion::Tls12 => reqwest::tls::Version::TLS_1_2,
            TlsVersion::Tls13 => reqwest::tls::Version::TLS_1_3,
        });
    builder = match &s.proxy {
        Proxy::System => builder,
        Proxy::None => builder.no_proxy(),
        Proxy::Url(url) => {
            let proxy = reqwest::Proxy::all(url.as_str()).map_err(|_| {
                Error::config(ConfigError::new(profile, "proxy", "invalid proxy URL"))
            })?;
            builder.proxy(proxy)
        }
    };
    if let Some(path) = &s.tls.ca_file {
        let pem = read_file(profile, "tls.ca_file", path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                Error::config(ConfigError::new(
                    profile,
                    "tls.ca_file",
                    format!("{} holds no PEM certificate", path.display()),
                ))
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let (Some(cert), Some(key)) = (&s.tls.client_cert_file, &s.tls.client_key_file) {
        let mut pem = read_file(profile, "tls.client_cert_file", cert)?;
        pem.push(b'\n');
        pem.extend(read_file(profile, "tls.client_key_file", key)?);
        // reqwest's error could describe the key material; ours names the files only.
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            Error::config(ConfigError::new(
                profile,
                "tls.client_cert_file",
                format!(
                    "{} and {} are not a PEM certificate chain and private key",
                    cert.display(),
                    key.display()
                ),
            ))
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| {
        Error::config(ConfigError::new(
            profile,
            "tls",
            "the HTTP transport could not be built",
        ))
        .with_source(e.without_url())
    })
}

fn read_file(profile: &str, key: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::config(ConfigError::new(
            profile,
            key,
            format!("cannot read {}: {}", path.display(), e.kind()),
        ))
    })
}

/// Further ahead than any deadline or pause is meant (about 30 years, tokio's own "far future"),
/// and far from where `Instant` arithmetic overflows.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// `at + wait`, saturated: a configured or server-sent duration of any size (up to
/// `Duration::MAX`) means "very long", never a panic.
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    at + wait.min(FAR_FUTURE)
}

/// Which limit a [`Deadline`] stands for, so a timeout names the limit that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `timeouts.attempt`.
    Attempt(Duration),
    /// `timeouts.total` or the per-call `RequestBuilder::timeout`.
    Total(Duration),
}

/// The instant by which an attempt (and the reading of its body) must be done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: Limit,
}

impl Deadline {
    /// The attempt's deadline: `attempt` from `now`, or the call's deadline if that comes first.
    pub(crate) fn for_attempt(now: Instant, attempt: Duration, call: Deadline) -> Deadline {
        let own = later(now, attempt);
        if own < call.at {
            Deadline {
                at: own,
                limit: Limit::Attempt(attempt),
            }
        } else {
            call
        }
    }

    /// The error for this deadline having passed.
    pub(crate) fn elapsed(&self) -> Error {
        let detail = match self.limit {
            Limit::Attempt(d) => format!(
                "attempt timeout of {} elapsed (timeouts.attempt)",
                humantime::format_duration(d)
            ),
            Limit::Total(d) => format!(
                "total deadline of {} elapsed (timeouts.total)",
                humantime::format_duration(d)
            ),
        };
        Error::new(ErrorKind::Timeout).with_detail(detail)
    }

    /// Runs `fut` until this deadline. A future that is ready at once (a cached token) never
    /// registers a timer.
    pub(crate) async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        let mut fut = std::pin::pin!(fut);
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = first {
            return Ok(output);
        }
        tokio::time::timeout_at(self.at, fut)
            .await
            .map_err(|_| self.elapsed())
    }
}

/// One timer for a whole attempt: the request, its redirects and the reading of the body share
/// it, so an attempt registers one timer however many chunks its body has. It fires at the
/// attempt deadline or when nothing has been read for `idle` (`timeouts.read`), whichever comes
/// first; progress only moves an instant, and the timer is re-armed lazily when it fires.
pub(crate) struct Timer {
    deadline: Deadline,
    idle: Duration,
    last_read: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.deadline)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Timer {
    /// A timer for an attempt starting `now`, allowed to wait `idle` for each read.
    pub(crate) fn new(deadline: Deadline, idle: Duration, now: Instant) -> Timer {
        Timer {
            deadline,
            idle,
            last_read: now,
            sleep: Box::pin(tokio::time::sleep_until(deadline.at.min(later(now, idle)))),
        }
    }

    /// The instant by which the attempt must be done.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline.at
    }

    /// Restarts the idle clock: the caller is about to wait for data again after time spent
    /// elsewhere (between receiving the head and reading the body).
    pub(crate) fn resume(&mut self) {
        self.last_read = Instant::now();
    }

    /// Runs `fut`, one read, until the deadline or the idle limit.
    pub(crate) async fn run<F: Future>(&mut self, fut: F) -> Result<F::Output, Error> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = fut.as_mut().poll(cx) {
                self.last_read = Instant::now();
                return Poll::Ready(Ok(output));
            }
            loop {
                std::task::ready!(self.sleep.as_mut().poll(cx));
                let now = Instant::now();
                if now >= self.deadline.at {
                    return Poll::Ready(Err(self.deadline.elapsed()));
                }
                let idle_until = later(self.last_read, self.idle);
                if now >= idle_until {
                    return Poll::Ready(Err(Error::new(ErrorKind::Timeout).with_detail(format!(
                        "no data for {} (timeouts.read)",
                        humantime::format_duration(self.idle)
                    ))));
                }
                // Data arrived since the timer was armed: wait for the new idle limit.
                let at = self.deadline.at.min(idle_until);
                self.sleep.as_mut().reset(at);
            }
        })
        .await
    }
}

/// Sends one request and waits for the response head, within `timer`.
pub(crate) fn send<'a>(
    http: &reqwest::Client,
    request: reqwest::Request,
    timer: &'a mut Timer,
    timeouts: &'a Timeouts,
) -> impl Future<Output = Result<reqwest::Response, Error>> + 'a {
    // Handed to reqwest before the future is built, so the future does not hold the request.
    let pending = http.execute(request);
    async move { timer.run(pending).await?.map_err(|e| classify(e, timeouts)) }
}

/// The one mapping from `reqwest::Error` to our kinds. The URL is stripped before the error is
/// kept as a source, since reqwest's `Display` would print it unredacted.
pub(crate) fn classify(e: reqwest::Error, timeouts: &Timeouts) -> Error {
    // reqwest keeps only the connect timeout; the others are the `Timer`'s.
    let (kind, detail) = if e.is_timeout() {
        (
            ErrorKind::Timeout,
            format!(
                "connect timeout of {} elapsed (timeouts.connect)",
                humantime::format_duration(timeouts.connect)
            ),
        )
    } else if e.is_connect() {
        (ErrorKind::Connect, "could not connect".to_owned())
    } else if e.is_body() || e.is_decode() {
        (
            ErrorKind::Body,
            "the connection failed while reading the body".to_owned(),
        )
    } else {
        (
            ErrorKind::Request,
            "the connection failed during the exchange".to_owned(),
        )
    };
    // A handshake failure says why, and whether a retry could help.
    let tls = crate::tls_error::cause(&e);
    let err = match tls {
        Some(cause) => Error::new(kind)
            .with_detail(cause.text)
            .with_permanent(cause.permanent),
        None => Error::new(kind).with_detail(detail),
    };
    // reqwest reports refused connections, DNS and TLS handshake failures (and connect
    // timeouts) as connect errors: the request itself was never written.
    let err = if e.is_connect() {
        err.with_never_sent()
    } else {
        err
    };
    err.with_source(e.without_url())
}

/// The first allocation for a body, whatever `Content-Length` claims.
const INITIAL_CAPACITY_CAP: u64 = 64 * 1024;

/// A cap on a body and the setting it comes from, for the error message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit {
    pub(crate) max: u64,
    pub(crate) key: &'static str,
}

/// Reads a whole body within `limit` (counted after decompression) and `timer`. Refuses at
/// once when `Content-Length` already exceeds the limit.
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    limit: BodyLimit,
    timer: &mut Timer,
    timeouts: &Timeouts,
) -> Result<Bytes, Error> {
    let BodyLimit { max, key } = limit;
    let too_large = |detail: String| Error::new(ErrorKind::BodyTooLarge).with_detail(detail);
    if let Some(len) = response.content_length()
        && len > max
    {
        return Err(too_large(format!(
            "Content-Length of {len} bytes exceeds {key} ({max})"
        )));
    }
    let capacity = response
        .content_length()
        .unwrap_or(0)
        .min(INITIAL_CAPACITY_CAP);
    timer.resume();
    let mut read = 0u64;
    let mut within = |len: usize| {
        read += len as u64;
        if read > max {
            return Err(too_large(format!(
                "body exceeds {key} ({max}) after decompression"
            )));
        }
        Ok(())
    };
    // A body that arrives as one chunk is returned as it is; only a second chunk costs a copy.
    let Some(first) = next_chunk(response, timer, timeouts).await? else {
        return Ok(Bytes::new());
    };
    within(first.len())?;
    let Some(second) = next_chunk(response, timer, timeouts).await? else {
        return Ok(first);
    };
    within(second.len())?;
    let mut body =
        BytesMut::with_capacity(capacity.max((first.len() + second.len()) as u64) as usize);
    body.extend_from_slice(&first);
    body.extend_from_slice(&second);
    while let Some(chunk) = next_chunk(response, timer, timeouts).await? {
        within(chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The next chunk of a body, within `timer`.
pub(crate) async fn next_chunk(
    response: &mut reqwest::Response,
    timer: &mut Timer,
    timeouts: &Timeouts,
) -> Result<Option<Bytes>, Error> {
    timer
        .run(response.chunk())
        .await?
        .map_err(|e| classify(e, timeouts))
}
