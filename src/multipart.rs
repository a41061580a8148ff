//! `multipart/form-data` bodies (file uploads), shaped like reqwest's: a [`Form`] of named
//! [`Part`]s. A form is rebuilt for every attempt, and its files opened anew, so an upload is as
//! replayable as a JSON body: a retry sends the whole form again, never half of it.
//!
//! ```no_run
//! # async fn demo(client: outbound::Client, pdf: Vec<u8>) -> Result<(), outbound::Error> {
//! use outbound::multipart::{Form, Part};
//!
//! let form = Form::new()
//!     .text("purpose", "invoice")
//!     .part("file", Part::bytes(pdf).file_name("a.pdf").mime_str("application/pdf")?)
//!     .part("scan", Part::file("/var/spool/scan-7.png").mime_str("image/png")?);
//! client.post("/v1/files").multipart(form).idempotency_key("upload-7").send().await?;
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};

/// Read size for file parts.
const CHUNK: usize = 64 * 1024;

/// A multipart form.
#[derive(Clone)]
pub struct Form {
    boundary: String,
    parts: Vec<(String, Part)>,
}

/// One part of a [`Form`]: text, bytes, or a file read when the request is sent.
#[derive(Clone)]
pub struct Part {
    content: Content,
    file_name: Option<String>,
    mime: Option<String>,
}

#[derive(Clone)]
enum Content {
    Bytes(Bytes),
    File(PathBuf),
}

impl Default for Form {
    fn default() -> Form {
        Form::new()
    }
}

impl Form {
    /// An empty form with a random boundary.
    pub fn new() -> Form {
        Form {
            boundary: format!("outbound-{}", uuid::Uuid::new_v4().simple()),
            parts: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Form {
        self.part(name, Part::text(value))
    }

    /// Adds a part.
    pub fn part(mut self, name: impl Into<String>, part: Part) -> Form {
        self.parts.push((name.into(), part));
        self
    }

    /// The `Content-Type` of the request that carries this form.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body for one attempt: every file opened now (so one that vanished fails the call
    /// before anything is sent), then streamed in chunks.
    pub(crate) async fn open(&self) -> Result<reqwest::Body> {
        let mut pieces = VecDeque::with_capacity(self.parts.len() * 3 + 1);
        for (name, part) in &self.parts {
            pieces.push_back(Piece::Bytes(Bytes::from(self.head(name, part))));
            match &part.content {
                Content::Bytes(bytes) => pieces.push_back(Piece::Bytes(bytes.clone())),
                Content::File(path) => {
                    let file = tokio::fs::File::open(path).await.map_err(|e| {
                        Error::builder(format!(
                            "multipart part {:?}: cannot read {}: {}",
                            escape(name),
                            path.display(),
                            e.kind()
                        ))
                    })?;
                    pieces.push_back(Piece::File(file));
                }
            }
            pieces.push_back(Piece::Bytes(Bytes::from_static(b"\r\n")));
        }
        pieces.push_back(Piece::Bytes(Bytes::from(format!(
            "--{}--\r\n",
            self.boundary
        ))));
        let stream = futures_util::stream::unfold(pieces, |mut pieces| async move {
            loop {
                match pieces.pop_front()? {
                    Piece::Bytes(bytes) if bytes.is_empty() => continue,
                    Piece::Bytes(bytes) => return Some((Ok(bytes), pieces)),
                    Piece::File(mut file) => {
                        let mut buf = vec![0; CHUNK];
                        match file.read(&mut buf).await {
                            Ok(0) => continue,
                            Ok(n) => {
                                buf.truncate(n);
                                pieces.push_front(Piece::File(file));
                                return Some((Ok(Bytes::from(buf)), pieces));
                            }
                            // The stream ends with the error: the attempt fails mid-body.
                            Err(e) => return Some((Err(e), VecDeque::new())),
                        }
                    }
                }
            }
        });
        Ok(reqwest::Body::wrap_stream(stream))
    }

    fn head(&self, name: &str, part: &Part) -> String {
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            escape(name)
        );
        if let Some(file_name) = &part.file_name {
            head.push_str(&format!("; filename=\"{}\"", escape(file_name)));
        }
        head.push_str("\r\n");
        if let Some(mime) = &part.mime {
            head.push_str(&format!("Content-Type: {mime}\r\n"));
        } else if part.file_name.is_some() || matches!(part.content, Content::File(_)) {
            head.push_str("Content-Type: application/octet-stream\r\n");
        }
        head.push_str("\r\n");
        head
    }
}

enum Piece {
    Bytes(Bytes),
    File(tokio::fs::File),
}

/// A name or file name inside a quoted header parameter: quotes and line breaks
/// percent-encoded, as browsers do, so a name cannot end the header or start another.
fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl Part {
    /// A text part.
    pub fn text(value: impl Into<String>) -> Part {
        Part::bytes(value.into())
    }

    /// A part from bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Part {
        Part {
            content: Content::Bytes(bytes.into()),
            file_name: None,
            mime: None,
        }
    }

    /// A part read from the file at `path` when the request is sent (and again on a retry),
    /// never held whole in memory. Its file name defaults to the path's last component.
    pub fn file(path: impl Into<PathBuf>) -> Part {
        let path = path.into();
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        Part {
            content: Content::File(path),
            file_name,
            mime: None,
        }
    }

    /// The file name sent with the part.
    pub fn file_name(mut self, name: impl Into<String>) -> Part {
        self.file_name = Some(name.into());
        self
    }

    /// The part's `Content-Type`.
    ///
    /// # Errors
    ///
    /// [`Error::is_builder`] for a value a header cannot carry.
    pub fn mime_str(mut self, mime: &str) -> Result<Part> {
        if mime.is_empty()
            || http::HeaderValue::from_str(mime).is_err()
            || mime.contains(['\r', '\n'])
        {
            return Err(Error::builder("invalid multipart Content-Type"));
        }
        self.mime = Some(mime.to_owned());
        Ok(self)
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field(
                "parts",
                &self.parts.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the content: it may be personal data.
        f.debug_struct("Part")
            .field("file_name", &self.file_name)
            .field("mime", &self.mime)
            .finish_non_exhaustive()
    }
}
