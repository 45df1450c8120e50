//! Small shared helpers: form decoding and JSON error responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

/// Decodes `application/x-www-form-urlencoded` (also used for query strings):
/// `+` is a space, `%XX` a byte; invalid escapes are kept literally.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A JSON response with a status.
pub fn json(status: StatusCode, v: Value) -> Response {
    (status, Json(v)).into_response()
}

/// A plain-text response with a status.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(
            parse_form("query=up%7Bservice%3D%22x%22%7D&step=60&a+b=c+d&bad=%zz&t=%4"),
            vec![
                ("query".into(), "up{service=\"x\"}".into()),
                ("step".into(), "60".into()),
                ("a b".into(), "c d".into()),
                ("bad".into(), "%zz".into()),
                ("t".into(), "%4".into()),
            ]
        );
    }
}
