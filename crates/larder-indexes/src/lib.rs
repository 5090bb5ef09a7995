//! The indexes larder serves. For now one hosted index, [`LOCAL_INDEX`],
//! filled by `larder add`; the proxy and mirror indexes join it later.

pub mod hosted;
pub mod pages;

pub use hosted::{add_paths, AddError, AddReport};

/// The name of the hosted index that `larder add` fills.
pub const LOCAL_INDEX: &str = "local";
