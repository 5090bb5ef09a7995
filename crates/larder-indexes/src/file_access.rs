//! Who may download a file: anyone when an index that reads anonymously
//! shows it, otherwise only holders of a read token of an index that does.
//! Decided once per file URL (a server remembers the answer with the blob,
//! so a warm public file costs nothing more).

use std::sync::Arc;

use larder_index::{IndexDefinition, IndexKind, NormalizedName, Sha256};
use larder_store::UPSTREAM_INDEX;

use crate::layered::{IndexError, Indexes};
use crate::named::{Live, Purpose, Resolution};

/// Who may download a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAccess {
    /// Anyone.
    Public,
    /// Holders of a read token of one of these indexes (none: nobody,
    /// e.g. a file only a removed index held).
    Token(Arc<[Arc<IndexDefinition>]>),
}

impl Indexes {
    /// Who may download the file `filename` with digest `sha256`.
    ///
    /// Public when an index holding a row for it reads anonymously (the
    /// default index shows `local` and `upstream` rows to anyone), or when
    /// an anonymous index over such an index shows the file on its page
    /// (its own project may hide it). Otherwise the read-token indexes
    /// that hold it, or have one that does among their bases, may.
    pub async fn file_access(&self, sha256: &Sha256, filename: &str) -> Result<FileAccess, IndexError> {
        let holders = self.store.db().file_holders(sha256, filename).await?;
        let all = self.registry.all().await?;
        let open = |index: &str| {
            matches!(index, larder_index::LOCAL_INDEX | UPSTREAM_INDEX)
                || all.get(index).is_some_and(|definition| definition.anonymous_read)
        };
        if holders.is_empty() || holders.iter().any(|(index, _)| open(index)) {
            return Ok(FileAccess::Public);
        }
        let mut readers = Vec::new();
        for index in all.values().filter(|index| !matches!(index.kind, IndexKind::Mirror)) {
            let shown = self.store_indexes(index).await?;
            let held: Vec<&NormalizedName> =
                holders.iter().filter(|(holder, _)| shown.contains(holder)).map(|(_, project)| project).collect();
            if held.is_empty() {
                continue;
            }
            if !index.anonymous_read {
                readers.push(index.clone());
            } else if self.shows(index, &held, sha256, filename).await? {
                return Ok(FileAccess::Public);
            }
        }
        Ok(FileAccess::Token(readers.into()))
    }

    /// Whether `index`'s page of one of `projects` lists the file.
    async fn shows(
        &self,
        index: &IndexDefinition,
        projects: &[&NormalizedName],
        sha256: &Sha256,
        filename: &str,
    ) -> Result<bool, IndexError> {
        let live = Live { indexes: self, purpose: Purpose::Fetch };
        for project in projects {
            if let Resolution::Found(found) = self.resolve(&live, index, project, 0).await?
                && found.record.files.iter().any(|f| f.sha256 == *sha256 && f.filename == filename)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use larder_index::IndexKind;
    use larder_store::{NewFile, Store};

    use super::*;

    fn file(project: &str, filename: &str) -> NewFile {
        NewFile {
            project: NormalizedName::new(project).unwrap(),
            display_name: project.into(),
            version: "1.0".into(),
            filename: filename.into(),
            sha256: Sha256::of(filename.as_bytes()),
            size: 1,
            upload_time: jiff::Timestamp::now(),
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
        }
    }

    fn names(access: &FileAccess) -> Vec<&str> {
        match access {
            FileAccess::Public => vec!["<public>"],
            FileAccess::Token(readers) => readers.iter().map(|r| r.name.as_str()).collect(),
        }
    }

    #[tokio::test]
    async fn a_file_is_public_only_where_an_anonymous_index_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let indexes = Indexes::new(Store::open(dir.path()).await.unwrap(), None);
        let mut secret = IndexDefinition::new("secret", IndexKind::Hosted).unwrap();
        secret.anonymous_read = false;
        indexes.registry().put(secret).await.unwrap();
        let mut over = IndexDefinition::new("over", IndexKind::Layered { bases: vec!["secret".into()] }).unwrap();
        over.anonymous_read = false;
        indexes.registry().put(over).await.unwrap();
        let public = IndexDefinition::new("public", IndexKind::Layered { bases: vec!["secret".into()] }).unwrap();
        indexes.registry().put(public).await.unwrap();
        let db = indexes.store().db();
        db.add_files("secret", &[file("hidden", "hidden-1.0.tar.gz"), file("shown", "shown-1.0.tar.gz")])
            .await
            .unwrap();
        db.add_files("public", &[file("hidden", "hidden-2.0.tar.gz")]).await.unwrap();
        db.add_files("local", &[file("open", "open-1.0.tar.gz")]).await.unwrap();

        let access = |name: &'static str| {
            let indexes = indexes.clone();
            async move { indexes.file_access(&Sha256::of(name.as_bytes()), name).await.unwrap() }
        };
        assert_eq!(access("open-1.0.tar.gz").await, FileAccess::Public, "local files are public");
        assert_eq!(access("shown-1.0.tar.gz").await, FileAccess::Public, "an anonymous index over secret shows it");
        assert_eq!(names(&access("hidden-1.0.tar.gz").await), ["over", "secret"], "public's own project hides it");
        assert_eq!(access("nowhere-1.0.tar.gz").await, FileAccess::Public, "no row: nothing to protect");
    }
}
