//! The PEP 508 marker environment of a target environment.

use larder_index::tags::{Platform, TargetEnvironment, WindowsArch};
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};

/// The marker values a CPython of the target's version on the target's
/// platform reports. A target names no patch release, so
/// `python_full_version` (and `implementation_version`) is `X.Y.0`;
/// `platform_release` and `platform_version` are empty. For the `any`
/// platform every platform marker is empty, so `sys_platform == "..."`
/// is false for every platform and `!=` true.
pub fn marker_environment(target: &TargetEnvironment) -> MarkerEnvironment {
    let (major, minor) = target.python_version;
    let python_version = format!("{major}.{minor}");
    let python_full_version = format!("{major}.{minor}.0");
    let (sys_platform, platform_system, os_name, platform_machine) = match &target.platform {
        Platform::Manylinux { arch, .. } | Platform::Musllinux { arch, .. } | Platform::Linux { arch } => {
            ("linux", "Linux", "posix", arch.as_str())
        }
        Platform::Macos { arch, .. } => ("darwin", "Darwin", "posix", arch.as_str()),
        Platform::Windows(arch) => {
            let machine = match arch {
                WindowsArch::X86 => "x86",
                WindowsArch::Amd64 => "AMD64",
                WindowsArch::Arm64 => "ARM64",
            };
            ("win32", "Windows", "nt", machine)
        }
        Platform::Any => ("", "", "", ""),
    };
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &python_full_version,
        os_name,
        platform_machine,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system,
        platform_version: "",
        python_full_version: &python_full_version,
        python_version: &python_version,
        sys_platform,
    })
    .expect("versions built from two integers always parse")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use pep508_rs::{MarkerTree, Requirement};

    use super::*;

    fn env(python: &str, platform: &str) -> MarkerEnvironment {
        marker_environment(&TargetEnvironment::parse(python, platform).unwrap())
    }

    fn holds(marker: &str, env: &MarkerEnvironment) -> bool {
        MarkerTree::from_str(marker).unwrap().evaluate(env, &[])
    }

    #[test]
    fn every_platform_family_has_its_values() {
        for (platform, sys, system, os, machine) in [
            ("manylinux_2_28_x86_64", "linux", "Linux", "posix", "x86_64"),
            ("musllinux_1_2_aarch64", "linux", "Linux", "posix", "aarch64"),
            ("linux_armv7l", "linux", "Linux", "posix", "armv7l"),
            ("macosx_11_0_arm64", "darwin", "Darwin", "posix", "arm64"),
            ("macosx_10_9_x86_64", "darwin", "Darwin", "posix", "x86_64"),
            ("win_amd64", "win32", "Windows", "nt", "AMD64"),
            ("win32", "win32", "Windows", "nt", "x86"),
            ("win_arm64", "win32", "Windows", "nt", "ARM64"),
            ("any", "", "", "", ""),
        ] {
            let env = env("3.12", platform);
            assert_eq!(
                (env.sys_platform(), env.platform_system(), env.os_name(), env.platform_machine()),
                (sys, system, os, machine),
                "{platform}"
            );
            assert_eq!(env.implementation_name(), "cpython");
            assert_eq!(env.platform_python_implementation(), "CPython");
            assert_eq!(env.python_version().to_string(), "3.12");
            assert_eq!(env.python_full_version().to_string(), "3.12.0");
        }
    }

    #[test]
    fn markers_evaluate_against_the_target() {
        let win = env("3.10", "win_amd64");
        let linux = env("3.12", "manylinux_2_17_x86_64");
        assert!(holds("sys_platform == 'win32' and python_version < '3.11'", &win));
        assert!(!holds("sys_platform == 'win32'", &linux));
        assert!(holds("platform_machine == 'x86_64' and python_full_version >= '3.12'", &linux));
        assert!(holds("os_name == 'nt' and platform_system == 'Windows'", &win));
        let any = env("3.12", "any");
        assert!(!holds("sys_platform == 'linux'", &any) && holds("sys_platform != 'win32'", &any));
        let requirement: Requirement =
            Requirement::from_str("rich; extra == 'cli' and python_version >= '3.8'").unwrap();
        assert!(requirement.evaluate_markers(&linux, &["cli".parse().unwrap()]));
        assert!(!requirement.evaluate_markers(&linux, &[]));
    }
}
