//! Resolution against an in-memory index.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Mutex;

use larder_index::tags::TargetEnvironment;
use larder_index::{CoreMetadata, NormalizedName};
use larder_resolve::{PackageSource, Resolution, SourceError, SourceFile, resolve};
use pep508_rs::Requirement;

/// One file of the in-memory index.
struct File {
    file: SourceFile,
    metadata: String,
    build_requires: Vec<String>,
}

/// An index held in memory that counts every call.
#[derive(Default)]
struct Memory {
    projects: HashMap<NormalizedName, Vec<File>>,
    broken: Vec<NormalizedName>,
    calls: Mutex<BTreeMap<String, usize>>,
}

/// How to add a file.
#[derive(Default)]
struct Spec<'a> {
    requires_dist: &'a [&'a str],
    requires_python: Option<&'a str>,
    metadata_requires_python: Option<&'a str>,
    metadata_version: Option<&'a str>,
    yanked: bool,
    build_requires: &'a [&'a str],
}

impl Memory {
    fn add(&mut self, filename: &str, requires_dist: &[&str]) -> &mut Self {
        self.add_with(filename, Spec { requires_dist, ..Spec::default() })
    }

    fn add_with(&mut self, filename: &str, spec: Spec) -> &mut Self {
        let file = SourceFile::new(filename, spec.requires_python.map(str::to_owned), spec.yanked).unwrap();
        let mut metadata = format!(
            "Metadata-Version: {}\nName: {}\nVersion: {}\n",
            spec.metadata_version.unwrap_or("2.3"),
            file.dist.name(),
            file.dist.version()
        );
        if let Some(requires_python) = spec.metadata_requires_python {
            metadata.push_str(&format!("Requires-Python: {requires_python}\n"));
        }
        for requirement in spec.requires_dist {
            metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
        }
        let build_requires = if spec.build_requires.is_empty() {
            vec!["setuptools>=40.8.0".to_owned(), "wheel".to_owned()]
        } else {
            spec.build_requires.iter().map(|s| s.to_string()).collect()
        };
        self.projects.entry(file.dist.name().clone()).or_default().push(File { file, metadata, build_requires });
        self
    }

    fn count(&self, call: String) {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
    }

    fn find(&self, name: &NormalizedName, filename: &str) -> Result<&File, SourceError> {
        self.projects
            .get(name)
            .and_then(|files| files.iter().find(|f| f.file.filename == filename))
            .ok_or(SourceError::NotFound)
    }
}

impl PackageSource for Memory {
    async fn files(&self, name: &NormalizedName) -> Result<Vec<SourceFile>, SourceError> {
        self.count(format!("files {name}"));
        tokio::task::yield_now().await;
        if self.broken.contains(name) {
            return Err(SourceError::fetch(std::io::Error::other("connection reset by peer")));
        }
        let files = self.projects.get(name).ok_or(SourceError::NotFound)?;
        Ok(files.iter().map(|f| f.file.clone()).collect())
    }

    async fn metadata(&self, name: &NormalizedName, file: &SourceFile) -> Result<CoreMetadata, SourceError> {
        self.count(format!("metadata {}", file.filename));
        tokio::task::yield_now().await;
        let found = self.find(name, &file.filename)?;
        CoreMetadata::parse(found.metadata.as_bytes()).map_err(|e| SourceError::Invalid(e.to_string()))
    }

    async fn build_requires(&self, name: &NormalizedName, sdist: &SourceFile) -> Result<Vec<Requirement>, SourceError> {
        self.count(format!("build {}", sdist.filename));
        let found = self.find(name, &sdist.filename)?;
        Ok(found.build_requires.iter().map(|r| Requirement::from_str(r).unwrap()).collect())
    }
}

fn requirements(lines: &[&str]) -> Vec<Requirement> {
    lines.iter().map(|line| Requirement::from_str(line).unwrap()).collect()
}

async fn run(index: &Memory, roots: &[&str], python: &str, platform: &str) -> Resolution {
    let env = TargetEnvironment::parse(python, platform).unwrap();
    resolve(&requirements(roots), &env, index).await
}

/// `name version` of every resolved release.
fn releases(resolution: &Resolution) -> Vec<String> {
    resolution.packages.iter().map(|p| format!("{} {}", p.name, p.version)).collect()
}

fn files(resolution: &Resolution) -> Vec<String> {
    resolution.packages.iter().flat_map(|p| p.files.clone()).collect()
}

const LINUX: &str = "manylinux_2_28_x86_64";
const WIN: &str = "win_amd64";

#[tokio::test]
async fn a_chain_resolves_to_the_highest_versions() {
    let mut index = Memory::default();
    index
        .add("app-1.0-py3-none-any.whl", &["lib>=1"])
        .add("lib-1.0-py3-none-any.whl", &[])
        .add("lib-2.0-py3-none-any.whl", &["Base_Util (>=0.5)"])
        .add("base_util-0.4-py3-none-any.whl", &[])
        .add("base_util-0.6-py3-none-any.whl", &[]);
    let resolution = run(&index, &["app"], "3.12", LINUX).await;
    assert_eq!(releases(&resolution), ["app 1.0", "base-util 0.6", "lib 2.0"]);
    assert!(resolution.failures.is_empty() && resolution.warnings.is_empty(), "{resolution:?}");
    assert_eq!(
        files(&resolution),
        ["app-1.0-py3-none-any.whl", "base_util-0.6-py3-none-any.whl", "lib-2.0-py3-none-any.whl"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extras_pull_their_requirements_only_when_asked_for() {
    let mut index = Memory::default();
    index
        .add(
            "tool-1.0-py3-none-any.whl",
            &[
                "click",
                "rich; extra == 'cli'",
                "colorama; extra == 'cli' and sys_platform == 'win32'",
                "tool[cli]; extra == 'all'",
            ],
        )
        .add("click-8.0-py3-none-any.whl", &[])
        .add("rich-13.0-py3-none-any.whl", &[])
        .add("colorama-0.4-py3-none-any.whl", &[]);
    assert_eq!(releases(&run(&index, &["tool"], "3.12", LINUX).await), ["click 8.0", "tool 1.0"]);
    assert_eq!(releases(&run(&index, &["tool[cli]"], "3.12", LINUX).await), ["click 8.0", "rich 13.0", "tool 1.0"]);
    assert_eq!(
        releases(&run(&index, &["tool[cli]"], "3.12", WIN).await),
        ["click 8.0", "colorama 0.4", "rich 13.0", "tool 1.0"]
    );
    assert_eq!(releases(&run(&index, &["tool[all]"], "3.12", LINUX).await), ["click 8.0", "rich 13.0", "tool 1.0"]);
}

#[tokio::test]
async fn markers_select_dependencies_per_environment() {
    let mut index = Memory::default();
    index
        .add("app-1.0-py3-none-any.whl", &["pywin; sys_platform == 'win32'", "backport; python_version < '3.11'"])
        .add("pywin-300-py3-none-any.whl", &[])
        .add("backport-1.0-py3-none-any.whl", &[]);
    assert_eq!(releases(&run(&index, &["app"], "3.10", LINUX).await), ["app 1.0", "backport 1.0"]);
    assert_eq!(releases(&run(&index, &["app"], "3.12", LINUX).await), ["app 1.0"]);
    assert_eq!(releases(&run(&index, &["app"], "3.12", WIN).await), ["app 1.0", "pywin 300"]);
    assert_eq!(releases(&run(&index, &["app"], "3.10", WIN).await), ["app 1.0", "backport 1.0", "pywin 300"]);
    // A requirement whose marker excludes the environment is skipped, not a failure.
    let resolution = run(&index, &["app", "pywin; sys_platform == 'win32'"], "3.12", LINUX).await;
    assert_eq!((releases(&resolution), resolution.failures), (vec!["app 1.0".to_owned()], vec![]));
}

#[tokio::test]
async fn requires_python_filters_versions() {
    let mut index = Memory::default();
    index
        .add_with("lib-2.0-py3-none-any.whl", Spec { requires_python: Some(">=3.11"), ..Spec::default() })
        .add_with("lib-1.5-py3-none-any.whl", Spec { metadata_requires_python: Some(">=3.11"), ..Spec::default() })
        .add("lib-1.0-py3-none-any.whl", &[]);
    assert_eq!(releases(&run(&index, &["lib"], "3.10", LINUX).await), ["lib 1.0"]);
    assert_eq!(releases(&run(&index, &["lib"], "3.12", LINUX).await), ["lib 2.0"]);
    let resolution = run(&index, &["lib>=2"], "3.10", LINUX).await;
    assert_eq!(resolution.failures.len(), 1);
    assert!(resolution.failures[0].reason.contains("note: lib 2.0 skipped: requires Python >=3.11"), "{resolution:?}");
}

#[tokio::test]
async fn yanked_releases_are_skipped_unless_pinned() {
    let mut index = Memory::default();
    index
        .add_with("lib-2.0-py3-none-any.whl", Spec { yanked: true, ..Spec::default() })
        .add("lib-1.0-py3-none-any.whl", &[]);
    assert_eq!(releases(&run(&index, &["lib"], "3.12", LINUX).await), ["lib 1.0"]);
    assert_eq!(releases(&run(&index, &["lib==2.0"], "3.12", LINUX).await), ["lib 2.0"]);
    let resolution = run(&index, &["lib>=2"], "3.12", LINUX).await;
    assert!(resolution.failures[0].reason.contains("note: lib 2.0 skipped: yanked"), "{resolution:?}");
}

#[tokio::test]
async fn pre_releases_only_when_asked_for_or_alone() {
    let mut index = Memory::default();
    index
        .add("lib-2.0b1-py3-none-any.whl", &[])
        .add("lib-1.0-py3-none-any.whl", &[])
        .add("edge-1.0rc1-py3-none-any.whl", &[]);
    assert_eq!(releases(&run(&index, &["lib"], "3.12", LINUX).await), ["lib 1.0"]);
    assert_eq!(releases(&run(&index, &["lib>=2.0b1"], "3.12", LINUX).await), ["lib 2.0b1"]);
    assert_eq!(releases(&run(&index, &["edge"], "3.12", LINUX).await), ["edge 1.0rc1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_names_both_sides_and_each_side_is_still_mirrored() {
    let mut index = Memory::default();
    index
        .add("alpha-1.0-py3-none-any.whl", &["shared>=2"])
        .add("beta-1.0-py3-none-any.whl", &["shared<2"])
        .add("shared-1.0-py3-none-any.whl", &[])
        .add("shared-2.0-py3-none-any.whl", &[]);
    let resolution = run(&index, &["alpha", "beta"], "3.12", LINUX).await;
    assert_eq!(releases(&resolution), ["alpha 1.0", "beta 1.0", "shared 1.0", "shared 2.0"]);
    let [failure] = resolution.failures.as_slice() else { panic!("{resolution:?}") };
    assert_eq!(failure.requirement, "alpha, beta");
    for side in
        ["alpha==1.0 depends on shared>=2", "beta==1.0 depends on shared<2", "you require alpha", "you require beta"]
    {
        assert!(failure.reason.contains(side), "{side:?} missing from:\n{}", failure.reason);
    }
    // Every project and every metadata file was fetched once, over the
    // four solver runs (together, each alone).
    let calls = index.calls.lock().unwrap();
    assert!(calls.values().all(|&n| n == 1), "{calls:?}");
    assert_eq!(calls.len(), 3 + 4, "{calls:?}");
}

#[tokio::test]
async fn an_unknown_project_fails_by_name_and_the_rest_resolves() {
    let mut index = Memory::default();
    index.add("real-1.0-py3-none-any.whl", &[]).add("wrapper-1.0-py3-none-any.whl", &["ghost>=1"]);
    let resolution = run(&index, &["real", "nope", "wrapper"], "3.12", LINUX).await;
    assert_eq!(releases(&resolution), ["real 1.0"]);
    let requirements: Vec<&str> = resolution.failures.iter().map(|f| f.requirement.as_str()).collect();
    assert_eq!(requirements, ["nope", "wrapper"]);
    assert!(resolution.failures[0].reason.contains("note: nope is not on the index"), "{resolution:?}");
    assert!(resolution.failures[1].reason.contains("wrapper==1.0 depends on ghost>=1"), "{resolution:?}");
    assert!(resolution.failures[1].reason.contains("note: ghost is not on the index"), "{resolution:?}");
}

#[tokio::test]
async fn a_source_error_fails_what_needs_it() {
    let mut index = Memory::default();
    index.add("fine-1.0-py3-none-any.whl", &[]).add("flaky-1.0-py3-none-any.whl", &[]);
    index.broken.push(NormalizedName::new("flaky").unwrap());
    let resolution = run(&index, &["fine", "flaky"], "3.12", LINUX).await;
    assert_eq!(releases(&resolution), ["fine 1.0"]);
    let [failure] = resolution.failures.as_slice() else { panic!("{resolution:?}") };
    assert_eq!(failure.requirement, "flaky");
    assert_eq!(failure.reason, "fetching the files of flaky failed: connection reset by peer");
}

#[tokio::test]
async fn only_wheels_for_the_environment_are_listed() {
    let mut index = Memory::default();
    index
        .add("fast-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", &[])
        .add("fast-1.0-cp312-cp312-musllinux_1_2_x86_64.whl", &[])
        .add("fast-1.0-cp312-cp312-win_amd64.whl", &[])
        .add("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", &[])
        .add("fast-1.0-cp38-abi3-manylinux_2_28_x86_64.whl", &[])
        .add("fast-1.0.tar.gz", &[]);
    assert_eq!(
        files(&run(&index, &["fast"], "3.12", LINUX).await),
        [
            "fast-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "fast-1.0-cp38-abi3-manylinux_2_28_x86_64.whl",
        ]
    );
    assert_eq!(files(&run(&index, &["fast"], "3.12", WIN).await), ["fast-1.0-cp312-cp312-win_amd64.whl"]);
    assert_eq!(files(&run(&index, &["fast"], "3.10", WIN).await), ["fast-1.0.tar.gz"]);
}

#[tokio::test]
async fn an_sdist_brings_its_build_requirements() {
    let mut index = Memory::default();
    index
        .add("app-1.0-py3-none-any.whl", &["native", "legacy"])
        .add("native-1.0-cp312-cp312-win_amd64.whl", &["six"])
        .add_with(
            "native-1.0.tar.gz",
            Spec { requires_dist: &["six"], build_requires: &["setuptools>=61", "cython>=3"], ..Spec::default() },
        )
        .add_with("legacy-0.9.tar.gz", Spec { metadata_version: Some("2.1"), ..Spec::default() })
        .add("six-1.16-py2.py3-none-any.whl", &[])
        .add_with("cython-3.0.tar.gz", Spec { build_requires: &["setuptools"], ..Spec::default() })
        .add("setuptools-60.0-py3-none-any.whl", &[])
        .add("setuptools-70.0-py3-none-any.whl", &[])
        .add("wheel-0.43-py3-none-any.whl", &[]);
    let resolution = run(&index, &["app"], "3.12", LINUX).await;
    assert_eq!(
        releases(&resolution),
        ["app 1.0", "cython 3.0", "legacy 0.9", "native 1.0", "setuptools 70.0", "six 1.16", "wheel 0.43"]
    );
    assert!(files(&resolution).contains(&"native-1.0.tar.gz".to_owned()));
    assert!(resolution.failures.is_empty(), "{resolution:?}");
    let [warning] = resolution.warnings.as_slice() else { panic!("{resolution:?}") };
    assert_eq!((warning.name.as_str(), warning.version.to_string().as_str()), ("legacy", "0.9"));
    assert!(warning.message.contains("Metadata-Version 2.1"), "{warning:?}");
    assert!(index.calls.lock().unwrap().values().all(|&n| n == 1), "{:?}", index.calls);
    // On Windows the wheel fits, so no build requirement is needed.
    let resolution = run(&index, &["native"], "3.12", WIN).await;
    assert_eq!(releases(&resolution), ["native 1.0", "six 1.16"]);
}

#[tokio::test]
async fn conflicting_build_requirements_are_reported_with_what_they_build() {
    let mut index = Memory::default();
    index
        .add_with("native-1.0.tar.gz", Spec { build_requires: &["setuptools>=99"], ..Spec::default() })
        .add("setuptools-70.0-py3-none-any.whl", &[]);
    let resolution = run(&index, &["native"], "3.12", LINUX).await;
    assert_eq!(releases(&resolution), ["native 1.0"]);
    let [failure] = resolution.failures.as_slice() else { panic!("{resolution:?}") };
    assert_eq!(failure.requirement, "setuptools>=99 (to build native-1.0.tar.gz)");
    assert!(failure.reason.contains("there is no usable version of setuptools>=99"), "{}", failure.reason);
}

#[test]
fn the_resolution_future_can_be_spawned() {
    fn spawnable<T: Send>(_: &T) {}
    let index = Memory::default();
    let env = TargetEnvironment::parse("3.12", LINUX).unwrap();
    spawnable(&resolve(&[], &env, &index));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_closure_is_fetched_once_with_many_calls_in_flight() {
    let mut index = Memory::default();
    let deps: Vec<String> = (0..60).map(|i| format!("dep{i}>=1")).collect();
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    index.add("hub-1.0-py3-none-any.whl", &deps);
    for i in 0..60 {
        index.add(&format!("dep{i}-1.0-py3-none-any.whl"), &["leaf"]);
        index.add(&format!("dep{i}-2.0-py3-none-any.whl"), &["leaf"]);
    }
    index.add("leaf-1.0-py3-none-any.whl", &[]);
    let resolution = run(&index, &["hub"], "3.12", LINUX).await;
    assert_eq!(resolution.packages.len(), 62, "{resolution:?}");
    assert!(
        resolution
            .packages
            .iter()
            .filter(|p| p.name.as_str().starts_with("dep"))
            .all(|p| p.version.to_string() == "2.0")
    );
    let calls = index.calls.lock().unwrap();
    assert!(calls.values().all(|&n| n == 1), "{calls:?}");
    assert_eq!(calls.len(), 62 * 2);
}
