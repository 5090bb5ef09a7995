//! The free-space reserve: below it, the proxy takes on no new upstream
//! work (a page it has never stored, a file not stored yet) and answers
//! 507 instead, while everything already stored is still served. Any
//! client can make larder fetch, so without a reserve any client could
//! fill the disk; with it, the database and the stored files keep room.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use larder_store::Store;

use crate::ProxyError;

/// How long one reading of the free space is trusted.
const RECHECK: Duration = Duration::from_secs(1);

/// The reserve and its last reading.
#[derive(Debug)]
pub(crate) struct Reserve {
    min_free: u64,
    last: Mutex<Option<Reading>>,
}

#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Instant,
    free: u64,
}

impl Reserve {
    /// A reserve of `min_free` bytes (0: none).
    pub(crate) fn new(min_free: u64) -> Self {
        Self { min_free, last: Mutex::new(None) }
    }

    /// `Ok` when there is room for new upstream work on `store`'s disk,
    /// else the 507 to answer. A disk whose free space cannot be read is
    /// taken to have room.
    pub(crate) fn check(&self, store: &Store, what: &str) -> Result<(), ProxyError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let mut last = self.last.lock().expect("never poisoned");
        let reading = match *last {
            Some(reading) if reading.at.elapsed() < RECHECK => reading,
            previous => {
                let Ok(free) = store.free_bytes() else { return Ok(()) };
                let reading = Reading { at: Instant::now(), free };
                let was_low = previous.map(|p| p.free < self.min_free);
                match (was_low, free < self.min_free) {
                    (Some(false) | None, true) => tracing::warn!(
                        free,
                        reserve = self.min_free,
                        "free space is below the reserve: new upstream fetches are refused with 507; stored content is still served"
                    ),
                    (Some(true), false) => {
                        tracing::info!(free, reserve = self.min_free, "free space is above the reserve again")
                    }
                    _ => {}
                }
                *last = Some(reading);
                reading
            }
        };
        if reading.free < self.min_free {
            return Err(ProxyError::InsufficientStorage {
                what: what.to_owned(),
                free: reading.free,
                reserve: self.min_free,
            });
        }
        Ok(())
    }
}
