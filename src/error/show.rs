//! How an [`Error`] shows itself: `Display` in our own words, `Debug` with its parts, and the
//! source chain. Neither ever shows a secret, a header value or a body.

use std::error::Error as StdError;
use std::fmt;

use super::Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.write_str(inner.kind.phrase())?;
        if let Some(detail) = &inner.detail {
            write!(f, ": {detail}")?;
        }
        if let (Some(method), Some(url)) = (&inner.method, &inner.url) {
            write!(f, " ({method} {url})")?;
        }
        if let Some(status) = inner.status {
            write!(f, ", status {}", status.as_u16())?;
        }
        if let Some(after) = inner.retry_after {
            write!(f, ", retry after {}", crate::telemetry::shown(after))?;
        }
        if inner.attempts > 1 {
            write!(f, ", after {} attempts", inner.attempts)?;
        }
        if let Some(id) = &inner.request_id {
            write!(f, ", request id {id}")?;
        }
        if let Some(note) = inner.note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("outbound::Error");
        d.field("kind", &inner.kind);
        if let Some(detail) = &inner.detail {
            d.field("detail", detail);
        }
        if let Some(method) = &inner.method {
            d.field("method", method);
        }
        if let Some(url) = &inner.url {
            d.field("url", url);
        }
        if let Some(status) = &inner.status {
            d.field("status", status);
        }
        if let Some(after) = &inner.retry_after {
            d.field("retry_after", after);
        }
        d.field("attempts", &inner.attempts);
        if let Some(id) = &inner.request_id {
            d.field("request_id", id);
        }
        if let Some(note) = inner.note {
            d.field("note", &note);
        }
        if let Some(source) = &inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_ref().map(|e| &**e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use http::{Method, StatusCode};

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_impls<T: Send + Sync + 'static + StdError>() {}
        assert_impls::<Error>();
    }

    #[test]
    fn display_names_request_status_and_attempts() {
        let err = Error::new(ErrorKind::Timeout)
            .with_detail("attempt timeout of 2s elapsed")
            .with_request(&Method::GET, "https://api.example/v1?key=REDACTED".into())
            .with_status(StatusCode::BAD_GATEWAY)
            .with_attempts(3);
        assert_eq!(
            err.to_string(),
            "timed out: attempt timeout of 2s elapsed (GET https://api.example/v1?key=REDACTED), \
             status 502, after 3 attempts"
        );
    }
}
