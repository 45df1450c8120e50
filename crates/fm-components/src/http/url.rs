//! Building a request URL from its template so that an interpolated value can fill a part of the
//! URL but never change its shape.
//!
//! Literal text of the template is kept as written. Each `{{ }}` value is turned into text
//! (`fm_expr::to_text`) and then, depending on where it lands:
//!
//! * at the very start (no literal text before it): inserted as is. This is how a base URL from
//!   the input or a secret (`{{secrets.SLACK_WEBHOOK}}`) is written;
//! * in the host part (`https://{{service}}.internal/health`): must consist of letters, digits,
//!   `-` and `.`; anything else is an error;
//! * in the path, the query or the fragment: percent-encoded, everything but the unreserved
//!   characters (`A-Z a-z 0-9 - . _ ~`), so `/`, `?`, `#` and `%` cannot start a new segment, a
//!   query or a fragment. A value that is exactly `.` or `..` in the path is refused: URL parsers
//!   treat it (even percent-encoded) as a dot-segment and would climb the path.

use fm_expr::{to_text, RenderedPart};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything except the unreserved characters of RFC 3986 section 2.3.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Start,
    Authority,
    Path,
    Query,
    Fragment,
}

/// Where a value appended to `prefix` lands.
fn region_after(prefix: &str) -> Region {
    if prefix.is_empty() {
        return Region::Start;
    }
    if prefix.contains('#') {
        return Region::Fragment;
    }
    if prefix.contains('?') {
        return Region::Query;
    }
    match prefix.find("://") {
        Some(i) if prefix[i + 3..].contains('/') || prefix[i + 3..].contains('\\') => Region::Path,
        // After the scheme and before the first '/', or still in the scheme: treated strictly.
        _ => Region::Authority,
    }
}

fn is_host_text(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Joins rendered parts into URL text, encoding each interpolated value for where it lands.
/// The error message is meant for a `StageError` of kind Config.
pub(crate) fn join_parts(parts: &[RenderedPart<'_>]) -> Result<String, String> {
    let mut out = String::new();
    for part in parts {
        match part {
            RenderedPart::Text(t) => out.push_str(t),
            RenderedPart::Value(v) => {
                let text = to_text(v);
                match region_after(&out) {
                    Region::Start => out.push_str(&text),
                    Region::Authority => {
                        if !is_host_text(&text) {
                            return Err(format!(
                                "the value '{text}' lands in the host part of the URL '{out}…'; only letters, \
                                 digits, '-' and '.' are allowed there"
                            ));
                        }
                        out.push_str(&text);
                    }
                    Region::Path => {
                        if text == "." || text == ".." {
                            return Err(format!(
                                "the value '{text}' lands in the path of the URL '{out}…', where it would climb \
                                 the path; refusing it"
                            ));
                        }
                        out.extend(utf8_percent_encode(&text, COMPONENT));
                    }
                    Region::Query | Region::Fragment => {
                        out.extend(utf8_percent_encode(&text, COMPONENT))
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Parses the joined text; only http and https are accepted.
pub(crate) fn parse(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        let hint = if !text.contains("://") {
            " (it needs a scheme and a host, such as http://host:port/path)"
        } else {
            ""
        };
        format!("the URL '{text}' is not valid: {e}{hint}")
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "the URL '{text}' has the scheme '{other}'; http_request speaks only http and https"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn join(parts: &[RenderedPart<'_>]) -> Result<String, String> {
        join_parts(parts)
    }

    #[test]
    fn base_at_start_is_kept() {
        let p = [
            RenderedPart::Value(json!("http://h:8080/base")),
            RenderedPart::Text("/query"),
        ];
        assert_eq!(join(&p).unwrap(), "http://h:8080/base/query");
    }

    #[test]
    fn path_values_are_encoded() {
        let p = [
            RenderedPart::Text("http://h/deployments/"),
            RenderedPart::Value(json!("../../api/v1/secrets")),
            RenderedPart::Text("/scale"),
        ];
        assert_eq!(
            join(&p).unwrap(),
            "http://h/deployments/..%2F..%2Fapi%2Fv1%2Fsecrets/scale"
        );
        let p = [
            RenderedPart::Text("http://h/x/"),
            RenderedPart::Value(json!("x?y#z a%")),
        ];
        assert_eq!(join(&p).unwrap(), "http://h/x/x%3Fy%23z%20a%25");
    }

    #[test]
    fn dot_segments_are_refused() {
        for v in [".", ".."] {
            let p = [
                RenderedPart::Text("http://h/x/"),
                RenderedPart::Value(json!(v)),
                RenderedPart::Text("/y"),
            ];
            assert!(join(&p).is_err());
        }
    }

    #[test]
    fn host_values_are_checked() {
        let p = [
            RenderedPart::Text("https://"),
            RenderedPart::Value(json!("payment-service")),
            RenderedPart::Text(".internal/health"),
        ];
        assert_eq!(join(&p).unwrap(), "https://payment-service.internal/health");
        for bad in ["evil.com/x?", "a@b", "a b", "", "a..b", "h:1"] {
            let p = [
                RenderedPart::Text("https://"),
                RenderedPart::Value(json!(bad)),
                RenderedPart::Text("/x"),
            ];
            assert!(join(&p).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        let p = [
            RenderedPart::Text("http://h/x?q="),
            RenderedPart::Value(json!("a&b=c #d")),
        ];
        assert_eq!(join(&p).unwrap(), "http://h/x?q=a%26b%3Dc%20%23d");
        let p = [
            RenderedPart::Text("http://h/x?q=1#"),
            RenderedPart::Value(json!(5)),
        ];
        assert_eq!(join(&p).unwrap(), "http://h/x?q=1#5");
    }

    #[test]
    fn parse_checks_scheme() {
        assert!(parse("ftp://h/x").is_err());
        assert!(parse("payment-service/health")
            .unwrap_err()
            .contains("needs a scheme"));
        assert!(parse("http://h/x").is_ok());
    }
}
