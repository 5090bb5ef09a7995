//! Tiny, valid Python distributions built in pure Rust.
//!
//! [`Wheel`] writes a wheel that pip and uv install (`METADATA`, `WHEEL`,
//! `RECORD` with urlsafe-base64 SHA-256 digests, one module package).
//! [`Sdist`] writes a `.tar.gz` source distribution whose `pyproject.toml`
//! names an in-tree PEP 517 backend (`_backend/fixture_backend.py`, standard
//! library only), so pip and uv build it without any build dependency from
//! an index.
//!
//! Both builders are deterministic: the same builder writes the same bytes,
//! so a fixture's SHA-256 is stable within and across runs. Builders can
//! also produce deliberately broken files (a wheel without `METADATA`, or
//! whose `METADATA` disagrees with its filename) for negative tests.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::hash::{record_digest, sha256_hex};

/// The PEP 503 normalized form of a project name: runs of `-`, `_`, `.`
/// become one `-`, and the result is lowercased.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// The name as it appears in distribution filenames and `.dist-info`
/// directories: normalized, with `-` replaced by `_`.
pub fn escape_name(name: &str) -> String {
    normalize(name).replace('-', "_")
}

/// Which kind of distribution a [`Built`] file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistKind {
    /// A `.whl`.
    Wheel,
    /// A `.tar.gz` source distribution.
    Sdist,
    /// Any other file an index lists (an egg, a Windows installer, an
    /// RPM), built by [`Built::other`].
    Other,
}

/// A distribution file written to disk by [`Wheel::build`] or
/// [`Sdist::build`].
#[derive(Clone, Debug)]
pub struct Built {
    /// Where the file was written.
    pub path: PathBuf,
    /// Its filename (the last component of `path`).
    pub filename: String,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// The normalized project name the fixture was built for.
    pub project: String,
    /// The version the fixture was built for.
    pub version: String,
    /// For a wheel, the exact bytes of its `*.dist-info/METADATA` (what
    /// `<url>.metadata` must serve); for an sdist, the bytes of `PKG-INFO`.
    /// `None` for a wheel built [`Wheel::without_metadata`].
    pub metadata: Option<Vec<u8>>,
}

impl Built {
    /// Writes `bytes` as `filename` in `dir`: a file of `project` that is
    /// neither a wheel nor an sdist larder can read (`foo-1.0-py2.7.egg`,
    /// `foo-1.0.win32.exe`, `foo-1.0-1.tar.gz`), with no metadata.
    pub fn other(dir: &Path, project: &str, filename: &str, bytes: &[u8]) -> Built {
        Built {
            path: write_file(dir, filename, bytes),
            filename: filename.to_owned(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            kind: DistKind::Other,
            project: normalize(project),
            version: String::new(),
            metadata: None,
        }
    }

    /// The file's bytes, read back from disk.
    pub fn bytes(&self) -> Vec<u8> {
        fs::read(&self.path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", self.path.display()))
    }

    /// The SHA-256 of the wheel's `METADATA` (what PEP 658 `core-metadata`
    /// advertises). `None` for sdists and metadata-less wheels.
    pub fn core_metadata_sha256(&self) -> Option<String> {
        match self.kind {
            DistKind::Wheel => self.metadata.as_deref().map(sha256_hex),
            DistKind::Sdist | DistKind::Other => None,
        }
    }

    /// True for wheels.
    pub fn is_wheel(&self) -> bool {
        self.kind == DistKind::Wheel
    }
}

/// Writes `bytes` as `dir/filename` (creating `dir`) and returns the path:
/// for non-distribution files such as `README.txt` in negative tests.
pub fn write_file(dir: &Path, filename: &str, bytes: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(filename);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Core-metadata fields shared by both builders.
#[derive(Clone, Debug)]
struct Meta {
    name: String,
    version: String,
    metadata_version: String,
    summary: String,
    requires_python: Option<String>,
    requires_dist: Vec<String>,
    /// Overrides for the `Name` / `Version` fields written into the
    /// metadata (the filename keeps the builder's name and version).
    name_field: Option<String>,
    version_field: Option<String>,
}

impl Meta {
    fn new(name: &str, version: &str, metadata_version: &str) -> Meta {
        Meta {
            name: name.to_owned(),
            version: version.to_owned(),
            metadata_version: metadata_version.to_owned(),
            summary: format!("larder test fixture {name} {version}"),
            requires_python: None,
            requires_dist: Vec::new(),
            name_field: None,
            version_field: None,
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("Metadata-Version: {}\n", self.metadata_version));
        out.push_str(&format!("Name: {}\n", self.name_field.as_deref().unwrap_or(&self.name)));
        out.push_str(&format!("Version: {}\n", self.version_field.as_deref().unwrap_or(&self.version)));
        out.push_str(&format!("Summary: {}\n", self.summary));
        if let Some(rp) = &self.requires_python {
            out.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for req in &self.requires_dist {
            out.push_str(&format!("Requires-Dist: {req}\n"));
        }
        out.push('\n');
        out.push_str(&format!("Fixture distribution {} {}, built by larder-testkit.\n", self.name, self.version));
        out
    }

    fn module_source(&self, extra: &str) -> String {
        format!(
            "\"\"\"larder test fixture {name}.\"\"\"\n__version__ = \"{version}\"\nPROJECT = \"{name}\"\n{extra}",
            name = self.name,
            version = self.version,
        )
    }
}

/// What to put where `METADATA` belongs in a [`Wheel`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum MetadataMode {
    Normal,
    Missing,
}

/// Builder for a pure-Python wheel.
///
/// ```no_run
/// # use larder_testkit::Wheel;
/// # let dir = std::path::Path::new("/tmp");
/// let built = Wheel::new("fixture-app", "1.0")
///     .requires_dist("fixture-lib>=1.0")
///     .requires_python(">=3.8")
///     .build(dir);
/// assert_eq!(built.filename, "fixture_app-1.0-py3-none-any.whl");
/// ```
#[derive(Clone, Debug)]
pub struct Wheel {
    meta: Meta,
    build_tag: Option<String>,
    python_tag: String,
    abi_tag: String,
    platform_tag: String,
    module_extra: String,
    metadata: MetadataMode,
    extra_files: Vec<(String, Vec<u8>)>,
}

impl Wheel {
    /// A `py3-none-any` wheel of `name` `version` holding one package
    /// (`escape_name(name)/__init__.py`) that defines `__version__`.
    pub fn new(name: &str, version: &str) -> Wheel {
        Wheel {
            meta: Meta::new(name, version, "2.1"),
            build_tag: None,
            python_tag: "py3".into(),
            abi_tag: "none".into(),
            platform_tag: "any".into(),
            module_extra: String::new(),
            metadata: MetadataMode::Normal,
            extra_files: Vec::new(),
        }
    }

    /// Sets the compatibility tags (each may be a `.`-joined set).
    pub fn tags(mut self, python: &str, abi: &str, platform: &str) -> Wheel {
        self.python_tag = python.into();
        self.abi_tag = abi.into();
        self.platform_tag = platform.into();
        self
    }

    /// Sets a build tag (must start with a digit).
    pub fn build_tag(mut self, tag: &str) -> Wheel {
        self.build_tag = Some(tag.into());
        self
    }

    /// Adds a `Requires-Dist` line (a PEP 508 requirement).
    pub fn requires_dist(mut self, requirement: &str) -> Wheel {
        self.meta.requires_dist.push(requirement.into());
        self
    }

    /// Sets `Requires-Python`.
    pub fn requires_python(mut self, specifier: &str) -> Wheel {
        self.meta.requires_python = Some(specifier.into());
        self
    }

    /// Sets `Summary`.
    pub fn summary(mut self, summary: &str) -> Wheel {
        self.meta.summary = summary.into();
        self
    }

    /// Sets `Metadata-Version` (default `2.1`).
    pub fn metadata_version(mut self, version: &str) -> Wheel {
        self.meta.metadata_version = version.into();
        self
    }

    /// Appends Python source to the package's `__init__.py`.
    pub fn module_source(mut self, source: &str) -> Wheel {
        self.module_extra.push_str(source);
        self
    }

    /// Adds another file to the archive (path inside the wheel).
    pub fn extra_file(mut self, path: &str, bytes: &[u8]) -> Wheel {
        self.extra_files.push((path.into(), bytes.to_vec()));
        self
    }

    /// Writes `name` into the `Name:` field of `METADATA` instead of the
    /// project's name (the filename is unchanged): a broken wheel.
    pub fn metadata_name_field(mut self, name: &str) -> Wheel {
        self.meta.name_field = Some(name.into());
        self
    }

    /// Writes `version` into the `Version:` field of `METADATA` instead of
    /// the wheel's version (the filename is unchanged): a broken wheel.
    pub fn metadata_version_field(mut self, version: &str) -> Wheel {
        self.meta.version_field = Some(version.into());
        self
    }

    /// Leaves `METADATA` out of the `.dist-info` directory: a broken wheel.
    pub fn without_metadata(mut self) -> Wheel {
        self.metadata = MetadataMode::Missing;
        self
    }

    /// The importable package name (`fixture_app` for `fixture-app`).
    pub fn module_name(&self) -> String {
        escape_name(&self.meta.name)
    }

    /// The wheel's filename.
    pub fn filename(&self) -> String {
        let build = self.build_tag.as_ref().map(|b| format!("-{b}")).unwrap_or_default();
        format!(
            "{}-{}{}-{}-{}-{}.whl",
            escape_name(&self.meta.name),
            self.meta.version,
            build,
            self.python_tag,
            self.abi_tag,
            self.platform_tag
        )
    }

    /// The exact `METADATA` text the wheel carries.
    pub fn metadata_text(&self) -> String {
        self.meta.render()
    }

    fn wheel_text(&self) -> String {
        let mut out = String::from("Wheel-Version: 1.0\nGenerator: larder-testkit\nRoot-Is-Purelib: true\n");
        for py in self.python_tag.split('.') {
            for abi in self.abi_tag.split('.') {
                for plat in self.platform_tag.split('.') {
                    out.push_str(&format!("Tag: {py}-{abi}-{plat}\n"));
                }
            }
        }
        if let Some(build) = &self.build_tag {
            out.push_str(&format!("Build: {build}\n"));
        }
        out
    }

    /// The archive's members, in order, without `RECORD`.
    fn members(&self) -> Vec<(String, Vec<u8>)> {
        let dist_info = format!("{}-{}.dist-info", escape_name(&self.meta.name), self.meta.version);
        let module = self.module_name();
        let mut members =
            vec![(format!("{module}/__init__.py"), self.meta.module_source(&self.module_extra).into_bytes())];
        members.extend(self.extra_files.iter().cloned());
        if self.metadata == MetadataMode::Normal {
            members.push((format!("{dist_info}/METADATA"), self.metadata_text().into_bytes()));
        }
        members.push((format!("{dist_info}/WHEEL"), self.wheel_text().into_bytes()));
        members
    }

    /// Writes the wheel into `dir` (created if needed) and describes it.
    pub fn build(&self, dir: &Path) -> Built {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let filename = self.filename();
        let path = dir.join(&filename);
        let bytes = self.to_bytes();
        fs::write(&path, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Built {
            path,
            filename,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            kind: DistKind::Wheel,
            project: normalize(&self.meta.name),
            version: self.meta.version.clone(),
            metadata: (self.metadata == MetadataMode::Normal).then(|| self.metadata_text().into_bytes()),
        }
    }

    /// The wheel as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        use zip::write::SimpleFileOptions;
        let dist_info = format!("{}-{}.dist-info", escape_name(&self.meta.name), self.meta.version);
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let mut record = String::new();
        for (name, data) in self.members() {
            zip.start_file(name.as_str(), options).expect("zip entry");
            zip.write_all(&data).expect("zip write");
            record.push_str(&format!("{name},{},{}\n", record_digest(&data), data.len()));
        }
        let record_name = format!("{dist_info}/RECORD");
        record.push_str(&format!("{record_name},,\n"));
        zip.start_file(record_name.as_str(), options).expect("zip entry");
        zip.write_all(record.as_bytes()).expect("zip write");
        zip.finish().expect("zip finish").into_inner()
    }
}

/// Builder for a `.tar.gz` source distribution with an in-tree PEP 517
/// backend that needs nothing from any index to build.
///
/// Layout of `{escaped}-{version}.tar.gz`:
///
/// ```text
/// {escaped}-{version}/PKG-INFO
/// {escaped}-{version}/pyproject.toml          [build-system] requires = [], backend-path = ["_backend"]
/// {escaped}-{version}/_backend/fixture_backend.py
/// {escaped}-{version}/{escaped}/__init__.py
/// ```
///
/// The backend implements `build_wheel`, `build_sdist`,
/// `get_requires_for_build_wheel`, `get_requires_for_build_sdist` and
/// `prepare_metadata_for_build_wheel`; the wheel it builds carries
/// `PKG-INFO` as its `METADATA`.
#[derive(Clone, Debug)]
pub struct Sdist {
    meta: Meta,
    module_extra: String,
    with_pkg_info: bool,
}

/// The backend's source, with `@PACKAGE@` and `@TAG@` placeholders.
const BACKEND_TEMPLATE: &str = include_str!("fixture_backend.py");

/// Modification time of every tar member (2020-01-01T00:00:00Z).
const TAR_MTIME: u64 = 1_577_836_800;

impl Sdist {
    /// An sdist of `name` `version`, `Metadata-Version: 2.1` (so clients
    /// build it to learn its metadata rather than trusting `PKG-INFO`).
    pub fn new(name: &str, version: &str) -> Sdist {
        Sdist { meta: Meta::new(name, version, "2.1"), module_extra: String::new(), with_pkg_info: true }
    }

    /// Adds a `Requires-Dist` line.
    pub fn requires_dist(mut self, requirement: &str) -> Sdist {
        self.meta.requires_dist.push(requirement.into());
        self
    }

    /// Sets `Requires-Python`.
    pub fn requires_python(mut self, specifier: &str) -> Sdist {
        self.meta.requires_python = Some(specifier.into());
        self
    }

    /// Sets `Summary`.
    pub fn summary(mut self, summary: &str) -> Sdist {
        self.meta.summary = summary.into();
        self
    }

    /// Sets `Metadata-Version` (default `2.1`).
    pub fn metadata_version(mut self, version: &str) -> Sdist {
        self.meta.metadata_version = version.into();
        self
    }

    /// Appends Python source to the package's `__init__.py`.
    pub fn module_source(mut self, source: &str) -> Sdist {
        self.module_extra.push_str(source);
        self
    }

    /// Writes `name` into `PKG-INFO`'s `Name:` instead of the project's.
    pub fn metadata_name_field(mut self, name: &str) -> Sdist {
        self.meta.name_field = Some(name.into());
        self
    }

    /// Leaves `PKG-INFO` out: a broken sdist.
    pub fn without_pkg_info(mut self) -> Sdist {
        self.with_pkg_info = false;
        self
    }

    /// The importable package name.
    pub fn module_name(&self) -> String {
        escape_name(&self.meta.name)
    }

    /// `{escaped}-{version}.tar.gz`.
    pub fn filename(&self) -> String {
        format!("{}.tar.gz", self.base())
    }

    fn base(&self) -> String {
        format!("{}-{}", escape_name(&self.meta.name), self.meta.version)
    }

    /// The exact `PKG-INFO` text.
    pub fn pkg_info_text(&self) -> String {
        self.meta.render()
    }

    /// The `pyproject.toml` text.
    pub fn pyproject_text(&self) -> String {
        "[build-system]\nrequires = []\nbuild-backend = \"fixture_backend\"\nbackend-path = [\"_backend\"]\n".to_owned()
    }

    /// The backend's Python source for this sdist.
    pub fn backend_source(&self) -> String {
        BACKEND_TEMPLATE.replace("@PACKAGE@", &self.module_name()).replace("@TAG@", "py3-none-any")
    }

    /// Writes the sdist into `dir` (created if needed) and describes it.
    pub fn build(&self, dir: &Path) -> Built {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let filename = self.filename();
        let path = dir.join(&filename);
        let bytes = self.to_bytes();
        fs::write(&path, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Built {
            path,
            filename,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            kind: DistKind::Sdist,
            project: normalize(&self.meta.name),
            version: self.meta.version.clone(),
            metadata: self.with_pkg_info.then(|| self.pkg_info_text().into_bytes()),
        }
    }

    /// The sdist as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let base = self.base();
        let module = self.module_name();
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let dir = |tar: &mut tar::Builder<_>, path: &str| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_mtime(TAR_MTIME);
            tar.append_data(&mut header, path, io::empty()).expect("tar dir");
        };
        let file = |tar: &mut tar::Builder<_>, path: &str, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            header.set_mtime(TAR_MTIME);
            tar.append_data(&mut header, path, data).expect("tar file");
        };
        dir(&mut tar, &format!("{base}/"));
        if self.with_pkg_info {
            file(&mut tar, &format!("{base}/PKG-INFO"), self.pkg_info_text().as_bytes());
        }
        file(&mut tar, &format!("{base}/pyproject.toml"), self.pyproject_text().as_bytes());
        dir(&mut tar, &format!("{base}/_backend/"));
        file(&mut tar, &format!("{base}/_backend/fixture_backend.py"), self.backend_source().as_bytes());
        dir(&mut tar, &format!("{base}/{module}/"));
        file(&mut tar, &format!("{base}/{module}/__init__.py"), self.meta.module_source(&self.module_extra).as_bytes());
        tar.into_inner().expect("tar finish").finish().expect("gzip finish")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn names() {
        assert_eq!(normalize("Foo.Bar__baz-Q"), "foo-bar-baz-q");
        assert_eq!(escape_name("Fixture.Mixed_Case"), "fixture_mixed_case");
    }

    #[test]
    fn wheel_is_deterministic_and_well_formed() {
        let w = Wheel::new("Fixture.Demo", "1.0").requires_dist("fixture-lib>=1.0").requires_python(">=3.8,<4");
        assert_eq!(w.filename(), "fixture_demo-1.0-py3-none-any.whl");
        let a = w.to_bytes();
        assert_eq!(a, w.to_bytes(), "builder must be deterministic");
        let mut zip = zip::ZipArchive::new(io::Cursor::new(a)).unwrap();
        let mut metadata = String::new();
        zip.by_name("fixture_demo-1.0.dist-info/METADATA").unwrap().read_to_string(&mut metadata).unwrap();
        assert_eq!(metadata, w.metadata_text());
        assert!(metadata.contains("Name: Fixture.Demo\n"));
        assert!(metadata.contains("Requires-Python: >=3.8,<4\n"));
        let mut record = String::new();
        zip.by_name("fixture_demo-1.0.dist-info/RECORD").unwrap().read_to_string(&mut record).unwrap();
        let line = record.lines().find(|l| l.starts_with("fixture_demo-1.0.dist-info/METADATA,")).unwrap();
        assert_eq!(
            line,
            format!("fixture_demo-1.0.dist-info/METADATA,{},{}", record_digest(metadata.as_bytes()), metadata.len())
        );
        assert!(record.ends_with("fixture_demo-1.0.dist-info/RECORD,,\n"));
        assert!(zip.by_name("fixture_demo/__init__.py").is_ok());
    }

    #[test]
    fn broken_wheels() {
        let w = Wheel::new("fixture-x", "1.0").without_metadata();
        let zip = zip::ZipArchive::new(io::Cursor::new(w.to_bytes())).unwrap();
        assert!(zip.file_names().all(|n| !n.unwrap().ends_with("/METADATA")));
        let w = Wheel::new("fixture-x", "1.0").metadata_name_field("other");
        assert!(w.metadata_text().contains("Name: other\n"));
        assert_eq!(w.filename(), "fixture_x-1.0-py3-none-any.whl");
    }

    #[test]
    fn sdist_layout() {
        let s = Sdist::new("fixture-src", "1.0").requires_dist("fixture-lib");
        assert_eq!(s.filename(), "fixture_src-1.0.tar.gz");
        let bytes = s.to_bytes();
        assert_eq!(bytes, s.to_bytes());
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name.ends_with("PKG-INFO") {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                assert_eq!(text, s.pkg_info_text());
            }
            if name.ends_with("fixture_backend.py") {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                assert!(text.contains("PACKAGE = \"fixture_src\""));
                assert!(!text.contains("@PACKAGE@") && !text.contains("@TAG@"), "placeholders left in backend");
            }
            names.push(name);
        }
        for want in [
            "fixture_src-1.0/PKG-INFO",
            "fixture_src-1.0/pyproject.toml",
            "fixture_src-1.0/_backend/fixture_backend.py",
            "fixture_src-1.0/fixture_src/__init__.py",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }
}
