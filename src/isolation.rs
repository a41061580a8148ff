//! The kill switch: cut an integration off during an incident, without a deploy.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::telemetry;

/// Fails with `is_isolated()` while the kill switch is on. Asked before every wait ends in I/O:
/// before an attempt, before its token request, before the wire and before every redirect hop.
pub(crate) fn check(isolated: &AtomicBool) -> Result<()> {
    if isolated.load(Ordering::Acquire) {
        return Err(Error::new(ErrorKind::Isolated)
            .with_detail("Client::isolate was called; no call goes out until Client::restore"));
    }
    Ok(())
}

impl Client {
    pub(crate) fn check_isolation(&self) -> Result<()> {
        check(&self.shared.isolated)
    }

    /// Cuts this integration off: until [`restore`](Client::restore), every call of this client
    /// and its clones fails at once with [`Error::is_isolated`], without any I/O. Meant for
    /// incidents, when a partner must not be called at all.
    ///
    /// ```
    /// let client = outbound::Client::builder().base_url("https://api.partner.example").build()?;
    /// client.isolate();
    /// assert!(client.clone().is_isolated());
    /// client.restore();
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn isolate(&self) {
        if !self.shared.isolated.swap(true, Ordering::AcqRel) {
            telemetry::isolation(&self.shared.name, true);
        }
    }

    /// Lifts [`isolate`](Client::isolate).
    pub fn restore(&self) {
        if self.shared.isolated.swap(false, Ordering::AcqRel) {
            telemetry::isolation(&self.shared.name, false);
        }
    }

    /// Whether the client is isolated.
    pub fn is_isolated(&self) -> bool {
        self.shared.isolated.load(Ordering::Acquire)
    }
}
