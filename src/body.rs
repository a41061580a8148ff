//! A request body, as each attempt needs it: bytes (sent as often as needed), a multipart form
//! (rebuilt for every attempt, its files opened anew), or a stream (sent once).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::error::Error;
use crate::multipart::Form;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// The body of a call; cheap to clone (each attempt takes a clone).
#[derive(Clone)]
pub(crate) enum Body {
    Bytes(Bytes),
    Multipart(Arc<Form>),
    Stream(Arc<Once>),
}

/// A caller's stream, sent at most once: every attempt reads from the same stream, and once an
/// attempt has taken a chunk the body cannot be sent again.
pub(crate) struct Once {
    stream: Mutex<Option<BoxStream>>,
    taken: AtomicBool,
}

impl Body {
    /// A stream body.
    pub(crate) fn stream<S, E>(stream: S) -> Body
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        use futures_util::StreamExt;
        let stream: BoxStream = Box::pin(stream.map(|item| item.map_err(Into::into)));
        Body::Stream(Arc::new(Once {
            stream: Mutex::new(Some(stream)),
            taken: AtomicBool::new(false),
        }))
    }

    /// The bytes, when the body is held in memory.
    pub(crate) fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Body::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Whether the body can be sent again: always, except a stream something was read from.
    pub(crate) fn can_resend(&self) -> bool {
        match self {
            Body::Stream(once) => !once.taken.load(Ordering::Acquire),
            _ => true,
        }
    }

    /// What the wire sends for one attempt (or hop).
    ///
    /// # Errors
    ///
    /// `is_builder()` when a file of a multipart form cannot be opened (it vanished since the
    /// last attempt, say), and when a stream has already been sent.
    pub(crate) async fn for_attempt(&self) -> Result<reqwest::Body, Error> {
        match self {
            Body::Bytes(bytes) => Ok(reqwest::Body::from(bytes.clone())),
            Body::Multipart(form) => form.open().await,
            Body::Stream(once) => {
                if !self.can_resend() {
                    return Err(Error::builder(
                        "the streamed request body was already sent and cannot be sent again",
                    ));
                }
                Ok(reqwest::Body::wrap_stream(Attempt { once: once.clone() }))
            }
        }
    }
}

/// One attempt's view of a [`Once`] stream.
struct Attempt {
    once: Arc<Once>,
}

impl Stream for Attempt {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut stream = self
            .once
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(inner) = stream.as_mut() else {
            return Poll::Ready(None);
        };
        // Asked for a chunk: from now on the body is (partly) on its way.
        self.once.taken.store(true, Ordering::Release);
        let next = inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            *stream = None;
        }
        next
    }
}
