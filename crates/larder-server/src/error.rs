//! Error responses: a status and a one-line reason in plain text.

use std::io::ErrorKind;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use larder_indexes::{BlobError, DbError, IndexError};
use larder_proxy::ProxyError;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
}

impl ApiError {
    /// An error with this status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }

    /// 404 with a reason.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 401 with a reason; the response carries the Basic challenge.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 500 for a failure of the store; the details go to the log.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the larder log")
    }

    /// A failure of the blob store: 503 when the store could not answer
    /// (an object store down: the request may succeed later, and the log
    /// has the details), else 500.
    pub fn blob(error: &BlobError) -> Self {
        if !error.is_unavailable() {
            return Self::internal(error);
        }
        tracing::warn!(%error, "blob store unavailable; answered with 503");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("the blob store is unavailable, try again later: {error}"))
    }

    /// For a failure of the metadata database: 503 with the reason while
    /// it cannot be reached (a retry may succeed once it is back), else
    /// [`ApiError::internal`].
    pub fn database(error: &DbError) -> Self {
        if !error.is_unavailable() {
            return Self::internal(error);
        }
        tracing::warn!(%error, "metadata database unavailable; answered with 503");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the metadata database is unavailable, try again later: {error}"),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.reason;
        body.push('\n');
        let mut response =
            (self.status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"larder\""),
            );
        }
        response
    }
}

impl From<IndexError> for ApiError {
    fn from(error: IndexError) -> Self {
        Self::from(&error)
    }
}

impl From<&IndexError> for ApiError {
    fn from(error: &IndexError) -> Self {
        if let Some(blob) = unavailable_blob_store(error) {
            return Self::blob(blob);
        }
        if disk_full(error) {
            tracing::warn!(%error, "the disk is full; answered with 507");
            return Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("the disk is full: larder cannot store what this request needs, try again later ({error})"),
            );
        }
        match error {
            IndexError::NotFound(reason) => Self::not_found(reason.clone()),
            IndexError::Db(error) => Self::database(error),
            IndexError::Blob(error) => Self::internal(error),
            IndexError::Cache(error) => Self::internal(error),
            IndexError::Render(error) => Self::internal(error),
            IndexError::Proxy(error) => match error.unshared() {
                ProxyError::NotStored(_) | ProxyError::NotAvailable(_) => Self::not_found(error.to_string()),
                ProxyError::Upstream(_)
                | ProxyError::Download(_)
                | ProxyError::Metadata { .. }
                | ProxyError::CoreMetadata(_)
                | ProxyError::Ranges(_) => {
                    tracing::warn!(%error, "upstream failure answered with 502");
                    Self::new(StatusCode::BAD_GATEWAY, error.to_string())
                }
                ProxyError::InsufficientStorage { .. } => {
                    Self::new(StatusCode::INSUFFICIENT_STORAGE, error.to_string())
                }
                ProxyError::Db(db) => Self::database(db),
                ProxyError::Blob(_) | ProxyError::Shared(_) => Self::internal(error),
            },
        }
    }
}

/// Whether `error` comes down to a full disk: the database's (reported by
/// SQLite or PostgreSQL) or the file system's (ENOSPC / EDQUOT under a
/// blob write), anywhere in its chain of sources.
fn disk_full(error: &IndexError) -> bool {
    let db = match error {
        IndexError::Db(db) => Some(db),
        IndexError::Proxy(proxy) => match proxy.unshared() {
            ProxyError::Db(db) => Some(db),
            _ => None,
        },
        _ => None,
    };
    let mut chain = std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source());
    db.is_some_and(DbError::is_disk_full)
        || chain.any(|e| {
            e.downcast_ref::<DbError>().is_some_and(DbError::is_disk_full)
                || e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
        })
}

/// The blob store failure in `error` (directly, or as the source of a
/// download that could not be published), when the store could not answer.
fn unavailable_blob_store(error: &IndexError) -> Option<&BlobError> {
    let direct = match error {
        IndexError::Blob(blob) => Some(blob),
        IndexError::Proxy(proxy) => match proxy.unshared() {
            ProxyError::Blob(blob) => Some(blob),
            _ => None,
        },
        _ => None,
    };
    // Transparent wrappers hand out their inner error's source: walk it.
    let mut sources = std::iter::successors(std::error::Error::source(error), |e| e.source());
    direct
        .filter(|blob| blob.is_unavailable())
        .or_else(|| sources.find_map(|e| e.downcast_ref::<BlobError>().filter(|blob| blob.is_unavailable())))
}
