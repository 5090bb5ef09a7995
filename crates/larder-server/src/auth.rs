//! Credentials from requests: HTTP Basic with username `__token__` and a
//! larder token as password (what twine, `uv publish` and poetry send),
//! and the answers when access is denied.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use larder_index::IndexDefinition;
use larder_indexes::{Denied, Scope, TokenInfo, authorize};

use crate::AppState;
use crate::error::ApiError;

/// The username tokens go with.
const TOKEN_USERNAME: &str = "__token__";

/// The token sent with the request, if any. A malformed header or another
/// username is refused with 401 (never echoing what was sent).
pub fn basic_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::unauthorized("malformed Authorization header: expected HTTP Basic");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
    if username != TOKEN_USERNAME {
        return Err(ApiError::unauthorized("use the username __token__ and a larder token as the password"));
    }
    Ok(Some(password.to_owned()))
}

/// Checks the request's credentials for `needed` scope on `index`.
pub async fn require(
    state: &AppState,
    index: &IndexDefinition,
    headers: &HeaderMap,
    needed: Scope,
) -> Result<Option<TokenInfo>, ApiError> {
    if needed == Scope::Read && index.anonymous_read {
        return Ok(None);
    }
    let token = basic_token(headers)?;
    authorize(state.indexes.store(), index, token.as_deref(), needed).await.map_err(denied)
}

/// The answer to a refused request: 401 with a challenge, or 403.
pub fn denied(denied: Denied) -> ApiError {
    match denied {
        Denied::Unauthenticated(reason) => ApiError::unauthorized(reason),
        Denied::Forbidden(reason) => ApiError::new(StatusCode::FORBIDDEN, reason),
        Denied::Db(error) => ApiError::database(&error),
    }
}

/// The named index, or 404.
pub async fn named_index(state: &AppState, name: &str) -> Result<std::sync::Arc<IndexDefinition>, ApiError> {
    state
        .indexes
        .registry()
        .get(name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no index named {name:?}")))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_basic_token_credentials_only() {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(basic_token(&HeaderMap::new()).unwrap(), None);
        let token = basic_token(&headers(&format!("Basic {}", encode("__token__:larder_ab_cd")))).unwrap();
        assert_eq!(token.as_deref(), Some("larder_ab_cd"));
        for bad in [format!("Basic {}", encode("alice:secret")), "Bearer x".into(), "Basic !!".into()] {
            let error = basic_token(&headers(&bad)).unwrap_err();
            assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        }
    }
}
