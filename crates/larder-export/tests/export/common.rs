//! Fixtures: stores filled with small generated wheels (local index) and
//! upstream projects written as the proxy would, and helpers to read trees
//! and bundles.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use larder_index::{NormalizedName, Sha256};
use larder_indexes::LOCAL_INDEX;
use larder_store::{FileRecord, PageState, Store, UpstreamMeta};

/// A store in a temporary directory (kept alive with it).
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl TestStore {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).await.unwrap();
        Self { dir, store }
    }

    /// The data directory of the store.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the filesystem store keeps a blob.
    pub fn blob_path(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.to_hex();
        self.data_dir().join("blobs/sha256").join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    /// Adds generated wheels to the local index, as `larder add` does.
    pub async fn add_wheels(&self, wheels: &[(&str, &str)]) {
        let source = self.dir.path().join("wheels");
        std::fs::create_dir_all(&source).unwrap();
        let paths: Vec<PathBuf> = wheels.iter().map(|(name, version)| write_wheel(&source, name, version)).collect();
        larder_indexes::add_paths(&self.store, LOCAL_INDEX, &paths).await.unwrap();
    }

    /// Lists an upstream project as the proxy would; only the files marked
    /// stored (and their metadata, when marked) get a blob.
    pub async fn upstream_project(&self, name: &str, files: &[UpstreamFile]) {
        let mut records = Vec::new();
        let wheels = self.dir.path().join("upstream-wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        for file in files {
            let version = file.filename.split('-').nth(1).unwrap().trim_end_matches(".tar.gz");
            // Wheels are real (an import checks their METADATA); other files
            // only need bytes of their own.
            let (content, metadata) = if file.filename.ends_with(".whl") {
                let built = std::fs::read(write_wheel(&wheels, name, version)).unwrap();
                (built, metadata_text(name, version).into_bytes())
            } else {
                let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
                (format!("content of {}", file.filename).into_bytes(), metadata.into_bytes())
            };
            if file.stored {
                self.store.blobs().put_bytes(&content, None).await.unwrap();
            }
            if file.metadata_stored {
                self.store.blobs().put_bytes(&metadata, None).await.unwrap();
            }
            records.push(FileRecord {
                filename: file.filename.to_owned(),
                version: version.to_owned(),
                sha256: Sha256::of(&content),
                size: Some(content.len() as u64),
                upload_time: Some(Timestamp::from_second(1_700_000_000).unwrap().into()),
                requires_python: Some(">=3.8".to_owned()),
                metadata_sha256: Some(Sha256::of(&metadata)),
                serve_metadata: file.filename.ends_with(".whl"),
                yanked: file.yanked.map(str::to_owned),
                gpg_sig: None,
                provenance: None,
                url: Some(format!("http://127.0.0.1:9/files/{}", file.filename)),
            });
        }
        let state = PageState {
            fetched_at: Timestamp::from_second(1_750_000_000).unwrap(),
            found: true,
            source_url: Some(format!("http://127.0.0.1:9/simple/{name}/")),
            etag: Some("\"v1\"".to_owned()),
            body_sha256: Some(Sha256::of(name.as_bytes())),
        };
        let meta = UpstreamMeta { versions: vec!["0.9".to_owned(), "1.0".to_owned()], ..UpstreamMeta::default() };
        let normalized = NormalizedName::new(name).unwrap();
        self.store.db().replace_page(&normalized, name, &state, &meta, &records).await.unwrap();
    }

    /// Every file of a tree exported from this store to a fresh directory.
    pub async fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        larder_export::export_tree(&self.store, dir.path(), Default::default()).await.unwrap();
        read_tree(dir.path())
    }
}

/// One upstream file of [`TestStore::upstream_project`].
#[derive(Clone, Copy)]
pub struct UpstreamFile {
    pub filename: &'static str,
    pub stored: bool,
    pub metadata_stored: bool,
    pub yanked: Option<&'static str>,
}

impl UpstreamFile {
    pub const fn stored(filename: &'static str) -> Self {
        Self { filename, stored: true, metadata_stored: true, yanked: None }
    }
}

/// The METADATA of a generated wheel.
pub fn metadata_text(name: &str, version: &str) -> String {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n")
}

/// The filename of a generated wheel.
pub fn wheel_filename(name: &str, version: &str) -> String {
    format!("{}-{version}-py3-none-any.whl", name.replace('-', "_"))
}

/// Writes a small valid wheel and returns its path.
pub fn write_wheel(dir: &Path, name: &str, version: &str) -> PathBuf {
    let path = dir.join(wheel_filename(name, version));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let dist_info = format!("{}-{version}.dist-info", name.replace('-', "_"));
    let module = name.replace('-', "_");
    let files = [
        (format!("{module}/__init__.py"), format!("VERSION = {version:?}\n")),
        (format!("{dist_info}/METADATA"), metadata_text(name, version)),
        (format!("{dist_info}/WHEEL"), "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_owned()),
        (format!("{dist_info}/RECORD"), String::new()),
    ];
    for (name, text) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// Every file below `dir`, by relative path.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The entry names of a plain tar bundle.
pub fn bundle_entries(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| String::from_utf8(entry.unwrap().path_bytes().into_owned()).unwrap())
        .collect()
}

/// What a store shows: its exported tree and its last serial.
pub async fn visible_state(store: &TestStore) -> (BTreeMap<String, Vec<u8>>, u64) {
    (store.tree().await, store.store.db().last_serial().await.unwrap())
}
