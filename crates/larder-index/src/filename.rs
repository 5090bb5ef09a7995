//! Distribution filenames: wheels (with compressed tag sets) and sdists.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use crate::name::{InvalidName, NormalizedName};

/// Why a filename is not a distribution filename larder understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilenameError {
    /// Neither a wheel nor one of the known sdist extensions.
    #[error("{0:?} is not a distribution file: expected a .whl, .tar.gz, .zip, .tar.bz2 or .tgz")]
    UnknownExtension(String),
    /// A wheel name without the right number of `-`-separated parts.
    #[error("invalid wheel filename {0:?}: expected name-version(-build)?-python-abi-platform.whl")]
    WheelParts(String),
    /// A wheel build tag that does not start with a digit.
    #[error("invalid wheel filename {0:?}: the build tag must start with a digit")]
    BuildTag(String),
    /// An empty tag or tag-set member.
    #[error("invalid wheel filename {0:?}: empty compatibility tag")]
    EmptyTag(String),
    /// No split of an sdist name gives a valid name and PEP 440 version.
    #[error("invalid sdist filename {0:?}: expected name-version with a PEP 440 version")]
    SdistVersion(String),
    /// The version part is not PEP 440.
    #[error("invalid filename {filename:?}: version {version:?} is not a PEP 440 version")]
    Version {
        /// The whole filename.
        filename: String,
        /// The part that failed to parse.
        version: String,
    },
    /// The name part is not a valid project name.
    #[error("invalid filename {filename:?}: {source}")]
    Name {
        /// The whole filename.
        filename: String,
        /// What is wrong with the name.
        source: InvalidName,
    },
    /// A character that never belongs in a distribution filename.
    #[error("invalid filename {0:?}: it contains a character that is not allowed in a distribution filename")]
    Character(String),
}

/// The archive formats of a source distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdistFormat {
    /// `.tar.gz` (the standard) or `.tgz`.
    TarGz,
    /// `.zip` (legacy).
    Zip,
    /// `.tar.bz2` (legacy).
    TarBz2,
}

impl SdistFormat {
    const EXTENSIONS: [(&'static str, SdistFormat); 4] = [
        (".tar.gz", SdistFormat::TarGz),
        (".tgz", SdistFormat::TarGz),
        (".zip", SdistFormat::Zip),
        (".tar.bz2", SdistFormat::TarBz2),
    ];
}

/// A parsed wheel filename. Each tag field is the expanded set of its
/// `.`-separated members (`py2.py3` gives `["py2", "py3"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFilename {
    /// The project name, normalized.
    pub name: NormalizedName,
    /// The version.
    pub version: Version,
    /// The optional build tag.
    pub build_tag: Option<String>,
    /// Python tags (`py3`, `cp312`, ...).
    pub python_tags: Vec<String>,
    /// ABI tags (`none`, `abi3`, `cp312`, ...).
    pub abi_tags: Vec<String>,
    /// Platform tags (`any`, `manylinux_2_17_x86_64`, ...).
    pub platform_tags: Vec<String>,
}

impl WheelFilename {
    /// Every `python-abi-platform` triple this wheel declares: the product
    /// of its three tag sets.
    pub fn tag_triples(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.python_tags.iter().flat_map(move |py| {
            self.abi_tags.iter().flat_map(move |abi| {
                self.platform_tags.iter().map(move |plat| (py.as_str(), abi.as_str(), plat.as_str()))
            })
        })
    }

    fn parse(filename: &str, stem: &str) -> Result<Self, FilenameError> {
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build_tag, tags) = match parts.as_slice() {
            [n, v, py, abi, plat] => (*n, *v, None, [*py, *abi, *plat]),
            [n, v, b, py, abi, plat] => (*n, *v, Some(*b), [*py, *abi, *plat]),
            _ => return Err(FilenameError::WheelParts(filename.to_owned())),
        };
        if let Some(build) = build_tag
            && !build.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(FilenameError::BuildTag(filename.to_owned()));
        }
        let [python_tags, abi_tags, platform_tags] = tags.map(|t| t.split('.').map(str::to_owned).collect::<Vec<_>>());
        if [&python_tags, &abi_tags, &platform_tags].iter().any(|set| set.iter().any(String::is_empty)) {
            return Err(FilenameError::EmptyTag(filename.to_owned()));
        }
        Ok(Self {
            name: parse_name(filename, name)?,
            version: parse_version(filename, version)?,
            build_tag: build_tag.map(str::to_owned),
            python_tags,
            abi_tags,
            platform_tags,
        })
    }
}

/// A parsed source distribution filename.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdistFilename {
    /// The project name, normalized.
    pub name: NormalizedName,
    /// The version.
    pub version: Version,
    /// The archive format.
    pub format: SdistFormat,
}

impl SdistFilename {
    /// Old sdist names are ambiguous (`foo-bar-1.0`): split at the last `-`
    /// whose right side is a PEP 440 version and whose left side is a name.
    fn parse(filename: &str, stem: &str, format: SdistFormat) -> Result<Self, FilenameError> {
        stem.rmatch_indices('-')
            .find_map(|(at, _)| {
                let name = NormalizedName::new(&stem[..at]).ok()?;
                let version = Version::from_str(&stem[at + 1..]).ok()?;
                Some(Self { name, version, format })
            })
            .ok_or_else(|| FilenameError::SdistVersion(filename.to_owned()))
    }
}

/// Any distribution filename larder stores and serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistFilename {
    /// A built distribution.
    Wheel(WheelFilename),
    /// A source distribution.
    Sdist(SdistFilename),
}

impl DistFilename {
    /// Parses a bare filename (no directory part).
    pub fn parse(filename: &str) -> Result<Self, FilenameError> {
        if filename.is_empty()
            || filename.starts_with('.')
            || !filename.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'!'))
        {
            return Err(FilenameError::Character(filename.to_owned()));
        }
        if let Some(stem) = filename.strip_suffix(".whl") {
            return WheelFilename::parse(filename, stem).map(Self::Wheel);
        }
        for (extension, format) in SdistFormat::EXTENSIONS {
            if let Some(stem) = filename.strip_suffix(extension) {
                return SdistFilename::parse(filename, stem, format).map(Self::Sdist);
            }
        }
        Err(FilenameError::UnknownExtension(filename.to_owned()))
    }

    /// Parses the filename of a file listed for `project`. An old sdist
    /// name can split in more than one way (`foo-1.0-1.tar.gz` is `foo`
    /// 1.0.post1, or `foo-1-0` 1): the split that names `project` wins.
    pub fn parse_for(filename: &str, project: &NormalizedName) -> Result<Self, FilenameError> {
        let parsed = Self::parse(filename)?;
        let Self::Sdist(sdist) = &parsed else { return Ok(parsed) };
        if &sdist.name == project {
            return Ok(parsed);
        }
        let stem = SdistFormat::EXTENSIONS
            .iter()
            .find_map(|(extension, _)| filename.strip_suffix(extension))
            .expect("an sdist has a known extension");
        let split = stem.match_indices('-').find_map(|(at, _)| {
            let name = NormalizedName::new(&stem[..at]).ok().filter(|name| name == project)?;
            let version = Version::from_str(&stem[at + 1..]).ok()?;
            Some(Self::Sdist(SdistFilename { name, version, format: sdist.format }))
        });
        Ok(split.unwrap_or(parsed))
    }

    /// The normalized project name.
    pub fn name(&self) -> &NormalizedName {
        match self {
            Self::Wheel(w) => &w.name,
            Self::Sdist(s) => &s.name,
        }
    }

    /// The version.
    pub fn version(&self) -> &Version {
        match self {
            Self::Wheel(w) => &w.version,
            Self::Sdist(s) => &s.version,
        }
    }

    /// The distribution type as twine and the JSON API name it.
    pub fn package_type(&self) -> PackageType {
        match self {
            Self::Wheel(_) => PackageType::BdistWheel,
            Self::Sdist(_) => PackageType::Sdist,
        }
    }
}

/// The kind of a distribution, as named in upload forms and the JSON API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageType {
    /// A wheel.
    BdistWheel,
    /// A source distribution.
    Sdist,
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BdistWheel => "bdist_wheel",
            Self::Sdist => "sdist",
        })
    }
}

fn parse_name(filename: &str, name: &str) -> Result<NormalizedName, FilenameError> {
    NormalizedName::new(name).map_err(|source| FilenameError::Name { filename: filename.to_owned(), source })
}

fn parse_version(filename: &str, version: &str) -> Result<Version, FilenameError> {
    Version::from_str(version)
        .map_err(|_| FilenameError::Version { filename: filename.to_owned(), version: version.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(name: &str) -> WheelFilename {
        match DistFilename::parse(name).unwrap() {
            DistFilename::Wheel(w) => w,
            other => panic!("{name} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_a_plain_wheel() {
        let w = wheel("Foo_Bar-1.2.3-py3-none-any.whl");
        assert_eq!(w.name.as_str(), "foo-bar");
        assert_eq!(w.version.to_string(), "1.2.3");
        assert_eq!(w.build_tag, None);
        assert_eq!(w.tag_triples().collect::<Vec<_>>(), vec![("py3", "none", "any")]);
    }

    #[test]
    fn expands_compressed_tag_sets() {
        let w = wheel("numpy-2.0.0-1build-cp312.cp313-cp312.abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
        assert_eq!(w.build_tag.as_deref(), Some("1build"));
        assert_eq!(w.python_tags, ["cp312", "cp313"]);
        assert_eq!(w.tag_triples().count(), 2 * 2 * 2);
        assert!(w.tag_triples().any(|t| t == ("cp313", "abi3", "manylinux2014_x86_64")));
    }

    #[test]
    fn rejects_bad_wheels() {
        for bad in [
            "foo-1.0-py3-none.whl",
            "foo-1.0-x-py3-none-any.whl",
            "foo-notaversion-py3-none-any.whl",
            "foo-1.0-py3..py2-none-any.whl",
            "-1.0-py3-none-any.whl",
        ] {
            assert!(DistFilename::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_sdists_of_every_extension() {
        for (file, format) in [
            ("foo-1.0.tar.gz", SdistFormat::TarGz),
            ("foo-1.0.tgz", SdistFormat::TarGz),
            ("foo-1.0.zip", SdistFormat::Zip),
            ("foo-1.0.tar.bz2", SdistFormat::TarBz2),
        ] {
            let DistFilename::Sdist(s) = DistFilename::parse(file).unwrap() else {
                panic!("{file} is not an sdist");
            };
            assert_eq!((s.name.as_str(), s.format), ("foo", format));
        }
    }

    #[test]
    fn splits_ambiguous_sdist_names_at_the_last_version() {
        let parsed = DistFilename::parse("zope.foo-bar-2.0rc1.tar.gz").unwrap();
        assert_eq!(parsed.name().as_str(), "zope-foo-bar");
        assert_eq!(parsed.version().to_string(), "2.0rc1");
        let parsed = DistFilename::parse("foo-1.0-beta.tar.gz").unwrap();
        assert_eq!(parsed.name().as_str(), "foo");
        assert_eq!(parsed.version().to_string(), "1.0b0");
    }

    #[test]
    fn a_post_release_suffix_splits_at_the_project_name() {
        let project = NormalizedName::new("Foo.Bar").unwrap();
        let parsed = DistFilename::parse_for("foo.bar-1.0-1.tar.gz", &project).unwrap();
        assert_eq!((parsed.name().as_str(), parsed.version().to_string().as_str()), ("foo-bar", "1.0.post1"));
        let other = NormalizedName::new("foo-bar-1-0").unwrap();
        let parsed = DistFilename::parse_for("foo.bar-1.0-1.tar.gz", &other).unwrap();
        assert_eq!((parsed.name().as_str(), parsed.version().to_string().as_str()), ("foo-bar-1-0", "1"));
        let wheel = DistFilename::parse_for("foo_bar-1.0-py3-none-any.whl", &project).unwrap();
        assert_eq!(wheel.name(), &project);
    }

    #[test]
    fn rejects_non_distributions_and_hostile_names() {
        for bad in [
            "README.md",
            "foo.tar.gz",
            "foo-1.0.exe",
            "../foo-1.0.tar.gz",
            "..%2Ffoo-1.0.tar.gz",
            "foo/bar-1.0.tar.gz",
            ".foo-1.0.tar.gz",
            "foo-1.0.tar.gz\0",
            "",
        ] {
            assert!(DistFilename::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn package_type_names_match_the_upload_api() {
        assert_eq!(DistFilename::parse("a-1-py3-none-any.whl").unwrap().package_type().to_string(), "bdist_wheel");
        assert_eq!(DistFilename::parse("a-1.zip").unwrap().package_type().to_string(), "sdist");
    }
}
