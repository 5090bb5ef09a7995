//! Where the metadata database is: an SQLite file (the default, in the
//! data directory) or a PostgreSQL server, named by a URL. Its password
//! never leaves this type: `Display` and `Debug` show `***` instead.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use url::Url;

/// The name of the SQLite database file in a data directory.
pub const SQLITE_FILE: &str = "larder.db";

/// Where the metadata database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// An embedded SQLite database in this file (`sqlite://PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/NAME`).
    Postgres(Url),
}

/// A database URL larder cannot use.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    /// Not a URL at all.
    #[error("the database URL is not a URL ({0}): expected postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite://PATH")]
    NotUrl(#[source] url::ParseError),
    /// A scheme other than `postgres`, `postgresql` or `sqlite`.
    #[error("unsupported database URL scheme {0:?}: expected postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite://PATH")]
    Scheme(String),
}

impl DatabaseLocation {
    /// The default: the SQLite file in the data directory `root`.
    pub fn in_data_dir(root: &Path) -> DatabaseLocation {
        DatabaseLocation::Sqlite(root.join(SQLITE_FILE))
    }

    /// The URL with any password (in the user part or a `password`
    /// parameter) replaced by `***`, fit for logs and messages.
    fn redacted(url: &Url) -> Url {
        let mut shown = url.clone();
        if url.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        if url.query_pairs().any(|(key, _)| key == "password") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" { "***".to_owned() } else { value.into_owned() };
                    (key.into_owned(), value)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        shown
    }
}

impl FromStr for DatabaseLocation {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `sqlite://PATH` and `sqlite:PATH` both name a file (relative or
        // absolute), as sqlx reads them.
        if let Some(path) = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
            return Ok(DatabaseLocation::Sqlite(PathBuf::from(path)));
        }
        let url = Url::parse(text).map_err(DatabaseUrlError::NotUrl)?;
        match url.scheme() {
            "postgres" | "postgresql" => Ok(DatabaseLocation::Postgres(url)),
            other => Err(DatabaseUrlError::Scheme(other.to_owned())),
        }
    }
}

impl std::fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseLocation::Postgres(url) => write!(f, "{}", DatabaseLocation::redacted(url)),
        }
    }
}

impl std::fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseLocation({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        for text in [
            "postgres://larder:s3cret@db.example:5432/larder",
            "postgresql://larder@db.example/larder?sslmode=require&password=s3cret",
        ] {
            let location: DatabaseLocation = text.parse().unwrap();
            assert!(matches!(location, DatabaseLocation::Postgres(_)));
            for shown in [location.to_string(), format!("{location:?}")] {
                assert!(!shown.contains("s3cret"), "{shown}");
                assert!(shown.contains("***") && shown.contains("db.example"), "{shown}");
            }
        }
        let plain: DatabaseLocation = "postgres://larder@127.0.0.1/x".parse().unwrap();
        assert_eq!(plain.to_string(), "postgres://larder@127.0.0.1/x");
    }

    #[test]
    fn sqlite_urls_name_files_and_other_schemes_are_refused() {
        assert_eq!(
            "sqlite:///var/lib/larder/larder.db".parse::<DatabaseLocation>().unwrap(),
            DatabaseLocation::Sqlite("/var/lib/larder/larder.db".into())
        );
        assert_eq!("sqlite:meta.db".parse::<DatabaseLocation>().unwrap(), DatabaseLocation::Sqlite("meta.db".into()));
        let err = "mysql://root@localhost/x".parse::<DatabaseLocation>().unwrap_err();
        assert!(err.to_string().contains("\"mysql\""), "{err}");
        assert!("not a url".parse::<DatabaseLocation>().is_err());
    }
}
