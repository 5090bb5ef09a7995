//! `larder export --to DIR`: the view as a static tree.
//!
//! ```text
//! DIR/simple/index.html, index.json             the project list
//! DIR/simple/<project>/index.html, index.json   each project page
//! DIR/files/<sha256>/<filename>                 each file
//! DIR/files/<sha256>/<filename>.metadata        its core metadata (PEP 658)
//! ```
//!
//! Pages are the server's (same relative links, hashes and metadata
//! attributes), so pip and uv install from `file://DIR/simple/` or from any
//! web server serving DIR. Files are hard links to the store's blobs where
//! that works and serves ([`Placement`]), else copies; nothing ever writes
//! into them.
//!
//! Every file is written under a temporary name and renamed into place, so
//! a reader never sees a partial file. A re-export writes only what
//! changed: a page whose bytes are the same and a file already there with
//! the blob's size are left alone. Files are placed before the pages that
//! link them, and what is gone is removed after the pages stop linking it.
//! Two exports to one tree take turns (a lock file in DIR).
//! larder owns `DIR/simple` and `DIR/files` (anything else there is
//! removed); the rest of DIR is left alone.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use larder_index::{PageFormat, ProjectList, ProjectListEntry, Sha256};
use larder_indexes::ViewProject;
use larder_store::{BlobError, Blobs, Store};
use tokio::runtime::Handle;

use crate::Error;
use crate::atomic::{persist, temp_in};
use crate::error::io_error;
use crate::progress::Progress;
use crate::view::{View, page};

/// The page files of every directory of `simple/`.
const PAGE_FILES: [(&str, PageFormat); 2] = [("index.html", PageFormat::Html), ("index.json", PageFormat::Json)];

/// The lock file in the tree's root (left alone by pruning, like anything
/// outside `simple/` and `files/`).
const LOCK_FILE: &str = ".larder-export.lock";

/// How to write a tree.
#[derive(Clone, Debug, Default)]
pub struct TreeOptions {
    /// How files get into the tree.
    pub placement: Placement,
    /// The index to export (the default index when `None`).
    pub index: Option<String>,
}

/// How files get into the tree. A hard link costs no space, but it is the
/// blob itself: it has the blob's owner and mode, and it cannot cross
/// filesystems (then files are copied whatever the choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Hard-link a blob that everyone may read, so that a web server
    /// running as another user can serve it; copy the others (a copy is
    /// readable by all).
    #[default]
    Auto,
    /// Hard-link every blob, even one only its owner may read (a tree read
    /// through `file://` by the store's own user).
    Link,
    /// Copy every file: the tree shares nothing with the store.
    Copy,
}

/// What a tree export did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeReport {
    /// Projects in the tree.
    pub projects: u64,
    /// Distribution files in the tree.
    pub files: u64,
    /// Pages written (new or changed).
    pub pages_written: u64,
    /// Files (distributions and `.metadata`) hard-linked into place.
    pub files_linked: u64,
    /// Files copied into place.
    pub files_copied: u64,
    /// Files and directories removed because the store no longer has them.
    pub removed: u64,
}

impl TreeReport {
    /// Everything written: pages, links and copies.
    pub fn writes(&self) -> u64 {
        self.pages_written + self.files_linked + self.files_copied
    }
}

/// Exports the view of `store` as a static tree in `dir` (created when
/// missing), updating a tree exported before.
pub async fn export_tree(store: &Store, dir: &Path, options: TreeOptions) -> Result<TreeReport, Error> {
    let mut view = View::new(store, options.index.as_deref()).await?;
    let (root, blobs, runtime) = (dir.to_owned(), store.blobs().clone(), Handle::current());
    let placement = options.placement;
    let mut writer = tokio::task::spawn_blocking(move || TreeWriter::new(root, blobs, runtime, placement))
        .await
        .expect("the tree writer does not panic")?;
    loop {
        let batch = view.next_batch().await?;
        if batch.is_empty() {
            break;
        }
        writer = tokio::task::spawn_blocking(move || {
            batch.iter().try_for_each(|project| writer.project(project)).map(|()| writer)
        })
        .await
        .expect("the tree writer does not panic")?;
    }
    tokio::task::spawn_blocking(move || writer.finish()).await.expect("the tree writer does not panic")
}

/// Writes the tree, project by project, remembering what belongs in it.
struct TreeWriter {
    /// Held while the tree is written: one export at a time per tree.
    _lock: fs::File,
    root: PathBuf,
    blobs: Blobs,
    /// To open blobs from the writer's blocking thread.
    runtime: Handle,
    placement: Placement,
    /// False once a hard link failed (another filesystem): copy from then on.
    can_link: bool,
    report: TreeReport,
    progress: Progress,
    list: Vec<ProjectListEntry>,
    /// Project directories that belong in `simple/`.
    projects: HashSet<String>,
    /// Names that belong in each `files/<sha256>/` directory.
    files: HashMap<String, Vec<String>>,
}

impl TreeWriter {
    /// Creates the tree's directories and waits for its lock.
    fn new(root: PathBuf, blobs: Blobs, runtime: Handle, placement: Placement) -> Result<Self, Error> {
        for dir in [root.join("simple"), root.join("files")] {
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        let path = root.join(LOCK_FILE);
        let lock =
            fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_error(&path))?;
        lock.lock().map_err(io_error(&path))?;
        Ok(Self {
            _lock: lock,
            root,
            blobs,
            runtime,
            placement,
            can_link: placement != Placement::Copy,
            report: TreeReport::default(),
            progress: Progress::new("export", None),
            list: Vec::new(),
            projects: HashSet::new(),
            files: HashMap::new(),
        })
    }

    /// Places a project's files, then writes its pages.
    fn project(&mut self, project: &ViewProject) -> Result<(), Error> {
        let mut bytes = 0;
        let files = &project.record.files;
        for file in files {
            let hex = file.sha256.to_hex();
            let dir = self.root.join("files").join(&hex);
            fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            bytes += self.place(&file.sha256, &dir.join(&file.filename))?;
            let mut names = vec![file.filename.clone()];
            if let (true, Some(metadata)) = (file.serve_metadata, &file.metadata_sha256) {
                let name = format!("{}.metadata", file.filename);
                bytes += self.place(metadata, &dir.join(&name))?;
                names.push(name);
            }
            self.files.entry(hex).or_default().extend(names);
        }
        let dir = self.root.join("simple").join(project.name.as_str());
        let page = page(project);
        for (name, format) in PAGE_FILES {
            self.write_page(&dir.join(name), larder_index::render_project_page(&page, format).as_bytes())?;
        }
        self.projects.insert(project.name.to_string());
        self.list.push(ProjectListEntry {
            display_name: project.record.display_name.clone(),
            name: project.name.clone(),
            last_serial: None,
        });
        self.report.projects += 1;
        self.report.files += files.len() as u64;
        self.progress.add(files.len() as u64, bytes);
        Ok(())
    }

    /// Writes the project list, removes what is gone, and reports.
    fn finish(mut self) -> Result<TreeReport, Error> {
        let list = ProjectList { projects: std::mem::take(&mut self.list), last_serial: None };
        let simple = self.root.join("simple");
        for (name, format) in PAGE_FILES {
            self.write_page(&simple.join(name), larder_index::render_project_list(&list, format).as_bytes())?;
        }
        let is_page = |name: &str| PAGE_FILES.iter().any(|(page, _)| *page == name);
        let (projects, files) = (std::mem::take(&mut self.projects), std::mem::take(&mut self.files));
        self.prune(
            &simple,
            |name, inner| match inner {
                None => projects.contains(name),
                Some(inner) => is_page(inner),
            },
            is_page,
        )?;
        self.prune(
            &self.root.join("files"),
            |name, inner| match (files.get(name), inner) {
                (Some(names), Some(inner)) => names.iter().any(|n| n == inner),
                (found, _) => found.is_some(),
            },
            |_| false,
        )?;
        Ok(self.report)
    }

    /// Puts the blob `sha256` at `target` (a hard link or a copy, see
    /// [`Placement`]) unless a file of its size is there already (and is
    /// not a link where a copy is wanted). Returns the bytes placed.
    fn place(&mut self, sha256: &Sha256, target: &Path) -> Result<u64, Error> {
        let blob = self.runtime.block_on(self.blobs.open(sha256))?.ok_or(BlobError::Gone(*sha256))?;
        let size = blob.size();
        // Only a local blob can be linked; its mode says who may read it.
        let local = blob.local_file().map(fs::File::metadata).transpose().map_err(io_error(target))?;
        let readable_by_all = local.as_ref().is_some_and(|m| m.permissions().mode() & 0o044 == 0o044);
        let link = self.can_link && local.is_some() && (self.placement == Placement::Link || readable_by_all);
        if let Ok(existing) = fs::symlink_metadata(target) {
            let is_link = local.as_ref().is_some_and(|m| (existing.dev(), existing.ino()) == (m.dev(), m.ino()));
            if existing.is_file() && existing.len() == size && (link || !is_link) {
                return Ok(0);
            }
        }
        if link {
            if self.runtime.block_on(self.blobs.hard_link(sha256, target))? {
                self.report.files_linked += 1;
                return Ok(size);
            }
            self.can_link = false;
        }
        let dir = target.parent().expect("tree paths have a parent");
        let temp = temp_in(dir)?;
        let mut out = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(io_error(target))?);
        self.runtime.block_on(blob.copy_to(&mut out))?;
        persist(temp, target)?;
        self.report.files_copied += 1;
        Ok(size)
    }

    /// Writes a page unless the same bytes are there already.
    fn write_page(&mut self, target: &Path, bytes: &[u8]) -> Result<(), Error> {
        if fs::read(target).is_ok_and(|existing| existing == bytes) {
            return Ok(());
        }
        let dir = target.parent().expect("tree paths have a parent");
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut temp = temp_in(dir)?;
        temp.write_all(bytes).map_err(io_error(target))?;
        persist(temp, target)?;
        self.report.pages_written += 1;
        Ok(())
    }

    /// Removes every entry of `dir` that does not belong: a directory
    /// `NAME` stays if `keep_dir(NAME, None)`, and keeps an entry `INNER`
    /// if `keep_dir(NAME, Some(INNER))`; a file `NAME` stays if
    /// `keep_file(NAME)`.
    fn prune(
        &mut self,
        dir: &Path,
        keep_dir: impl Fn(&str, Option<&str>) -> bool,
        keep_file: impl Fn(&str) -> bool,
    ) -> Result<(), Error> {
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().map_err(io_error(&path))?.is_dir() {
                if !keep_file(&name) {
                    self.remove(&path)?;
                }
            } else if !keep_dir(&name, None) {
                self.remove(&path)?;
            } else {
                for inner in fs::read_dir(&path).map_err(io_error(&path))? {
                    let inner = inner.map_err(io_error(&path))?;
                    if !keep_dir(&name, Some(&inner.file_name().to_string_lossy())) {
                        self.remove(&inner.path())?;
                    }
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> Result<(), Error> {
        let result = if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        result.map_err(io_error(path))?;
        self.report.removed += 1;
        Ok(())
    }
}
