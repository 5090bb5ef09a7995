//! API tokens: created for one index with one scope, shown once, stored
//! only as a salted SHA-256 of their secret, listed, revoked, and checked
//! on every request that needs one.
//!
//! A token reads `larder_<id>_<secret>`: the id (8 random bytes, hex) is
//! public and finds the row; the secret (32 random bytes, hex) is what the
//! hash covers. Secrets are 256-bit random values, not passwords, so one
//! salted SHA-256 resists guessing as well as a slow password hash would,
//! without making every authenticated request pay for one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use larder_store::{DbError, Store, TokenRecord};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// What a token allows on its index; each scope includes the ones before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read pages and files of an index that is not anonymously readable.
    Read,
    /// Upload files (and read).
    Upload,
    /// Yank, unyank and delete (and upload and read).
    Admin,
}

impl Scope {
    /// `read`, `upload` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Upload => "upload",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(Self::Read),
            "upload" => Ok(Self::Upload),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown scope {other:?}: expected read, upload or admin")),
        }
    }
}

/// A token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The public id.
    pub id: String,
    /// Its index.
    pub index: String,
    /// Its scope.
    pub scope: Scope,
    /// What it is for.
    pub description: Option<String>,
    /// When it was created.
    pub created: Timestamp,
    /// When it expires, if ever.
    pub expires: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
}

/// A token just created: the only time its secret is known.
#[derive(Debug)]
pub struct NewToken {
    /// The stored part.
    pub info: TokenInfo,
    /// The whole token, to hand to the client once.
    pub secret: String,
}

/// Why presented credentials do not authenticate. The messages name the
/// token id at most, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not of the form `larder_<id>_<secret>`.
    #[error("the password is not a larder token")]
    Malformed,
    /// No token has this id.
    #[error("unknown token {0}")]
    Unknown(String),
    /// The id exists but the secret is wrong.
    #[error("wrong secret for token {0}")]
    WrongSecret(String),
    /// The token was revoked.
    #[error("token {0} was revoked")]
    Revoked(String),
    /// The token expired.
    #[error("token {0} expired")]
    Expired(String),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

const PREFIX: &str = "larder_";

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system provides random bytes");
    hex::encode(buffer)
}

fn secret_hash(salt: &str, secret: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

fn info(record: TokenRecord) -> Result<TokenInfo, DbError> {
    Ok(TokenInfo {
        scope: record.scope.parse().map_err(|_| DbError::Corrupt("tokens.scope"))?,
        id: record.id,
        index: record.index,
        description: record.description,
        created: record.created,
        expires: record.expires,
        revoked: record.revoked,
    })
}

/// Creates a token for `index`.
pub async fn create(
    store: &Store,
    index: &str,
    scope: Scope,
    expires_in: Option<Duration>,
    description: Option<String>,
) -> Result<NewToken, DbError> {
    let (id, secret, salt) = (random_hex(8), random_hex(32), random_hex(16));
    // Stored to the microsecond: keep what is returned equal to what is read back.
    let created = Timestamp::from_microsecond(Timestamp::now().as_microsecond()).expect("now is in range");
    let expires = expires_in
        .and_then(|d| jiff::SignedDuration::try_from(d).ok())
        .map(|d| created.checked_add(d).unwrap_or(Timestamp::MAX));
    let record = TokenRecord {
        id: id.clone(),
        index: index.to_owned(),
        scope: scope.as_str().to_owned(),
        secret_sha256: secret_hash(&salt, &secret),
        salt,
        description,
        created,
        expires,
        revoked: None,
    };
    store.db().insert_token(&record).await?;
    Ok(NewToken { info: info(record)?, secret: format!("{PREFIX}{id}_{secret}") })
}

/// Every token (of one index, when given).
pub async fn list(store: &Store, index: Option<&str>) -> Result<Vec<TokenInfo>, DbError> {
    store.db().tokens(index).await?.into_iter().map(info).collect()
}

/// Revokes a token by id; false when there is no such live token.
pub async fn revoke(store: &Store, id: &str) -> Result<bool, DbError> {
    store.db().revoke_token(id, Timestamp::now()).await
}

/// Checks a presented token: it exists, its secret matches, and it is
/// neither revoked nor expired.
pub async fn authenticate(store: &Store, presented: &str) -> Result<TokenInfo, AuthError> {
    let (id, secret) =
        presented.strip_prefix(PREFIX).and_then(|rest| rest.split_once('_')).ok_or(AuthError::Malformed)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Malformed);
    }
    let record = store.db().token(id).await?.ok_or_else(|| AuthError::Unknown(id.to_owned()))?;
    let matches: bool = secret_hash(&record.salt, secret).as_bytes().ct_eq(record.secret_sha256.as_bytes()).into();
    if !matches {
        return Err(AuthError::WrongSecret(record.id));
    }
    if record.revoked.is_some() {
        return Err(AuthError::Revoked(record.id));
    }
    if record.expires.is_some_and(|at| at <= Timestamp::now()) {
        return Err(AuthError::Expired(record.id));
    }
    Ok(info(record)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_authenticates_until_revoked_and_only_with_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = create(&store, "team", Scope::Upload, None, Some("ci".into())).await.unwrap();
        assert!(token.secret.starts_with("larder_"));
        let stored = store.db().token(&token.info.id).await.unwrap().unwrap();
        assert!(!stored.secret_sha256.contains(&token.secret[30..]), "only a hash is stored");
        assert_eq!(authenticate(&store, &token.secret).await.unwrap(), token.info);

        let mut wrong = token.secret.clone();
        wrong.pop();
        wrong.push('x');
        assert!(matches!(authenticate(&store, &wrong).await, Err(AuthError::WrongSecret(_))));
        assert!(matches!(authenticate(&store, "hunter2").await, Err(AuthError::Malformed)));
        assert!(matches!(authenticate(&store, "larder_00_11").await, Err(AuthError::Unknown(_))));
        assert!(revoke(&store, &token.info.id).await.unwrap());
        let error = authenticate(&store, &token.secret).await.unwrap_err();
        assert!(matches!(error, AuthError::Revoked(_)));
        assert!(!error.to_string().contains(&token.secret), "{error}");
        assert_eq!(list(&store, Some("team")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let token = create(&store, "team", Scope::Read, Some(Duration::from_millis(1)), None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(matches!(authenticate(&store, &token.secret).await, Err(AuthError::Expired(_))));
    }

    #[test]
    fn scopes_include_the_lesser_ones() {
        assert!(Scope::Admin > Scope::Upload && Scope::Upload > Scope::Read);
        assert_eq!("upload".parse::<Scope>(), Ok(Scope::Upload));
        assert!("write".parse::<Scope>().is_err());
    }
}
