//! `Response::json`: a body that does not match says where, as a path that never quotes a value,
//! and a body that is not JSON at all says so before any parsing.

use serde::de::DeserializeOwned;

use super::Response;
use crate::error::{Error, ErrorKind, Result};

impl Response {
    /// Reads the body and deserializes it from JSON.
    ///
    /// # Errors
    ///
    /// As [`Response::bytes`], and [`Error::is_decode`] when the body is not the expected JSON.
    /// The message says where the document went wrong (line and column) and never quotes the
    /// body, which may hold personal data or tokens.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let method = self.method.clone();
        let url = self.url().to_string();
        let status = self.status();
        let attempts = self.attempts;
        let request_id = self.request_id.clone();
        let decode_error = |detail: String| {
            Error::new(ErrorKind::Decode)
                .with_detail(detail)
                .with_request(&method, url.clone())
                .with_status(status)
                .with_attempts(attempts)
                .with_request_id(request_id.as_deref())
        };
        // An HTML error page behind a 200 is named as such, before any parsing.
        if let Some(content_type) = self.headers().get(http::header::CONTENT_TYPE)
            && !is_json(content_type.as_bytes())
        {
            let essence = String::from_utf8_lossy(content_type.as_bytes());
            let essence = essence.split(';').next().unwrap_or("").trim();
            return Err(decode_error(format!(
                "expected JSON, got {}",
                crate::redact::printable(&essence.to_ascii_lowercase())
            )));
        }
        let bytes = self.bytes().await?;
        // The path to a field that broke costs something to track: a body is parsed plainly,
        // and again with tracking only when it failed.
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(value);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value: std::result::Result<T, _> = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| (shown_path(e.path()), e.into_inner()))
            .and_then(|value| {
                let end = deserializer.end();
                end.map(|()| value).map_err(|e| (String::new(), e))
            });
        value.map_err(|(path, e)| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "could not be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Data => "does not match the expected type",
                serde_json::error::Category::Eof => "ends before the JSON document does",
            };
            // The path names fields and indexes only; serde's own message may quote a value.
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at {path}")
            };
            decode_error(format!(
                "body {what}{at} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, `text/json`, `…+json`, with any
/// parameters, any case). Compared in place: this runs on every `json()`.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.is_empty()
        || essence.eq_ignore_ascii_case(b"application/json")
        || essence.eq_ignore_ascii_case(b"text/json")
        || essence.len() > 5 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json")
}

/// A path into a JSON document (`items[3].price`) that names struct fields and indexes only:
/// a map key can be data (an email address, a token used as a key), so one that does not look
/// like a field name is shown as `…`.
fn shown_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut shown = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => shown.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                let field_like = key.len() <= 40
                    && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                shown.push_str(if field_like { key } else { "…" });
            }
            Segment::Unknown => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push('?');
            }
        }
    }
    shown
}
