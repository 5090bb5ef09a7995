//! A bundle's tar stream as `larder import` reads it (larder-bundle's
//! reader: manifest, signature, blob entries), every blob hashed as import
//! does. The first byte chooses whether a key is trusted (so a signature
//! is then required).
#![no_main]

use larder_bundle::{PublicKey, ReadError, read_bundle};
use larder_index::Hasher;
use libfuzzer_sys::fuzz_target;

/// The public key of the seed corpus's signed bundle (RFC 8410's example
/// key pair).
const TRUSTED: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else { return };
    let trusted: Vec<PublicKey> =
        if mode & 1 == 1 { vec![PublicKey::from_pem(TRUSTED).expect("a valid key")] } else { Vec::new() };
    let _ = read_bundle::<(), _>(
        tar,
        &trusted,
        |_| Ok(()),
        |(), mut entry| {
            let mut hasher = Hasher::default();
            entry.copy_to(|chunk| {
                hasher.update(chunk);
                Ok(())
            })?;
            if hasher.finish() != entry.digest {
                return Err(ReadError::Refused("digest mismatch".to_owned()));
            }
            Ok(())
        },
    );
});
