//! What one resolution has learned about the index, shared by every
//! solver run of it (the requirements together, each alone, each set of
//! build requirements): projects, metadata and build requirements, each
//! fetched once.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use larder_index::tags::TargetEnvironment;
use larder_index::{CoreMetadata, NormalizedName, Version};
use pep508_rs::{MarkerEnvironment, Requirement};

use crate::fetch::Fetcher;
use crate::markers::marker_environment;
use crate::project::Project;
use crate::source::{SourceError, SourceFile};

/// A source call the resolution cannot do without failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchFailed {
    /// A project's file list.
    #[error("fetching the files of {name} failed")]
    Files {
        /// The project.
        name: NormalizedName,
        /// What the source said.
        #[source]
        source: SourceError,
    },
    /// A file's core metadata.
    #[error("fetching the metadata of {filename} failed")]
    Metadata {
        /// The file.
        filename: String,
        /// What the source said.
        #[source]
        source: SourceError,
    },
}

/// The index as one resolution for one environment sees it.
pub(crate) struct Index {
    /// The target environment.
    pub(crate) env: TargetEnvironment,
    /// Its marker values.
    pub(crate) markers: MarkerEnvironment,
    fetcher: RefCell<Fetcher>,
    projects: RefCell<HashMap<NormalizedName, Rc<Project>>>,
    warnings: RefCell<BTreeMap<(NormalizedName, Version), String>>,
}

impl Index {
    /// An index for `env` that asks `fetcher`.
    pub(crate) fn new(env: &TargetEnvironment, fetcher: Fetcher) -> Self {
        Self {
            env: env.clone(),
            markers: marker_environment(env),
            fetcher: RefCell::new(fetcher),
            projects: RefCell::new(HashMap::new()),
            warnings: RefCell::new(BTreeMap::new()),
        }
    }

    /// A project's versions for the environment. A project the index does
    /// not have is an empty project.
    pub(crate) fn project(&self, name: &NormalizedName) -> Result<Rc<Project>, FetchFailed> {
        if let Some(project) = self.known_project(name) {
            return Ok(project);
        }
        let project = match self.fetcher.borrow_mut().files(name) {
            Ok(files) => Project::new(name, files, &self.env),
            Err(SourceError::NotFound) => Project::new(name, &[], &self.env),
            Err(error) => {
                return Err(FetchFailed::Files { name: name.clone(), source: error.clone() });
            }
        };
        let project = Rc::new(project);
        self.projects.borrow_mut().insert(name.clone(), Rc::clone(&project));
        Ok(project)
    }

    /// A project already read, without fetching.
    pub(crate) fn known_project(&self, name: &NormalizedName) -> Option<Rc<Project>> {
        self.projects.borrow().get(name).cloned()
    }

    /// Starts fetching a project's file list ahead of need.
    pub(crate) fn prefetch(&self, name: &NormalizedName) {
        if !self.projects.borrow().contains_key(name) {
            self.fetcher.borrow_mut().prefetch_files(name);
        }
    }

    /// The core metadata of one file.
    pub(crate) fn metadata(&self, name: &NormalizedName, file: &SourceFile) -> Result<CoreMetadata, SourceError> {
        self.fetcher.borrow_mut().metadata(name, file).clone()
    }

    /// Starts fetching the build requirements of an sdist ahead of need.
    pub(crate) fn prefetch_build_requires(&self, name: &NormalizedName, sdist: &SourceFile) {
        self.fetcher.borrow_mut().prefetch_build_requires(name, sdist);
    }

    /// The build requirements of an sdist.
    pub(crate) fn build_requires(
        &self,
        name: &NormalizedName,
        sdist: &SourceFile,
    ) -> Result<Vec<Requirement>, SourceError> {
        self.fetcher.borrow_mut().build_requires(name, sdist).clone()
    }

    /// Notes that a release's dependencies may be incomplete.
    pub(crate) fn warn(&self, name: &NormalizedName, version: &Version, message: String) {
        self.warnings.borrow_mut().insert((name.clone(), version.clone()), message);
    }

    /// The warning noted for a release, if any.
    pub(crate) fn warning(&self, name: &NormalizedName, version: &Version) -> Option<String> {
        self.warnings.borrow().get(&(name.clone(), version.clone())).cloned()
    }
}
