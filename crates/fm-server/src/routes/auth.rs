//! Bearer tokens for the API (and the Alertmanager webhook, which cannot sign its requests).

use axum::http::{HeaderMap, StatusCode};

use crate::routes::ApiError;
use crate::state::AppState;

/// Ok when no tokens are configured (loopback-only servers, checked at start) or the request
/// carries one of them.
pub fn check_bearer(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.api_tokens.is_empty() {
        return Ok(());
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t)
            if state
                .api_tokens
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid bearer token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing 'Authorization: Bearer <token>' (one of the server's api_token_secrets)",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
