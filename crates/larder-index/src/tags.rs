//! Wheel compatibility tags (PEP 425) for a target environment: which wheels
//! a CPython of one version on one platform can install.
//!
//! Platform tags are read with their grammar, not from lists: manylinux
//! (PEP 600, with the legacy `manylinux1`/`2010`/`2014` aliases for glibc
//! 2.5/2.12/2.17), musllinux (PEP 656), `macosx_<major>_<minor>_<arch>` with
//! the multi-architecture families (`universal2`, `intel`, ...), the Windows
//! tags, `linux_<arch>` and `any`.

use std::fmt;

use crate::filename::WheelFilename;

/// Why a Python version or platform tag cannot name a target environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not `X.Y`.
    #[error("invalid Python version {0:?}: expected MAJOR.MINOR, such as 3.12")]
    PythonVersion(String),
    /// A platform tag of a kind larder does not know.
    #[error(
        "unsupported platform tag {0:?}: expected manylinux_X_Y_ARCH (or manylinux1/2010/2014_ARCH), \
         musllinux_X_Y_ARCH, macosx_X_Y_ARCH, win32, win_amd64, win_arm64, linux_ARCH or any"
    )]
    Platform(String),
}

/// A Windows architecture, as its platform tag names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowsArch {
    /// `win32`.
    X86,
    /// `win_amd64`.
    Amd64,
    /// `win_arm64`.
    Arm64,
}

/// A parsed platform tag. Also used for the target's own platform: the
/// target `manylinux_2_28_x86_64` means "a glibc 2.28 x86-64 Linux".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// `manylinux_X_Y_ARCH`: glibc X.Y or later.
    Manylinux {
        /// The glibc version (major, minor).
        glibc: (u16, u16),
        /// The architecture, such as `x86_64` or `aarch64`.
        arch: String,
    },
    /// `musllinux_X_Y_ARCH`: musl X.Y or later.
    Musllinux {
        /// The musl version (major, minor).
        musl: (u16, u16),
        /// The architecture.
        arch: String,
    },
    /// `linux_ARCH`: a wheel built for one Linux system, no promise beyond it.
    Linux {
        /// The architecture.
        arch: String,
    },
    /// `macosx_X_Y_ARCH`: macOS X.Y or later.
    Macos {
        /// The macOS version (major, minor).
        version: (u16, u16),
        /// The architecture or multi-architecture family (`arm64`,
        /// `x86_64`, `universal2`, `intel`, ...).
        arch: String,
    },
    /// `win32`, `win_amd64`, `win_arm64`.
    Windows(WindowsArch),
    /// `any`: pure Python, every platform.
    Any,
}

impl Platform {
    /// Parses a platform tag. Legacy manylinux aliases become their
    /// glibc versions.
    pub fn parse(tag: &str) -> Result<Self, TargetError> {
        let unsupported = || TargetError::Platform(tag.to_owned());
        let versioned = |rest: &str| -> Option<((u16, u16), String)> {
            let mut parts = rest.splitn(3, '_');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some(((major, minor), arch(parts.next()?)?))
        };
        let platform = match tag {
            "any" => Self::Any,
            "win32" => Self::Windows(WindowsArch::X86),
            "win_amd64" => Self::Windows(WindowsArch::Amd64),
            "win_arm64" => Self::Windows(WindowsArch::Arm64),
            _ => {
                let (prefix, rest) = tag.split_once('_').ok_or_else(unsupported)?;
                match prefix {
                    "manylinux1" => Self::Manylinux { glibc: (2, 5), arch: arch(rest).ok_or_else(unsupported)? },
                    "manylinux2010" => Self::Manylinux { glibc: (2, 12), arch: arch(rest).ok_or_else(unsupported)? },
                    "manylinux2014" => Self::Manylinux { glibc: (2, 17), arch: arch(rest).ok_or_else(unsupported)? },
                    "manylinux" => {
                        let (glibc, arch) = versioned(rest).ok_or_else(unsupported)?;
                        Self::Manylinux { glibc, arch }
                    }
                    "musllinux" => {
                        let (musl, arch) = versioned(rest).ok_or_else(unsupported)?;
                        Self::Musllinux { musl, arch }
                    }
                    "macosx" => {
                        let (version, arch) = versioned(rest).ok_or_else(unsupported)?;
                        Self::Macos { version, arch }
                    }
                    "linux" => Self::Linux { arch: arch(rest).ok_or_else(unsupported)? },
                    _ => return Err(unsupported()),
                }
            }
        };
        Ok(platform)
    }

    /// True when a wheel tagged for `wheel` installs on this platform.
    pub fn accepts(&self, wheel: &Platform) -> bool {
        match (wheel, self) {
            (Self::Any, _) => true,
            (Self::Manylinux { glibc: w, arch: wa }, Self::Manylinux { glibc: t, arch: ta })
            | (Self::Musllinux { musl: w, arch: wa }, Self::Musllinux { musl: t, arch: ta }) => wa == ta && w <= t,
            (
                Self::Linux { arch: wa },
                Self::Manylinux { arch: ta, .. } | Self::Musllinux { arch: ta, .. } | Self::Linux { arch: ta },
            ) => wa == ta,
            (Self::Macos { version: w, arch: wa }, Self::Macos { version: t, arch: ta }) => {
                w <= t && macos_binary_formats(ta).contains(&wa.as_str())
            }
            (Self::Windows(w), Self::Windows(t)) => w == t,
            _ => false,
        }
    }
}

impl fmt::Display for Platform {
    /// The canonical tag: legacy manylinux aliases are written in the
    /// PEP 600 form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Manylinux { glibc: (x, y), arch } => write!(f, "manylinux_{x}_{y}_{arch}"),
            Self::Musllinux { musl: (x, y), arch } => write!(f, "musllinux_{x}_{y}_{arch}"),
            Self::Linux { arch } => write!(f, "linux_{arch}"),
            Self::Macos { version: (x, y), arch } => write!(f, "macosx_{x}_{y}_{arch}"),
            Self::Windows(WindowsArch::X86) => f.write_str("win32"),
            Self::Windows(WindowsArch::Amd64) => f.write_str("win_amd64"),
            Self::Windows(WindowsArch::Arm64) => f.write_str("win_arm64"),
            Self::Any => f.write_str("any"),
        }
    }
}

/// An architecture part of a platform tag: non-empty, ASCII letters,
/// digits and `_`.
fn arch(text: &str) -> Option<String> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then(|| text.to_owned())
}

/// The macOS architecture tags whose wheels run on `arch`: the
/// architecture itself and the multi-architecture families that contain
/// it (the same table as the `packaging` library's).
fn macos_binary_formats(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" => &["x86_64", "intel", "fat64", "fat32", "universal2", "universal"],
        "arm64" => &["arm64", "universal2"],
        "i386" => &["i386", "intel", "fat32", "fat", "universal"],
        "ppc64" => &["ppc64", "fat64", "universal"],
        "ppc" => &["ppc", "fat32", "fat", "universal"],
        _ => &[],
    }
}

/// One environment larder mirrors for: a CPython `X.Y` (the standard,
/// GIL-enabled build) on one platform.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetEnvironment {
    /// The Python version (major, minor).
    pub python_version: (u8, u8),
    /// The platform.
    pub platform: Platform,
}

impl TargetEnvironment {
    /// Builds a target from a `X.Y` Python version and a platform tag.
    pub fn parse(python_version: &str, platform: &str) -> Result<Self, TargetError> {
        let bad_version = || TargetError::PythonVersion(python_version.to_owned());
        let (major, minor) = python_version.split_once('.').ok_or_else(bad_version)?;
        let number = |part: &str| -> Result<u8, TargetError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_version());
            }
            part.parse().map_err(|_| bad_version())
        };
        Ok(Self { python_version: (number(major)?, number(minor)?), platform: Platform::parse(platform)? })
    }

    /// True when the wheel declares at least one tag triple this target
    /// installs.
    pub fn is_compatible(&self, wheel: &WheelFilename) -> bool {
        wheel.tag_triples().any(|(python, abi, platform)| {
            self.accepts_interpreter(python, abi)
                && Platform::parse(platform).is_ok_and(|platform| self.platform.accepts(&platform))
        })
    }

    /// The python and ABI tag pairs of CPython X.Y: `cpXY-cpXY` (and
    /// `cpXYm` before 3.8), `cpXW-abi3` for every 3.2 ≤ 3.W ≤ X.Y, and with
    /// ABI `none`: `pyX`, `pyXW` for W ≤ Y, and `cpXY`. Free-threaded
    /// (`cpXYt`) and debug ABIs never match a standard build.
    fn accepts_interpreter(&self, python: &str, abi: &str) -> bool {
        let (major, minor) = self.python_version;
        let Some(tag) = PythonTag::parse(python) else {
            return false;
        };
        match abi {
            "none" => match tag {
                PythonTag { cpython: false, major: m, minor: None } => m == major,
                PythonTag { cpython: false, major: m, minor: Some(n) } => m == major && n <= minor,
                PythonTag { cpython: true, major: m, minor: Some(n) } => (m, n) == (major, minor),
                PythonTag { cpython: true, minor: None, .. } => false,
            },
            "abi3" => {
                tag.cpython && major == 3 && tag.major == 3 && tag.minor.is_some_and(|n| (2..=minor).contains(&n))
            }
            _ => {
                let own = format!("cp{major}{minor}");
                tag.cpython
                    && (tag.major, tag.minor) == (major, Some(minor))
                    && (abi == own || (major == 3 && minor < 8 && abi.strip_suffix('m') == Some(own.as_str())))
            }
        }
    }
}

impl fmt::Display for TargetEnvironment {
    /// `cp312-manylinux_2_28_x86_64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.python_version;
        write!(f, "cp{major}{minor}-{}", self.platform)
    }
}

/// A python tag: `py3`, `py310` (generic) or `cp312` (CPython only).
/// Other implementations (`pp`, `ip`, `jy`) do not parse: larder targets
/// CPython.
struct PythonTag {
    cpython: bool,
    major: u8,
    minor: Option<u8>,
}

impl PythonTag {
    fn parse(tag: &str) -> Option<Self> {
        let (cpython, digits) = match tag.split_at_checked(2)? {
            ("py", digits) => (false, digits),
            ("cp", digits) => (true, digits),
            _ => return None,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (major, minor) = digits.split_at(1);
        Some(Self {
            cpython,
            major: major.parse().ok()?,
            minor: if minor.is_empty() { None } else { Some(minor.parse().ok()?) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filename::DistFilename;

    fn target(python: &str, platform: &str) -> TargetEnvironment {
        TargetEnvironment::parse(python, platform).unwrap()
    }

    fn compatible(target: &TargetEnvironment, wheel: &str) -> bool {
        let DistFilename::Wheel(wheel) = DistFilename::parse(wheel).unwrap() else {
            panic!("{wheel} is not a wheel");
        };
        target.is_compatible(&wheel)
    }

    fn check(target: &TargetEnvironment, table: &[(&str, bool)]) {
        for (wheel, want) in table {
            assert_eq!(compatible(target, wheel), *want, "{wheel} on {target}");
        }
    }

    #[test]
    fn parses_targets_and_rejects_nonsense() {
        let t = target("3.12", "manylinux2014_aarch64");
        assert_eq!(t.python_version, (3, 12));
        assert_eq!(t.platform, Platform::Manylinux { glibc: (2, 17), arch: "aarch64".into() });
        assert_eq!(t.to_string(), "cp312-manylinux_2_17_aarch64");
        assert_eq!(target("3.9", "macosx_11_0_arm64").to_string(), "cp39-macosx_11_0_arm64");
        for bad in ["3", "3.", ".10", "3.10.1", "three.ten", "3.x", "3.300"] {
            assert_eq!(TargetEnvironment::parse(bad, "any"), Err(TargetError::PythonVersion(bad.into())), "{bad}");
        }
        for bad in ["", "manylinux_2_x86_64", "manylinux_x_y_x86_64", "musllinux_1_2_", "win_mips", "ios_17_0", "linux"]
        {
            assert_eq!(TargetEnvironment::parse("3.12", bad), Err(TargetError::Platform(bad.into())), "{bad}");
        }
    }

    #[test]
    fn manylinux_follows_glibc_and_the_legacy_aliases() {
        check(
            &target("3.12", "manylinux_2_28_x86_64"),
            &[
                ("a-1-cp312-cp312-manylinux1_x86_64.whl", true),
                ("a-1-cp312-cp312-manylinux2010_x86_64.whl", true),
                ("a-1-cp312-cp312-manylinux2014_x86_64.whl", true),
                ("a-1-cp312-cp312-manylinux_2_28_x86_64.whl", true),
                ("a-1-cp312-cp312-manylinux_2_34_x86_64.whl", false),
                ("a-1-cp312-cp312-manylinux_2_17_aarch64.whl", false),
                ("a-1-cp312-cp312-musllinux_1_1_x86_64.whl", false),
                ("a-1-cp312-cp312-linux_x86_64.whl", true),
                ("a-1-cp312-cp312-manylinux_2_34_x86_64.manylinux_2_17_x86_64.whl", true),
                ("a-1-cp312-cp312-win_amd64.whl", false),
                ("a-1-cp312-cp312-macosx_10_9_x86_64.whl", false),
            ],
        );
        check(
            &target("3.12", "manylinux2010_x86_64"),
            &[("a-1-cp312-cp312-manylinux1_x86_64.whl", true), ("a-1-cp312-cp312-manylinux2014_x86_64.whl", false)],
        );
    }

    #[test]
    fn musllinux_follows_the_musl_version() {
        check(
            &target("3.11", "musllinux_1_2_aarch64"),
            &[
                ("a-1-cp311-cp311-musllinux_1_1_aarch64.whl", true),
                ("a-1-cp311-cp311-musllinux_1_2_aarch64.whl", true),
                ("a-1-cp311-cp311-musllinux_1_3_aarch64.whl", false),
                ("a-1-cp311-cp311-manylinux_2_17_aarch64.whl", false),
                ("a-1-py3-none-any.whl", true),
            ],
        );
    }

    #[test]
    fn macos_follows_the_version_and_the_architecture_families() {
        check(
            &target("3.12", "macosx_11_0_arm64"),
            &[
                ("a-1-cp312-cp312-macosx_11_0_arm64.whl", true),
                ("a-1-cp312-cp312-macosx_10_9_universal2.whl", true),
                ("a-1-cp312-cp312-macosx_12_0_arm64.whl", false),
                ("a-1-cp312-cp312-macosx_10_9_x86_64.whl", false),
                ("a-1-cp312-cp312-macosx_10_9_intel.whl", false),
            ],
        );
        check(
            &target("3.12", "macosx_10_15_x86_64"),
            &[
                ("a-1-cp312-cp312-macosx_10_9_x86_64.whl", true),
                ("a-1-cp312-cp312-macosx_10_6_intel.whl", true),
                ("a-1-cp312-cp312-macosx_10_9_universal2.whl", true),
                ("a-1-cp312-cp312-macosx_11_0_x86_64.whl", false),
                ("a-1-cp312-cp312-macosx_11_0_arm64.whl", false),
            ],
        );
    }

    #[test]
    fn windows_tags_match_exactly_and_never_match_linux() {
        check(
            &target("3.12", "win_amd64"),
            &[
                ("a-1-cp312-cp312-win_amd64.whl", true),
                ("a-1-cp312-cp312-win32.whl", false),
                ("a-1-cp312-cp312-win_arm64.whl", false),
                ("a-1-cp312-cp312-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp312-cp312-linux_x86_64.whl", false),
                ("a-1-py2.py3-none-any.whl", true),
            ],
        );
        check(&target("3.12", "manylinux_2_17_x86_64"), &[("a-1-cp312-cp312-win_amd64.whl", false)]);
    }

    #[test]
    fn linux_and_any_targets() {
        check(
            &target("3.10", "linux_x86_64"),
            &[
                ("a-1-cp310-cp310-linux_x86_64.whl", true),
                ("a-1-cp310-cp310-manylinux_2_17_x86_64.whl", false),
                ("a-1-py3-none-any.whl", true),
            ],
        );
        check(
            &target("3.10", "any"),
            &[
                ("a-1-py3-none-any.whl", true),
                ("a-1-cp310-cp310-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp310-cp310-win_amd64.whl", false),
            ],
        );
    }

    #[test]
    fn python_and_abi_tags() {
        check(
            &target("3.12", "manylinux_2_17_x86_64"),
            &[
                ("a-1-py3-none-any.whl", true),
                ("a-1-py2-none-any.whl", false),
                ("a-1-py312-none-any.whl", true),
                ("a-1-py38-none-any.whl", true),
                ("a-1-py313-none-any.whl", false),
                ("a-1-cp312-none-any.whl", true),
                ("a-1-cp311-none-any.whl", false),
                ("a-1-cp312-cp312-manylinux_2_17_x86_64.whl", true),
                ("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp313-cp313-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp38-abi3-manylinux_2_17_x86_64.whl", true),
                ("a-1-cp312-abi3-manylinux_2_17_x86_64.whl", true),
                ("a-1-cp313-abi3-manylinux_2_17_x86_64.whl", false),
                ("a-1-py3-abi3-manylinux_2_17_x86_64.whl", false),
                ("a-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp312-cp312d-manylinux_2_17_x86_64.whl", false),
            ],
        );
    }

    #[test]
    fn free_threaded_wheels_do_not_fit_a_standard_build() {
        check(
            &target("3.13", "manylinux_2_17_x86_64"),
            &[
                ("a-1-cp313-cp313t-manylinux_2_17_x86_64.whl", false),
                ("a-1-cp313-cp313-manylinux_2_17_x86_64.whl", true),
                ("a-1-cp313-cp313.cp313t-manylinux_2_17_x86_64.whl", true),
            ],
        );
    }

    #[test]
    fn pymalloc_abi_before_python_3_8() {
        check(
            &target("3.7", "win_amd64"),
            &[("a-1-cp37-cp37m-win_amd64.whl", true), ("a-1-cp38-cp38-win_amd64.whl", false)],
        );
        check(&target("3.8", "win_amd64"), &[("a-1-cp38-cp38m-win_amd64.whl", false)]);
    }
}
