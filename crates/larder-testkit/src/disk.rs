//! A small disk for disk-full tests: a tmpfs of a few megabytes mounted on
//! a fresh temporary directory (needs root, as CI and the dev machine run),
//! unmounted when the guard drops, plus a filler file that takes every free
//! byte and gives it back on demand.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted (and its mount point removed) on drop.
#[derive(Debug)]
pub struct SmallDisk {
    dir: Option<tempfile::TempDir>,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` MiB. Panics (with the reason) when
    /// the mount fails: the disk-full tests must not pass by skipping.
    pub fn mount(megabytes: u32) -> Self {
        let dir = crate::temp_dir("disk");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0755"), "larder-test-tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "mounting a tmpfs for a disk-full test failed (these tests need root): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self { dir: Some(dir) }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted").path()
    }

    /// Fills every free byte with a file at `<mount>/filler`, returned so
    /// the test can give the space back with [`Filler::release`].
    pub fn fill(&self) -> Filler {
        let path = self.path().join("filler");
        let mut file = File::create(&path).expect("create filler");
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut small = [0u8; 512];
        small.fill(0xA5);
        // Large chunks first, then single sectors for the tail.
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&small).is_ok() {}
        let _ = file.sync_all();
        Filler { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let status = Command::new("umount").arg("-l").arg(dir.path()).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("larder-testkit: could not unmount {}: {status:?}", dir.path().display());
            }
            drop(dir);
        }
    }
}

/// The file that takes a [`SmallDisk`]'s free space.
#[derive(Debug)]
pub struct Filler {
    path: PathBuf,
}

impl Filler {
    /// Deletes the filler: the disk has room again.
    pub fn release(self) {
        std::fs::remove_file(&self.path).expect("remove filler");
    }
}
