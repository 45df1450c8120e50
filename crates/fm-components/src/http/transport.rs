//! The shared HTTP client, reading a body under a size cap, and turning transport failures into
//! distinct, clearly worded stage errors. Used by http_request and the generator's providers.

use std::error::Error as StdError;
use std::time::Duration;

use fm_core::{ErrorKind, StageError};
use url::Url;

/// `User-Agent` sent unless a stage gives its own.
pub(crate) const USER_AGENT: &str = concat!("fm/", env!("CARGO_PKG_VERSION"));

/// One connection-pooled client. Redirects are followed by http_request itself (per-stage
/// setting, credentials dropped across origins), so the client never follows them.
/// The connection-pooled client of one component, built on first use: building it loads the
/// system's root certificates, which costs milliseconds a run that makes no request (or a
/// `fm validate`) should not pay.
#[derive(Clone, Default)]
pub(crate) struct LazyClient(std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>);

impl LazyClient {
    pub(crate) fn get(&self) -> Result<&reqwest::Client, String> {
        self.0
            .get_or_init(build_client)
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyClient")
    }
}

pub(crate) fn new_client() -> LazyClient {
    LazyClient::default()
}

fn build_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", chain_text(&e)))
}

/// A body read up to a cap.
pub(crate) struct CappedBody {
    pub bytes: Vec<u8>,
    /// `Some(total)` when the body was longer than the cap: the total size, or at least the
    /// number of bytes seen before reading stopped.
    pub truncated_total: Option<u64>,
}

/// Reads at most `max` bytes of the body; stops reading (and drops the connection) beyond that.
pub(crate) async fn read_capped(
    resp: &mut reqwest::Response,
    max: u64,
) -> Result<CappedBody, reqwest::Error> {
    let announced = resp.content_length();
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let mut bytes: Vec<u8> =
        Vec::with_capacity(announced.map_or(8192, |n| n.min(max).min(1 << 20) as usize));
    let mut seen: u64 = 0;
    while let Some(chunk) = resp.chunk().await? {
        seen += chunk.len() as u64;
        let room = cap.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if seen > max {
            return Ok(CappedBody {
                bytes,
                truncated_total: Some(announced.unwrap_or(0).max(seen)),
            });
        }
    }
    Ok(CappedBody {
        bytes,
        truncated_total: None,
    })
}

/// Text of possibly cut UTF-8: an incomplete character at the end is dropped, invalid bytes
/// elsewhere become U+FFFD.
pub(crate) fn lossy_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// At most `n` characters, with an ellipsis when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Every message in the error's source chain, outermost first, without repeats.
fn chain(e: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        if !msg.is_empty() && !out.iter().any(|m| m == &msg) {
            out.push(msg);
        }
        cur = err.source();
    }
    out
}

pub(crate) fn chain_text(e: &(dyn StdError + 'static)) -> String {
    chain(e).join(": ")
}

/// Every error in the chain. `io::Error::source` skips the error it wraps (and io errors nest),
/// so wrapped errors are followed through `get_ref` instead.
fn nodes<'e>(e: &'e (dyn StdError + 'static)) -> Vec<&'e (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur: Option<&'e (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        out.push(err);
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &'e (dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

fn is_tls(e: &(dyn StdError + 'static)) -> bool {
    nodes(e).iter().any(|n| n.is::<rustls::Error>())
}

fn io_kinds(e: &(dyn StdError + 'static)) -> Vec<std::io::ErrorKind> {
    nodes(e)
        .iter()
        .filter_map(|n| n.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
        .collect()
}

/// `host:port` as written in messages.
pub(crate) fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.as_str().to_owned(),
    }
}

/// What went wrong on the wire, as a stage error of kind Connection, Dns, Tls or Timeout.
/// `what` names the request (`GET http://host/path`, `openai`).
pub(crate) fn transport_error(
    e: &reqwest::Error,
    url: &Url,
    what: &str,
    timeout: Duration,
) -> StageError {
    let messages = chain(e);
    let detail = messages.last().cloned().unwrap_or_else(|| e.to_string());
    let all = messages.join(": ").to_ascii_lowercase();
    let target = host_port(url);
    let host = url.host_str().unwrap_or("");
    if e.is_timeout() {
        return StageError::new(
            ErrorKind::Timeout,
            format!("{what}: no answer within {} ms", timeout.as_millis()),
        );
    }
    if io_kinds(e).contains(&std::io::ErrorKind::ConnectionRefused)
        || all.contains("connection refused")
    {
        return StageError::new(
            ErrorKind::Connection,
            format!("{what}: could not connect to {target} (connection refused) — is the service running and the URL right?"),
        );
    }
    if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
        || all.contains("no such host")
        || all.contains("nodename nor servname")
    {
        return StageError::new(
            ErrorKind::Dns,
            format!("{what}: could not resolve the host name '{host}' ({detail}) — check the host in the URL and this machine's DNS"),
        );
    }
    if url.scheme() == "https"
        && (is_tls(e)
            || all.contains("certificate")
            || all.contains("tls")
            || all.contains("handshake")
            || all.contains("rustls")
            || all.contains("invalid peer")
            || all.contains("alert"))
    {
        return StageError::new(
            ErrorKind::Tls,
            format!("{what}: TLS with {target} failed ({detail}) — check the server's certificate, or use http:// if the service does not speak TLS"),
        )
        .retryable(false);
    }
    if e.is_connect() {
        return StageError::new(
            ErrorKind::Connection,
            format!("{what}: could not connect to {target} ({detail})"),
        );
    }
    let phase = if e.is_body() || e.is_decode() {
        "while reading the answer"
    } else {
        "during the exchange"
    };
    StageError::new(
        ErrorKind::Connection,
        format!(
            "{what}: the connection to {target} failed {phase} ({})",
            messages.join(": ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_text_drops_a_cut_character() {
        let s = "héllo".as_bytes();
        assert_eq!(lossy_text(&s[..2]), "h");
        assert_eq!(lossy_text(s), "héllo");
        assert_eq!(lossy_text(&[b'a', 0xff, b'b']), "a\u{fffd}b");
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
