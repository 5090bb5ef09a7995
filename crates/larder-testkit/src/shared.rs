//! The shared setup: with `LARDER_TEST_NODES=N` (N > 1), every larder
//! process a test starts keeps its metadata in a PostgreSQL database and
//! its blobs under an S3 bucket prefix of the test servers (see
//! [`crate::servers`]) instead of in its data directory, and every
//! `larder serve` runs as N nodes on them behind a round-robin balancer
//! (see [`crate::larder::Server`]). `scripts/test` runs the proxy, mirror
//! and upload test families a second time so.
//!
//! A test names its store by its data directory (`--data-dir DIR`): the
//! first larder command for a directory gets a fresh database and bucket
//! prefix, every later one (the CLI, the server, its other nodes) the same
//! ones. They are dropped once the directory is gone.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock, Mutex};

use url::Url;

use crate::servers::{TestDatabase, TestS3};

/// The variable that asks for the shared setup: how many nodes each
/// `larder serve` runs as (unset or 1: the default setup).
pub const NODES_VAR: &str = "LARDER_TEST_NODES";

/// How many nodes each `larder serve` of a test runs as: 1 unless
/// `LARDER_TEST_NODES` says more.
pub fn node_count() -> usize {
    static COUNT: LazyLock<usize> = LazyLock::new(|| match std::env::var(NODES_VAR) {
        Ok(text) if !text.is_empty() => {
            text.parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| panic!("{NODES_VAR}={text:?} is not a count"))
        }
        _ => 1,
    });
    *COUNT
}

/// The shared store of one data directory: a database of its own and a
/// bucket prefix of its own.
#[derive(Debug)]
pub struct Place {
    database: TestDatabase,
    blobs: Url,
    s3: TestS3,
}

impl Place {
    /// The variables that point a larder process at this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.s3.aws_env();
        env.push(("LARDER_DATABASE", self.database.url().to_string()));
        env.push(("LARDER_BLOBS", self.blobs.to_string()));
        env
    }

    /// The digests of the blobs stored, with whether each object's content
    /// hashes to its name.
    pub fn blobs(&self) -> Vec<(String, bool)> {
        self.digests()
            .into_iter()
            .map(|digest| {
                let sound = crate::sha256_hex(&self.s3.get(&self.blobs, &blob_key(&digest))) == digest;
                (digest, sound)
            })
            .collect()
    }

    /// The digests of the blobs stored, sorted.
    pub fn digests(&self) -> Vec<String> {
        let keys = self.s3.keys(&self.blobs);
        keys.iter()
            .filter_map(|key| key.strip_prefix("blobs/sha256/"))
            .filter_map(|rest| rest.rsplit('/').next())
            .map(str::to_owned)
            .collect()
    }
}

/// The object key (under a store's prefix) of the blob with this digest.
fn blob_key(sha256: &str) -> String {
    format!("blobs/sha256/{}/{}/{sha256}", &sha256[0..2], &sha256[2..4])
}

/// The places handed out, by data directory.
static PLACES: LazyLock<Mutex<BTreeMap<PathBuf, Arc<Place>>>> = LazyLock::new(Mutex::default);

/// The shared store of `data_dir` in the shared setup (`None` in the
/// default one), made on first use. Places whose data directory is gone
/// are dropped (their database with them) on the way.
pub fn place_of(data_dir: &Path) -> Option<Arc<Place>> {
    if node_count() < 2 {
        return None;
    }
    let key = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let mut places = PLACES.lock().unwrap_or_else(|e| e.into_inner());
    places.retain(|dir, _| dir.exists());
    let place = places.entry(key).or_insert_with(|| {
        let s3 = TestS3::from_env();
        Arc::new(Place { database: TestDatabase::create("nodes"), blobs: s3.fresh_prefix("nodes"), s3 })
    });
    Some(Arc::clone(place))
}

/// In the shared setup, points a larder command with `--data-dir DIR` at
/// the shared store of `DIR` and returns true; leaves alone any other
/// command, and one that names its own database or blobs.
pub fn join(cmd: &mut Command) -> bool {
    if node_count() < 2 || Path::new(cmd.get_program()).file_name() != Some(OsStr::new("larder")) {
        return false;
    }
    let args: Vec<&OsStr> = cmd.get_args().collect();
    let names_own =
        args.iter().any(|a| a.to_str().is_some_and(|a| a.starts_with("--database") || a.starts_with("--blobs")))
            || cmd.get_envs().any(|(key, value)| key == "LARDER_DATABASE" && value.is_some());
    let place = if names_own { None } else { data_dir_arg(&args).and_then(|dir| place_of(Path::new(dir))) };
    match place {
        Some(place) => {
            cmd.envs(place.env());
            true
        }
        None => false,
    }
}

/// The value of `--data-dir DIR` or `--data-dir=DIR` in a command line.
pub fn data_dir_arg<'a>(args: &[&'a OsStr]) -> Option<&'a OsStr> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == "--data-dir" {
            return args.get(i + 1).copied();
        }
        arg.to_str()?.strip_prefix("--data-dir=").map(OsStr::new)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_data_dir_in_either_spelling() {
        let args = ["serve", "--data-dir", "/d", "--listen", "x"].map(OsStr::new);
        assert_eq!(data_dir_arg(&args), Some(OsStr::new("/d")));
        let args = ["add", "--data-dir=/e"].map(OsStr::new);
        assert_eq!(data_dir_arg(&args), Some(OsStr::new("/e")));
        assert_eq!(data_dir_arg(&["client-config"].map(OsStr::new)), None);
    }
}
