//! [`Client`]: one per integration, its constructors and its verbs. The pipeline a call runs
//! through is in `pipeline`, composed from the steps each module owns.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};
use url::Url;

use crate::builder::ClientBuilder;
use crate::error::Result;
use crate::profile::{Profile, Settings};
use crate::request::{self, RequestBuilder};
use crate::shared::Shared;

/// A client for one integration, built from a [`Profile`] or a [`ClientBuilder`].
///
/// Cheap to clone (an `Arc` inside); clones share the connection pool and every piece of
/// per-origin state. Every call is bounded in time and size, goes only where the profile allows,
/// and never shows a secret in an error or a log.
///
/// ```no_run
/// # async fn demo() -> Result<(), outbound::Error> {
/// let profiles = outbound::Profiles::from_toml_str(r#"
///     [crm]
///     base_url = "https://api.crm.example/v1"
/// "#)?;
/// let crm = outbound::Client::from_profile(profiles.get("crm")?)?;
/// let contact = crm.get("/contacts/42").send().await?.error_for_status()?.text().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

// ===== impl Client =====

impl Client {
    /// A builder with the defaults of an empty profile; `base_url` must be set.
    ///
    /// ```
    /// let client = outbound::Client::builder()
    ///     .base_url("https://api.partner.example")
    ///     .total_timeout(std::time::Duration::from_secs(10))
    ///     .build()?;
    /// # Ok::<(), outbound::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new(String::new(), Settings::default())
    }

    /// A builder that starts from `profile`, to override some of its settings.
    pub fn builder_from(profile: &Profile) -> ClientBuilder {
        ClientBuilder::new(profile.name.clone(), profile.settings.clone())
    }

    /// Builds a client from `profile`, reading the secrets it points to.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`](crate::Error::is_config) when a secret cannot be read (the message
    /// names the variable or the file, never a value) or a TLS file is invalid.
    pub fn from_profile(profile: &Profile) -> Result<Client> {
        Client::builder_from(profile).build()
    }

    pub(crate) fn from_shared(shared: Shared) -> Client {
        Client {
            shared: Arc::new(shared),
        }
    }

    /// Starts a GET request. `url` is a path relative to `base_url` or an absolute URL.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a POST request.
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a PUT request.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a PATCH request.
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Starts a DELETE request.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Starts a HEAD request.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// Starts a request with any method. `url` is a path relative to `base_url` (whose path is
    /// kept as a prefix) or an absolute URL, which the profile must allow.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        let url = request::resolve_url(&self.shared.base_url, url.as_ref());
        RequestBuilder::new(self.clone(), method, url)
    }

    /// Calls left under the profile's spending ceiling (`[budget]`) in the current period, as
    /// this replica counts them; `None` without a ceiling.
    pub fn budget_remaining(&self) -> Option<u64> {
        self.shared
            .ceiling
            .as_ref()
            .map(crate::ceiling::Ceiling::remaining)
    }

    /// The profile name this client was built from (empty for [`Client::builder`]).
    pub fn profile_name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn redacted(&self, url: &Url) -> String {
        self.shared.redactor.url(url).to_string()
    }

    pub(crate) fn redacted_headers<'a>(&'a self, headers: &'a HeaderMap) -> impl fmt::Debug + 'a {
        self.shared.redactor.headers(headers)
    }

    pub(crate) fn idempotency_header(&self) -> &HeaderName {
        &self.shared.idempotency_header
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("Client")
            .field("profile", &s.name)
            .field("base_url", &s.redactor.url(&s.base_url))
            .field("gate", &s.gate)
            .field("credentials", &s.credentials)
            .field("timeouts", &s.settings.timeouts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_clone_send_sync() {
        fn assert_impls<T: Clone + Send + Sync + 'static>() {}
        assert_impls::<Client>();
    }
}
