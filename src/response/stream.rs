//! Reading a body chunk by chunk, for bodies too large to hold, within every bound of
//! `bytes()`; and the answers that have no body at all.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::Response;
use crate::error::{Error, ErrorKind, Result};
use crate::transport;

impl Response {
    /// Reads the next chunk of the body, `None` at its end: for bodies too large to hold in
    /// memory. Every bound of [`bytes`](Response::bytes) holds across the chunks:
    /// `max_response_bytes` (or the call's own limit) counted after decompression, the read
    /// timeout between chunks, and the call's deadline.
    ///
    /// ```no_run
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// // Reading is bounded by the attempt's limit (`timeouts.attempt`): a long download needs a
    /// // profile whose attempt and total limits allow it.
    /// let mut response = client
    ///     .get("/v1/exports/2024.csv")
    ///     .max_response_bytes(8 << 30)
    ///     .send()
    ///     .await?
    ///     .error_for_status()?;
    /// let mut rows = 0;
    /// while let Some(chunk) = response.chunk().await? {
    ///     rows += chunk.iter().filter(|b| **b == b'\n').count();
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Response::bytes`], when the chunk that crosses a bound is read.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.streaming {
            self.streaming = true;
            if self.has_no_body() {
                return Ok(None);
            }
            if let Some(len) = self.inner.content_length()
                && len > self.max_bytes
            {
                let detail = format!(
                    "Content-Length of {len} bytes exceeds max_response_bytes ({})",
                    self.max_bytes
                );
                return Err(self.error(ErrorKind::BodyTooLarge, Some(detail)));
            }
            self.timer.resume();
        }
        if let Some(failed) = &self.failed {
            let (kind, detail) = &**failed;
            return Err(self.error(*kind, Some(detail.clone())));
        }
        let result =
            match transport::next_chunk(&mut self.inner, &mut self.timer, &self.ctx.timeouts).await
            {
                Ok(Some(chunk)) => {
                    self.read = self.read.saturating_add(chunk.len() as u64);
                    if self.read > self.max_bytes {
                        Err(self.too_large())
                    } else {
                        Ok(Some(chunk))
                    }
                }
                Ok(None) => Ok(None),
                Err(err) => Err(self.with_context(err)),
            };
        if let Err(err) = &result {
            let detail = err.detail().unwrap_or("the body failed").to_owned();
            self.failed = Some(Box::new((err.kind(), detail)));
        }
        result
    }

    /// The body as a stream of chunks, with the bounds of [`chunk`](Response::chunk); the
    /// stream ends after the first error.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    ///
    /// # async fn demo(client: outbound::Client) -> Result<(), outbound::Error> {
    /// let mut body = client.get("/v1/exports/7").send().await?.bytes_stream();
    /// while let Some(chunk) = body.next().await {
    ///     let chunk = chunk?;
    ///     // write `chunk` somewhere
    /// }
    /// # Ok(()) }
    /// ```
    pub fn bytes_stream(self) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin {
        Box::pin(futures_util::stream::unfold(
            Some(self),
            |state| async move {
                let mut response = state?;
                match response.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                    Ok(None) => None,
                    Err(err) => Some((Err(err), None)),
                }
            },
        ))
    }

    /// A response to HEAD, a 204, a 304 or a 1xx has no body, whatever `Content-Length` says
    /// (over HTTP/2 a HEAD answer keeps the length of the body it did not send).
    pub(super) fn has_no_body(&self) -> bool {
        let status = self.status();
        self.method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status.is_informational()
    }

    fn too_large(&self) -> Error {
        let detail = format!(
            "body exceeds max_response_bytes ({}) after decompression",
            self.max_bytes
        );
        self.error(ErrorKind::BodyTooLarge, Some(detail))
    }
}
