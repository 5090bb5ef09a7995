//! The bundle format, on its own so that it can be fuzzed without the
//! store: how a bundle's manifest is signed and checked ([`signature`]).

pub mod signature;

pub use signature::{KeyError, ManifestSignature, PublicKey, SecretKey, SignatureError};
