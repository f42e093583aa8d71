//! [`Browser`]: just enough of a browser to walk a redirect flow across Gatehouse and the
//! test OpenID provider: a cookie jar of its own (two browsers share nothing) and redirects
//! followed one by one, so a test can stop at the app's redirect URL without fetching it.

use std::sync::Mutex;

use url::Url;

use super::http_error;
use crate::error::SandboxError;

/// How many redirects one [`Browser::follow`] takes before it gives up.
const MAX_REDIRECTS: usize = 20;

/// A response that was not a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The URL fetched.
    pub url: Url,
    /// Its HTTP status.
    pub status: u16,
    /// Its body, as text.
    pub body: String,
}

impl Page {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A cookie jar and an HTTP client that never follows redirects by itself.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    last_page: Mutex<Option<Page>>,
    visited: Mutex<Vec<Url>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new() -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            // Only a missing TLS backend or resolver fails here; the kit uses neither.
            .unwrap_or_default();
        Browser {
            http,
            last_page: Mutex::new(None),
            visited: Mutex::new(Vec::new()),
        }
    }

    /// Fetches `start_url` and follows every redirect (`Location`, relative ones resolved)
    /// until one leads to a URL that starts with `stop_prefix`, which is returned without
    /// being fetched. A response that is no redirect ends the flow early with an error;
    /// [`Browser::last_page`] then shows it.
    pub async fn follow(&self, start_url: &str, stop_prefix: &str) -> Result<Url, SandboxError> {
        let mut url = Url::parse(start_url).map_err(|error| SandboxError::Io {
            context: format!("parse {start_url}"),
            source: std::io::Error::other(error),
        })?;
        self.lock_visited().clear();
        for _ in 0..MAX_REDIRECTS {
            self.lock_visited().push(url.clone());
            let response = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(http_error(format!("GET {url}")))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            match location {
                Some(location) if status.is_redirection() => {
                    let next = url.join(&location).map_err(|error| SandboxError::Io {
                        context: format!("{url} redirected to {location}"),
                        source: std::io::Error::other(error),
                    })?;
                    if next.as_str().starts_with(stop_prefix) {
                        return Ok(next);
                    }
                    url = next;
                }
                _ => {
                    let body = response
                        .text()
                        .await
                        .map_err(http_error(format!("read {url}")))?;
                    let page = Page {
                        url: url.clone(),
                        status: status.as_u16(),
                        body: body.clone(),
                    };
                    *self.lock_last_page() = Some(page);
                    return Err(SandboxError::Io {
                        context: format!(
                            "the flow stopped at {url} with {status} before reaching {stop_prefix}"
                        ),
                        source: std::io::Error::other(body),
                    });
                }
            }
        }
        Err(SandboxError::Io {
            context: format!("more than {MAX_REDIRECTS} redirects from {start_url}"),
            source: std::io::Error::other(format!("{:?}", self.visited())),
        })
    }

    /// The last response of a [`Browser::follow`] that was no redirect.
    pub fn last_page(&self) -> Option<Page> {
        self.lock_last_page().clone()
    }

    /// The URLs the last [`Browser::follow`] fetched, in order.
    pub fn visited(&self) -> Vec<Url> {
        self.lock_visited().clone()
    }

    /// The HTTP client with this browser's cookie jar (no redirects followed).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn lock_last_page(&self) -> std::sync::MutexGuard<'_, Option<Page>> {
        self.last_page
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_visited(&self) -> std::sync::MutexGuard<'_, Vec<Url>> {
        self.visited
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The value of the query parameter `name` of `url`, if present.
pub fn query_value(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
