//! The indexes larder serves: the hosted index filled by `larder add`, and
//! the default index that layers it over the proxied upstreams.

pub mod hosted;
pub mod layered;
pub mod pages;

pub use hosted::{AddError, AddReport, add_paths};
pub use layered::{IndexError, Indexes, Lookup, PageSource};

pub use larder_index::LOCAL_INDEX;
