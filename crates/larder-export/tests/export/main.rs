//! Tests of `larder-export`: static trees, bundles and imports, on stores
//! built in temporary directories.

mod bundle;
mod common;
mod refused;
mod signed;
mod tree;
