//! The indexes larder serves: the hosted index filled by `larder add`, the
//! default index that layers it over the proxied upstreams, and the named
//! indexes (hosted, mirror, layered) with their uploads, tokens, access
//! rules and release-age policy.

pub mod access;
pub mod file_access;
pub mod hosted;
pub mod json_api;
pub mod layered;
pub mod listing;
pub mod manage;
pub mod named;
pub mod pages;
pub mod registry;
pub mod stored;
pub mod tokens;
pub mod upload;

pub use access::{Denied, authorize, authorize_file};
pub use file_access::FileAccess;
pub use hosted::{AddError, AddReport, add_paths};
pub use larder_store::{BlobError, BlobHandle, ChangeListener, ChangeNotice, DbError, Unavailable};
pub use layered::{IndexError, Indexes, Lookup, PageSource};
pub use listing::ProjectListing;
pub use manage::{Change, ChangeError, Target};
pub use named::ProjectFiles;
pub use registry::{Registry, RegistryError};
pub use stored::{StoredView, ViewProject};
pub use tokens::{Scope, TokenInfo};
pub use upload::{DEFAULT_MAX_UPLOAD_BYTES, Upload, UploadError, Uploaded};

pub use larder_index::LOCAL_INDEX;
pub use larder_store::PROVENANCE_SUFFIX;
