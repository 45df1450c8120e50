//! The hosts outbound requests may reach. A server sets it so that an alert's contents can never
//! steer a request to an arbitrary address; `fm run` leaves it open.

use url::Url;

/// `None` allows everything. Patterns: `host`, `host:port`, `*.example.com` (any subdomain).
#[derive(Debug, Clone, Default)]
pub struct HostAllowlist(Option<Vec<String>>);

impl HostAllowlist {
    pub fn any() -> Self {
        HostAllowlist(None)
    }

    pub fn only(patterns: Vec<String>) -> Self {
        HostAllowlist(Some(
            patterns
                .into_iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
        ))
    }

    pub fn allows(&self, url: &Url) -> bool {
        let Some(patterns) = &self.0 else { return true };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
        patterns.iter().any(|p| {
            if let Some(suffix) = p.strip_prefix("*.") {
                host.ends_with(&format!(".{suffix}"))
            } else {
                *p == host || with_port.as_deref() == Some(p.as_str())
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts_ports_and_subdomains() {
        let a = HostAllowlist::only(vec![
            "127.0.0.1:8089".into(),
            "*.internal.example.com".into(),
            "hooks.slack.com".into(),
        ]);
        let ok = |u: &str| Url::parse(u).map(|u| a.allows(&u)).unwrap_or(false);
        assert!(ok("http://127.0.0.1:8089/logs"));
        assert!(!ok("http://127.0.0.1:9999/logs"));
        assert!(ok("https://k8s.internal.example.com/apis"));
        assert!(!ok("https://internal.example.com.evil.net/"));
        assert!(ok("https://hooks.slack.com/services/x"));
        assert!(!ok("http://169.254.169.254/latest/meta-data"));
        assert!(HostAllowlist::any().allows(&Url::parse("http://anything/").unwrap()));
    }
}
