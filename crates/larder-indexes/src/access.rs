//! Who may do what on an index: anyone reads an index with anonymous read,
//! everything else needs a token of that index with enough scope.

use larder_index::IndexDefinition;
use larder_store::Store;

use crate::file_access::FileAccess;
use crate::tokens::{self, AuthError, Scope, TokenInfo};

/// Why a request is not allowed.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No credentials, or credentials that do not authenticate (answered
    /// with 401 and a `WWW-Authenticate` challenge).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token without the right to do this here (403).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed while checking.
    #[error(transparent)]
    Db(#[from] larder_store::DbError),
}

/// Checks that `token` (the password of HTTP Basic with username
/// `__token__`, when one was sent) may act with `needed` scope on `index`.
/// Returns the token that was used, if any.
pub async fn authorize(
    store: &Store,
    index: &IndexDefinition,
    token: Option<&str>,
    needed: Scope,
) -> Result<Option<TokenInfo>, Denied> {
    if needed == Scope::Read && index.anonymous_read {
        return Ok(None);
    }
    let what = format!("{} on index {}", action(needed), index.name);
    Ok(Some(check_token(store, &[index.name.as_str()], token, needed, &what).await?))
}

/// Checks that `token` may download a file that `access` protects: a read
/// token of one of the indexes that show it.
pub async fn authorize_file(store: &Store, access: &FileAccess, token: Option<&str>) -> Result<(), Denied> {
    let FileAccess::Token(readers) = access else {
        return Ok(());
    };
    let names: Vec<&str> = readers.iter().map(|index| index.name.as_str()).collect();
    let what = format!("downloading this file of index {}", names.join(" or "));
    check_token(store, &names, token, Scope::Read, &what).await.map(drop)
}

/// Authenticates `token` and checks that it is for one of `indexes` with
/// at least `needed` scope; `what` names the action in refusals.
async fn check_token(
    store: &Store,
    indexes: &[&str],
    token: Option<&str>,
    needed: Scope,
    what: &str,
) -> Result<TokenInfo, Denied> {
    let Some(token) = token else {
        return Err(Denied::Unauthenticated(format!(
            "{what} needs a token: HTTP Basic auth with username __token__ and the token as password"
        )));
    };
    let token = match tokens::authenticate(store, token).await {
        Ok(token) => token,
        Err(AuthError::Db(error)) => return Err(Denied::Db(error)),
        Err(error) => {
            tracing::warn!(index = %indexes.join(","), reason = %error, "authentication failed");
            return Err(Denied::Unauthenticated(format!("invalid credentials: {error}")));
        }
    };
    if !indexes.contains(&token.index.as_str()) {
        tracing::warn!(index = %indexes.join(","), token = %token.id, "token of another index refused");
        return Err(Denied::Forbidden(format!(
            "token {} is for index {}, not {}",
            token.id,
            token.index,
            indexes.join(" or ")
        )));
    }
    if token.scope < needed {
        tracing::warn!(index = %token.index, token = %token.id, scope = %token.scope, "token scope too small");
        return Err(Denied::Forbidden(format!(
            "token {} has scope {}; {what} needs scope {needed}",
            token.id, token.scope
        )));
    }
    Ok(token)
}

fn action(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "reading",
        Scope::Upload => "uploading",
        Scope::Admin => "changing files",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scope_index_and_anonymity_decide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut team = IndexDefinition::new("team", larder_index::IndexKind::Hosted).unwrap();
        let reader = tokens::create(&store, "team", Scope::Read, None, None).await.unwrap().secret;
        let other = tokens::create(&store, "other", Scope::Admin, None, None).await.unwrap().secret;
        assert!(authorize(&store, &team, None, Scope::Read).await.unwrap().is_none());
        assert!(matches!(authorize(&store, &team, None, Scope::Upload).await, Err(Denied::Unauthenticated(_))));
        let error = authorize(&store, &team, Some(&reader), Scope::Upload).await.unwrap_err();
        assert!(matches!(error, Denied::Forbidden(_)), "{error}");
        assert!(matches!(authorize(&store, &team, Some(&other), Scope::Read).await, Ok(None)));
        assert!(matches!(authorize(&store, &team, Some(&other), Scope::Upload).await, Err(Denied::Forbidden(_))));
        assert!(matches!(
            authorize(&store, &team, Some("larder_1_2"), Scope::Upload).await,
            Err(Denied::Unauthenticated(_))
        ));
        team.anonymous_read = false;
        assert!(matches!(authorize(&store, &team, None, Scope::Read).await, Err(Denied::Unauthenticated(_))));
        assert!(authorize(&store, &team, Some(&reader), Scope::Read).await.unwrap().is_some());
    }
}
