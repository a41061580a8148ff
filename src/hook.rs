//! [`ClientBuilder::on_attempt`](crate::ClientBuilder::on_attempt): code that runs on every
//! request a call puts on the wire, for what must change per attempt (a signature over a
//! timestamp, an HMAC, AWS SigV4).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use http::{HeaderMap, Method};
use url::Url;

use crate::error::Error;

/// The error a hook returns to fail the call; it becomes the [`Error::source`] of an
/// [`Error::is_builder`] error.
///
/// [`Error::source`]: std::error::Error::source
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook, shared by the clones of a client.
pub(crate) type Hook = Arc<dyn Fn(&mut AttemptRequest<'_>) -> Result<(), HookError> + Send + Sync>;

/// One request about to be sent, as an `on_attempt` hook sees it: credentials are in place, and
/// the hook may add or replace headers.
pub struct AttemptRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Url,
    pub(crate) headers: &'a mut HeaderMap,
    pub(crate) body: Option<&'a [u8]>,
    pub(crate) number: u32,
    pub(crate) in_scope: bool,
}

impl AttemptRequest<'_> {
    /// The method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The URL, query included (with an API key in a query parameter, the key too: a hook that
    /// logs it must redact it).
    pub fn url(&self) -> &Url {
        self.url
    }

    /// The headers, credentials included (marked sensitive).
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The headers to send. Whatever the hook sets is masked in logs when its name is on the
    /// redaction list.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers
    }

    /// The body, when it is held in memory (`None` for no body and for streamed bodies).
    pub fn body(&self) -> Option<&[u8]> {
        self.body
    }

    /// Whether this request goes where the profile's credentials go (`base_url`'s origin and
    /// `auth.hosts`): a hook that signs with a partner's secret signs only these. Whatever
    /// the hook adds never follows a redirect to another origin.
    pub fn in_credential_scope(&self) -> bool {
        self.in_scope
    }

    /// Which request of the call this is, from 1: a retry, and the resend after a 401, count.
    pub fn attempt(&self) -> u32 {
        self.number
    }
}

impl fmt::Debug for AttemptRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptRequest")
            .field("method", self.method)
            .field("attempt", &self.number)
            .finish_non_exhaustive()
    }
}

/// Runs `hook`: its error, or its panic, fails this call only.
pub(crate) fn run(hook: &Hook, request: &mut AttemptRequest<'_>) -> Result<(), Error> {
    match catch_unwind(AssertUnwindSafe(|| hook(request))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::builder("the on_attempt hook failed the request").with_source(e)),
        Err(_) => Err(Error::builder("the on_attempt hook panicked")),
    }
}
