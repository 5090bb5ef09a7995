//! Reads distribution archives: the core metadata of a wheel
//! (`*.dist-info/METADATA`) or of an sdist (`<name>-<version>/PKG-INFO`).
//!
//! Works on any `Read + Seek` source and does no other I/O.

pub mod sparse;

use std::io::{Read, Seek};
use std::str::FromStr;

use larder_index::{CoreMetadata, DistFilename, NormalizedName, SdistFormat, Version};

/// The largest metadata file read from an archive. Real ones are a few
/// kilobytes to a few hundred; anything past this is a hostile archive.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// Why core metadata could not be read from an archive.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The archive could not be read as the format its name claims.
    #[error("{filename} is not a readable {format} archive: {reason}")]
    Archive {
        /// The distribution filename.
        filename: String,
        /// `zip`, `tar.gz` or `tar.bz2`.
        format: &'static str,
        /// The underlying error.
        reason: String,
    },
    /// The archive has no such file where the spec puts it.
    #[error("{filename} has no {expected}")]
    NoMetadata {
        /// The distribution filename.
        filename: String,
        /// What was looked for.
        expected: &'static str,
    },
    /// The metadata file is larger than [`MAX_METADATA_BYTES`].
    #[error("{0}: its metadata file is larger than 16 MiB")]
    TooLarge(String),
    /// A wheel whose `.dist-info` directories pip refuses: none named for
    /// its project, or more than one.
    #[error("{filename}: {reason}")]
    DistInfo {
        /// The wheel.
        filename: String,
        /// What is wrong.
        reason: String,
    },
    /// The metadata file is not valid core metadata.
    #[error("{filename}: unreadable core metadata: {source}")]
    Unparsable {
        /// The distribution filename.
        filename: String,
        /// What is wrong.
        source: larder_index::MetadataError,
    },
    /// The metadata names another project or version than the filename.
    #[error(
        "{filename}: the file name says {file_name} {file_version} but its metadata says {metadata_name} {metadata_version}"
    )]
    Mismatch {
        /// The distribution filename.
        filename: String,
        /// Project name from the filename.
        file_name: String,
        /// Version from the filename.
        file_version: String,
        /// `Name` from the metadata.
        metadata_name: String,
        /// `Version` from the metadata.
        metadata_version: String,
    },
}

/// Reads the core metadata of a distribution ([`read_core_metadata`]),
/// parses it, and checks that it names the project and version its
/// filename does: what `larder add` and `larder import` accept.
pub fn read_checked_metadata(
    filename: &str,
    kind: &DistFilename,
    archive: impl Read + Seek,
) -> Result<(Vec<u8>, CoreMetadata), DistError> {
    let bytes = read_core_metadata(filename, kind, archive)?;
    let metadata = CoreMetadata::parse(&bytes)
        .map_err(|source| DistError::Unparsable { filename: filename.to_owned(), source })?;
    let same_name = NormalizedName::new(&metadata.name).is_ok_and(|n| &n == kind.name());
    let same_version = Version::from_str(&metadata.version).is_ok_and(|v| &v == kind.version());
    if !(same_name && same_version) {
        return Err(DistError::Mismatch {
            filename: filename.to_owned(),
            file_name: kind.name().to_string(),
            file_version: kind.version().to_string(),
            metadata_name: metadata.name,
            metadata_version: metadata.version,
        });
    }
    Ok((bytes, metadata))
}

/// Returns the raw bytes of the core metadata file inside a distribution.
pub fn read_core_metadata(
    filename: &str,
    kind: &DistFilename,
    archive: impl Read + Seek,
) -> Result<Vec<u8>, DistError> {
    match kind {
        DistFilename::Wheel(_) => read_wheel_metadata(filename, kind.name(), archive),
        DistFilename::Sdist(sdist) => {
            let expected = "<name>-<version>/PKG-INFO";
            match sdist.format {
                SdistFormat::Zip => read_from_zip(filename, archive, &is_sdist_metadata, expected),
                SdistFormat::TarGz => read_from_tar(
                    filename,
                    "tar.gz",
                    flate2::read::GzDecoder::new(archive),
                    &is_sdist_metadata,
                    expected,
                ),
                SdistFormat::TarBz2 => read_from_tar(
                    filename,
                    "tar.bz2",
                    bzip2::read::BzDecoder::new(archive),
                    &is_sdist_metadata,
                    expected,
                ),
            }
        }
    }
}

/// Returns the bytes of `<name>-<version>/<file>` (such as `pyproject.toml`)
/// in an sdist, or `None` when the sdist has no such file.
pub fn read_sdist_file(
    filename: &str,
    kind: &DistFilename,
    archive: impl Read + Seek,
    file: &'static str,
) -> Result<Option<Vec<u8>>, DistError> {
    let DistFilename::Sdist(sdist) = kind else {
        return Ok(None);
    };
    let wanted = |path: &str| {
        let path = path.strip_prefix("./").unwrap_or(path);
        matches!(path.split_once('/'), Some((dir, rest)) if !dir.is_empty() && rest == file)
    };
    let found = match sdist.format {
        SdistFormat::Zip => read_from_zip(filename, archive, &wanted, file),
        SdistFormat::TarGz => read_from_tar(filename, "tar.gz", flate2::read::GzDecoder::new(archive), &wanted, file),
        SdistFormat::TarBz2 => read_from_tar(filename, "tar.bz2", bzip2::read::BzDecoder::new(archive), &wanted, file),
    };
    match found {
        Ok(bytes) => Ok(Some(bytes)),
        Err(DistError::NoMetadata { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The METADATA of a wheel's one top-level `.dist-info` directory, which
/// must be named for the wheel's project, as pip requires.
fn read_wheel_metadata(
    filename: &str,
    project: &NormalizedName,
    archive: impl Read + Seek,
) -> Result<Vec<u8>, DistError> {
    let archive_error = |e: zip::result::ZipError| DistError::Archive {
        filename: filename.to_owned(),
        format: "zip",
        reason: e.to_string(),
    };
    let refuse = |reason: String| DistError::DistInfo { filename: filename.to_owned(), reason };
    let mut zip = zip::ZipArchive::new(archive).map_err(archive_error)?;
    let mut dirs: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter_map(|name| name.split_once('/').map(|(dir, _)| dir.to_owned()))
        .filter(|dir| dir.ends_with(".dist-info"))
        .collect();
    dirs.sort();
    dirs.dedup();
    let dir = match dirs.as_slice() {
        [] => return Err(DistError::NoMetadata { filename: filename.to_owned(), expected: "*.dist-info/METADATA" }),
        [dir] => dir.clone(),
        several => return Err(refuse(format!("more than one .dist-info directory ({})", several.join(", ")))),
    };
    let dir_project = dir.split('-').next().and_then(|name| NormalizedName::new(name).ok());
    if dir_project.as_ref() != Some(project) {
        return Err(refuse(format!("its .dist-info directory {dir} is not for project {project}")));
    }
    let wanted = format!("{dir}/METADATA");
    let entry = match zip.by_name(&wanted) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(DistError::NoMetadata { filename: filename.to_owned(), expected: "*.dist-info/METADATA" });
        }
        Err(error) => return Err(archive_error(error)),
    };
    read_bounded(filename, entry, "zip")
}

/// `<dir>/PKG-INFO` exactly one level down.
fn is_sdist_metadata(path: &str) -> bool {
    let path = path.strip_prefix("./").unwrap_or(path);
    matches!(path.split_once('/'), Some((dir, "PKG-INFO")) if !dir.is_empty())
}

fn read_from_zip(
    filename: &str,
    archive: impl Read + Seek,
    wanted: &dyn Fn(&str) -> bool,
    expected: &'static str,
) -> Result<Vec<u8>, DistError> {
    let archive_error = |e: zip::result::ZipError| DistError::Archive {
        filename: filename.to_owned(),
        format: "zip",
        reason: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(archive).map_err(archive_error)?;
    let Some(index) =
        (0..zip.len()).find(|&i| zip.name_for_index(i).and_then(Result::ok).is_some_and(|name| wanted(&name)))
    else {
        return Err(DistError::NoMetadata { filename: filename.to_owned(), expected });
    };
    let entry = zip.by_index(index).map_err(archive_error)?;
    read_bounded(filename, entry, "zip")
}

fn read_from_tar(
    filename: &str,
    format: &'static str,
    decoded: impl Read,
    wanted: &dyn Fn(&str) -> bool,
    expected: &'static str,
) -> Result<Vec<u8>, DistError> {
    let archive_error =
        |e: std::io::Error| DistError::Archive { filename: filename.to_owned(), format, reason: e.to_string() };
    let mut tar = tar::Archive::new(decoded);
    for entry in tar.entries().map_err(archive_error)? {
        let entry = entry.map_err(archive_error)?;
        let path = entry.path_bytes();
        let is_wanted = std::str::from_utf8(&path).is_ok_and(wanted);
        if is_wanted && entry.header().entry_type().is_file() {
            return read_bounded(filename, entry, format);
        }
    }
    Err(DistError::NoMetadata { filename: filename.to_owned(), expected })
}

fn read_bounded(filename: &str, entry: impl Read, format: &'static str) -> Result<Vec<u8>, DistError> {
    let mut bytes = Vec::new();
    entry.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes).map_err(|e| DistError::Archive {
        filename: filename.to_owned(),
        format,
        reason: e.to_string(),
    })?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(DistError::TooLarge(filename.to_owned()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    const METADATA: &[u8] = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n";

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (path, body) in entries {
            writer.start_file(*path, zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(body).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn tar_gz_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *body).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn read(filename: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DistError> {
        read_core_metadata(filename, &DistFilename::parse(filename).unwrap(), Cursor::new(bytes))
    }

    #[test]
    fn reads_wheel_metadata_and_ignores_nested_lookalikes() {
        let wheel = zip_with(&[
            ("demo/vendored.dist-info/METADATA", b"wrong"),
            ("demo/__init__.py", b""),
            ("demo-1.0.dist-info/METADATA", METADATA),
        ]);
        assert_eq!(read("demo-1.0-py3-none-any.whl", wheel).unwrap(), METADATA);
    }

    #[test]
    fn reads_sdist_pkg_info_from_tar_gz_and_zip() {
        let entries: &[(&str, &[u8])] = &[("demo-1.0/src/PKG-INFO", b"wrong"), ("demo-1.0/PKG-INFO", METADATA)];
        assert_eq!(read("demo-1.0.tar.gz", tar_gz_with(entries)).unwrap(), METADATA);
        assert_eq!(read("demo-1.0.zip", zip_with(entries)).unwrap(), METADATA);
    }

    #[test]
    fn reads_an_sdists_pyproject_toml_when_it_has_one() {
        let sdist = tar_gz_with(&[("demo-1.0/PKG-INFO", METADATA), ("demo-1.0/pyproject.toml", b"[build-system]\n")]);
        let kind = DistFilename::parse("demo-1.0.tar.gz").unwrap();
        let found = read_sdist_file("demo-1.0.tar.gz", &kind, Cursor::new(sdist), "pyproject.toml").unwrap();
        assert_eq!(found.as_deref(), Some(&b"[build-system]\n"[..]));
        let without = tar_gz_with(&[("demo-1.0/PKG-INFO", METADATA)]);
        assert_eq!(read_sdist_file("demo-1.0.tar.gz", &kind, Cursor::new(without), "pyproject.toml").unwrap(), None);
    }

    #[test]
    fn refuses_wheels_pip_refuses_and_metadata_naming_another_release() {
        let other_project = zip_with(&[("other-1.0.dist-info/METADATA", METADATA)]);
        assert!(matches!(read("demo-1.0-py3-none-any.whl", other_project), Err(DistError::DistInfo { .. })));
        let two =
            zip_with(&[("demo-1.0.dist-info/METADATA", METADATA), ("demo_extra-1.0.dist-info/METADATA", METADATA)]);
        assert!(matches!(read("demo-1.0-py3-none-any.whl", two), Err(DistError::DistInfo { .. })));
        let renamed = zip_with(&[("Demo-1.0.dist-info/METADATA", METADATA)]);
        assert_eq!(read("demo-1.0-py3-none-any.whl", renamed).unwrap(), METADATA, "names compare normalized");
        let kind = DistFilename::parse("demo-2.0-py3-none-any.whl").unwrap();
        let wrong_version = zip_with(&[("demo-2.0.dist-info/METADATA", METADATA)]);
        let checked = read_checked_metadata("demo-2.0-py3-none-any.whl", &kind, Cursor::new(wrong_version));
        assert!(matches!(checked, Err(DistError::Mismatch { .. })), "{checked:?}");
    }

    #[test]
    fn reports_missing_metadata_and_garbage() {
        let no_metadata = zip_with(&[("demo/__init__.py", b"")]);
        assert!(matches!(read("demo-1.0-py3-none-any.whl", no_metadata), Err(DistError::NoMetadata { .. })));
        assert!(matches!(read("demo-1.0-py3-none-any.whl", b"not a zip".to_vec()), Err(DistError::Archive { .. })));
        assert!(matches!(read("demo-1.0.tar.gz", b"not gzip".to_vec()), Err(DistError::Archive { .. })));
    }
}
