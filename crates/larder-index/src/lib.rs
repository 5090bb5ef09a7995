//! The index model of larder: project names, distribution filenames,
//! versions, core metadata, and the Simple API pages (PEP 503 HTML and
//! PEP 691 JSON) as data and as rendered text.
//!
//! This crate does no I/O. Everything above it (storage, the proxy, the
//! server) speaks in its types.

pub mod filename;
pub mod format;
pub mod html;
pub mod json;
pub mod metadata;
pub mod name;
pub mod simple;

pub use filename::{DistFilename, FilenameError, PackageType, SdistFilename, SdistFormat, WheelFilename};
pub use format::PageFormat;
pub use metadata::{CoreMetadata, MetadataError};
pub use name::{InvalidName, NormalizedName};
pub use pep440_rs::Version;
pub use simple::{
    CoreMetadataLink, FileEntry, ProjectList, ProjectListEntry, ProjectPage, ProjectStatus, Yanked,
};

/// Renders a project list in the given format.
pub fn render_project_list(list: &ProjectList, format: PageFormat) -> String {
    if format.is_html() { html::render_project_list(list) } else { json::render_project_list(list) }
}

/// Renders a project page in the given format.
pub fn render_project_page(page: &ProjectPage, format: PageFormat) -> String {
    if format.is_html() { html::render_project_page(page) } else { json::render_project_page(page) }
}
