//! Private indexes: their definitions, API tokens, uploads (with their
//! other digests and attestations), yank and delete, and the first-sight
//! clock of the release-age policy.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use super::backend::{DbRow, on_pool, on_tx};
use super::write::WriteTx;
use super::{Database, DbError, NewFile, insert_file, journal, touch_project};
use jiff::Timestamp;
use larder_index::{DistFilename, IndexDefinition, NormalizedName, ReleaseAgePolicy, Sha256};

/// A stored API token (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The public identifier, also the first part of the secret.
    pub id: String,
    /// The index it is for.
    pub index: String,
    /// `read`, `upload` or `admin`.
    pub scope: String,
    /// The salt of the hash, hex.
    pub salt: String,
    /// SHA-256 of salt and secret, hex.
    pub secret_sha256: String,
    /// What the token is for, as its creator said.
    pub description: Option<String>,
    /// When it was created.
    pub created: Timestamp,
    /// When it stops working, if ever.
    pub expires: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
}

/// What an upload stores beside the file row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadDetails {
    /// MD5 of the file, hex.
    pub md5: String,
    /// BLAKE2b-256 of the file, hex.
    pub blake2b_256: String,
    /// The blob holding the PEP 740 attestations sent with it.
    pub attestations_sha256: Option<Sha256>,
    /// The token that uploaded it.
    pub token_id: Option<String>,
}

/// What publishing an upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The file is new and published.
    Added,
    /// The same file (same name, same digest) was already published.
    AlreadyPresent,
    /// Another file is published under this filename.
    Conflict {
        /// Its digest.
        existing: Sha256,
    },
    /// This filename was published and deleted; it is never reused.
    Deleted,
    /// The release already has another sdist.
    SecondSdist {
        /// Its filename.
        existing: String,
    },
}

fn json_list(items: impl IntoIterator<Item = impl ToString>) -> String {
    serde_json::to_string(&items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>()).expect("strings serialize")
}

fn names(column: &'static str, text: &str) -> Result<BTreeSet<NormalizedName>, DbError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|_| DbError::Corrupt(column))?;
    list.iter().map(|n| NormalizedName::from_normalized(n).ok_or(DbError::Corrupt(column))).collect()
}

fn timestamp(column: &'static str, micros: Option<i64>) -> Result<Option<Timestamp>, DbError> {
    micros.map(|m| Timestamp::from_microsecond(m).map_err(|_| DbError::Corrupt(column))).transpose()
}

fn index_definition(row: &impl DbRow) -> Result<IndexDefinition, DbError> {
    let name: String = row.col("name");
    let bases: Vec<String> = serde_json::from_str(row.col("bases")).map_err(|_| DbError::Corrupt("indexes.bases"))?;
    let kind =
        IndexDefinition::kind_from(&name, row.col("kind"), bases).map_err(|_| DbError::Corrupt("indexes.kind"))?;
    let mut definition = IndexDefinition::new(&name, kind).map_err(|_| DbError::Corrupt("indexes.name"))?;
    definition.anonymous_read = row.col("anonymous_read");
    definition.release_age = ReleaseAgePolicy {
        min_age: row.col::<Option<i64>>("min_release_age_secs").map(|s| Duration::from_secs(s as u64)),
        exempt: names("indexes.release_age_exempt", row.col("release_age_exempt"))?,
    };
    definition.merge_bases = names("indexes.merge_bases", row.col("merge_bases"))?;
    Ok(definition)
}

/// The suffix of a hosted file's PEP 740 provenance URL.
pub const PROVENANCE_SUFFIX: &str = ".provenance";

fn upload_details(row: &impl DbRow) -> Result<UploadDetails, DbError> {
    Ok(UploadDetails {
        md5: row.col("md5"),
        blake2b_256: row.col("blake2b_256"),
        attestations_sha256: row
            .col::<Option<&str>>("attestations_sha256")
            .map(|v| Sha256::from_str(v).map_err(|_| DbError::Corrupt("upload_details.attestations_sha256")))
            .transpose()?,
        token_id: row.col("token_id"),
    })
}

fn token_record(row: &impl DbRow) -> Result<TokenRecord, DbError> {
    Ok(TokenRecord {
        id: row.col("id"),
        index: row.col("index_name"),
        scope: row.col("scope"),
        salt: row.col("salt"),
        secret_sha256: row.col("secret_sha256"),
        description: row.col("description"),
        created: timestamp("tokens.created_micros", Some(row.col("created_micros")))?
            .ok_or(DbError::Corrupt("tokens.created_micros"))?,
        expires: timestamp("tokens.expires_micros", row.col("expires_micros"))?,
        revoked: timestamp("tokens.revoked_micros", row.col("revoked_micros"))?,
    })
}

/// The query [`token_record`] reads, as a literal for `concat!` (queries
/// must be static strings).
macro_rules! select_tokens {
    () => {
        "SELECT id, index_name, scope, salt, secret_sha256, description, created_micros, expires_micros, \
         revoked_micros FROM tokens"
    };
}

impl Database {
    /// Every named index defined in the store, by name.
    pub async fn index_definitions(&self) -> Result<Vec<IndexDefinition>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(
                "SELECT name, kind, bases, anonymous_read, min_release_age_secs, release_age_exempt, merge_bases
                 FROM indexes ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(index_definition).collect()
        })
    }

    /// Creates or replaces an index definition.
    pub async fn put_index(&self, definition: &IndexDefinition) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO indexes
                     (name, kind, bases, anonymous_read, min_release_age_secs, release_age_exempt, merge_bases)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, bases = excluded.bases,
                     anonymous_read = excluded.anonymous_read, min_release_age_secs = excluded.min_release_age_secs,
                     release_age_exempt = excluded.release_age_exempt, merge_bases = excluded.merge_bases",
            )
            .bind(&definition.name)
            .bind(definition.kind.as_str())
            .bind(json_list(definition.kind.bases()))
            .bind(definition.anonymous_read)
            .bind(definition.release_age.min_age.map(|age| age.as_secs() as i64))
            .bind(json_list(&definition.release_age.exempt))
            .bind(json_list(&definition.merge_bases))
            .execute(conn)
            .await?;
        });
        tx.commit().await
    }

    /// Removes an index definition (its files stay, unreachable until an
    /// index of that name is defined again). False when there was none.
    pub async fn remove_index(&self, name: &str) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let removed = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM indexes WHERE name = $1").bind(name).execute(conn).await?.rows_affected()
        });
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Stores a new token.
    pub async fn insert_token(&self, token: &TokenRecord) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO tokens (id, index_name, scope, salt, secret_sha256, description, created_micros,
                                     expires_micros)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&token.id)
            .bind(&token.index)
            .bind(&token.scope)
            .bind(&token.salt)
            .bind(&token.secret_sha256)
            .bind(&token.description)
            .bind(token.created.as_microsecond())
            .bind(token.expires.map(|t| t.as_microsecond()))
            .execute(conn)
            .await?;
        });
        tx.commit().await
    }

    /// The token with this id.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, DbError> {
        on_pool!(&self.pool, |pool| {
            let row = sqlx::query(concat!(select_tokens!(), " WHERE id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(token_record).transpose()
        })
    }

    /// Every token (of one index, when given), oldest first.
    pub async fn tokens(&self, index: Option<&str>) -> Result<Vec<TokenRecord>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(concat!(
                select_tokens!(),
                " WHERE $1 IS NULL OR index_name = $1 ORDER BY created_micros, id"
            ))
            .bind(index)
            .fetch_all(pool)
            .await?;
            rows.iter().map(token_record).collect()
        })
    }

    /// Revokes a token. False when there is no such token or it was
    /// already revoked.
    pub async fn revoke_token(&self, id: &str, at: Timestamp) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let done = on_tx!(tx, |conn| {
            sqlx::query("UPDATE tokens SET revoked_micros = $1 WHERE id = $2 AND revoked_micros IS NULL")
                .bind(at.as_microsecond())
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Publishes an uploaded file in `index`, in one transaction with its
    /// details: refused when the filename was deleted before, holds other
    /// bytes, or would be a second sdist of its release; a no-op when the
    /// same file is already there.
    pub async fn publish_upload(
        &self,
        index: &str,
        file: &NewFile,
        details: &UploadDetails,
    ) -> Result<UploadOutcome, DbError> {
        let mut tx = self.write().await?;
        let (deleted, existing) = on_tx!(tx, |conn| {
            let deleted = sqlx::query("SELECT 1 FROM deleted_files WHERE index_name = $1 AND filename = $2")
                .bind(index)
                .bind(&file.filename)
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
            let existing: Option<String> =
                sqlx::query_scalar("SELECT sha256 FROM files WHERE index_name = $1 AND filename = $2")
                    .bind(index)
                    .bind(&file.filename)
                    .fetch_optional(&mut *conn)
                    .await?;
            (deleted, existing)
        });
        if deleted {
            return Ok(UploadOutcome::Deleted);
        }
        if let Some(existing) = existing {
            let existing = Sha256::from_str(&existing).map_err(|_| DbError::Corrupt("files.sha256"))?;
            return Ok(if existing == file.sha256 {
                UploadOutcome::AlreadyPresent
            } else {
                UploadOutcome::Conflict { existing }
            });
        }
        if let Ok(DistFilename::Sdist(new)) = DistFilename::parse(&file.filename) {
            let siblings: Vec<String> = on_tx!(tx, |conn| {
                sqlx::query_scalar("SELECT filename FROM files WHERE index_name = $1 AND project = $2")
                    .bind(index)
                    .bind(file.project.as_str())
                    .fetch_all(conn)
                    .await?
            });
            let same_release = |name: &String| matches!(DistFilename::parse(name), Ok(DistFilename::Sdist(other)) if other.version == new.version);
            if let Some(existing) = siblings.into_iter().find(same_release) {
                return Ok(UploadOutcome::SecondSdist { existing });
            }
        }
        // A hosted file's provenance is a path below the files root.
        let provenance =
            details.attestations_sha256.map(|_| format!("{}/{}{PROVENANCE_SUFFIX}", file.sha256, file.filename));
        insert_file(&mut tx, index, file, provenance).await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO upload_details (index_name, filename, md5, blake2b_256, attestations_sha256, token_id)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (index_name, filename) DO UPDATE SET md5 = excluded.md5,
                     blake2b_256 = excluded.blake2b_256, attestations_sha256 = excluded.attestations_sha256,
                     token_id = excluded.token_id",
            )
            .bind(index)
            .bind(&file.filename)
            .bind(&details.md5)
            .bind(&details.blake2b_256)
            .bind(details.attestations_sha256.map(|s| s.to_hex()))
            .bind(&details.token_id)
            .execute(conn)
            .await?;
        });
        let serial = journal(&mut tx, index, file.project.as_str(), &format!("upload {}", file.filename)).await?;
        touch_project(&mut tx, index, file.project.as_str(), &file.display_name, serial).await?;
        tx.commit().await?;
        Ok(UploadOutcome::Added)
    }

    /// The upload details of a project's files in `index`, by filename.
    pub async fn upload_details(
        &self,
        index: &str,
        project: &NormalizedName,
    ) -> Result<HashMap<String, UploadDetails>, DbError> {
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(
                "SELECT d.filename, d.md5, d.blake2b_256, d.attestations_sha256, d.token_id
                 FROM upload_details d JOIN files f ON f.index_name = d.index_name AND f.filename = d.filename
                 WHERE d.index_name = $1 AND f.project = $2",
            )
            .bind(index)
            .bind(project.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok((row.col("filename"), upload_details(row)?))).collect()
        })
    }

    /// The upload details of the hosted file with this digest and filename
    /// (in any index), with the index it is in.
    pub async fn upload_of(&self, sha256: &Sha256, filename: &str) -> Result<Option<(String, UploadDetails)>, DbError> {
        on_pool!(&self.pool, |pool| {
            let row = sqlx::query(
                "SELECT d.index_name, d.md5, d.blake2b_256, d.attestations_sha256, d.token_id
                 FROM upload_details d JOIN files f ON f.index_name = d.index_name AND f.filename = d.filename
                 WHERE d.filename = $1 AND f.sha256 = $2 LIMIT 1",
            )
            .bind(filename)
            .bind(sha256.to_hex())
            .fetch_optional(pool)
            .await?;
            row.map(|row| Ok((row.col("index_name"), upload_details(&row)?))).transpose()
        })
    }

    /// Yanks (`Some(reason)`, possibly empty) or unyanks (`None`) files of a
    /// project in `index`. Returns how many files changed.
    pub async fn set_yanked(
        &self,
        index: &str,
        project: &NormalizedName,
        filenames: &[String],
        reason: Option<&str>,
    ) -> Result<usize, DbError> {
        self.change_files(index, project, filenames, FilesChange::Yank(reason)).await
    }

    /// Deletes files of a project in `index`; their filenames are never
    /// published there again, and the project keeps its name (a hosted
    /// name stays reserved against the bases). Returns how many files went.
    pub async fn delete_files(
        &self,
        index: &str,
        project: &NormalizedName,
        filenames: &[String],
    ) -> Result<usize, DbError> {
        self.change_files(index, project, filenames, FilesChange::Delete(Timestamp::now())).await
    }

    /// Applies `change` to each named file of a project in `index`, in one
    /// transaction, and journals it when any file changed. Returns how
    /// many did.
    async fn change_files(
        &self,
        index: &str,
        project: &NormalizedName,
        filenames: &[String],
        change: FilesChange<'_>,
    ) -> Result<usize, DbError> {
        let mut tx = self.write().await?;
        let mut changed = 0;
        for filename in filenames {
            let file = (index, project.as_str(), filename.as_str());
            changed += match change {
                FilesChange::Yank(reason) => yank_file(&mut tx, file, reason).await?,
                FilesChange::Delete(at) => delete_file(&mut tx, file, at).await?,
            } as usize;
        }
        if changed > 0 {
            let action = format!("{} {}", change.action(), filenames.join(" "));
            journal_project_change(&mut tx, index, project, &action).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// When larder first saw each of these files (recording `now` for those
    /// it had not seen before).
    pub async fn first_seen(&self, digests: &[Sha256], now: Timestamp) -> Result<HashMap<Sha256, Timestamp>, DbError> {
        let mut seen = HashMap::with_capacity(digests.len());
        if digests.is_empty() {
            return Ok(seen);
        }
        let mut tx = self.write().await?;
        for digest in digests {
            let at: i64 = on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO first_seen (sha256, at_micros) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(digest.to_hex())
                .bind(now.as_microsecond())
                .execute(&mut *conn)
                .await?;
                sqlx::query_scalar("SELECT at_micros FROM first_seen WHERE sha256 = $1")
                    .bind(digest.to_hex())
                    .fetch_one(&mut *conn)
                    .await?
            });
            let at = timestamp("first_seen.at_micros", Some(at))?.ok_or(DbError::Corrupt("first_seen.at_micros"))?;
            seen.insert(*digest, at);
        }
        tx.commit().await?;
        Ok(seen)
    }
}

/// Journals a change to a project's files and points the project at it.
pub(super) async fn journal_project_change(
    tx: &mut WriteTx,
    index: &str,
    project: &NormalizedName,
    action: &str,
) -> Result<(), DbError> {
    let serial = journal(tx, index, project.as_str(), action).await?;
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE projects SET serial = $1 WHERE index_name = $2 AND name = $3")
            .bind(serial)
            .bind(index)
            .bind(project.as_str())
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// A change to some files of a hosted project.
#[derive(Clone, Copy)]
enum FilesChange<'a> {
    /// Yank with this reason (possibly empty), or unyank (`None`).
    Yank(Option<&'a str>),
    /// Delete for good, at this time.
    Delete(Timestamp),
}

impl FilesChange<'_> {
    /// The journal's word for it.
    fn action(&self) -> &'static str {
        match self {
            FilesChange::Yank(Some(_)) => "yank",
            FilesChange::Yank(None) => "unyank",
            FilesChange::Delete(_) => "delete",
        }
    }
}

/// Yanks or unyanks one file, `(index, project, filename)`; returns how
/// many rows changed.
async fn yank_file(
    tx: &mut WriteTx,
    (index, project, filename): (&str, &str, &str),
    reason: Option<&str>,
) -> Result<u64, DbError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE files SET yanked = $1, yanked_reason = $2
             WHERE index_name = $3 AND project = $4 AND filename = $5",
        )
        .bind(reason.is_some())
        .bind(reason)
        .bind(index)
        .bind(project)
        .bind(filename)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

/// Deletes one file, `(index, project, filename)`, and remembers its name
/// as deleted; returns how many rows went.
async fn delete_file(
    tx: &mut WriteTx,
    (index, project, filename): (&str, &str, &str),
    at: Timestamp,
) -> Result<u64, DbError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO deleted_files (index_name, filename, sha256, deleted_micros)
             SELECT index_name, filename, sha256, $1 FROM files
             WHERE index_name = $2 AND project = $3 AND filename = $4
             ON CONFLICT (index_name, filename) DO NOTHING",
        )
        .bind(at.as_microsecond())
        .bind(index)
        .bind(project)
        .bind(filename)
        .execute(&mut *conn)
        .await?;
        let deleted = sqlx::query("DELETE FROM files WHERE index_name = $1 AND project = $2 AND filename = $3")
            .bind(index)
            .bind(project)
            .bind(filename)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM upload_details WHERE index_name = $1 AND filename = $2")
            .bind(index)
            .bind(filename)
            .execute(&mut *conn)
            .await?;
        deleted
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;
    use larder_index::IndexKind;

    fn upload(filename: &str, content: &[u8]) -> NewFile {
        let dist = DistFilename::parse(filename).unwrap();
        NewFile {
            project: dist.name().clone(),
            display_name: dist.name().to_string(),
            filename: filename.to_owned(),
            version: dist.version().to_string(),
            sha256: Sha256::of(content),
            size: content.len() as u64,
            upload_time: Timestamp::now(),
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
        }
    }

    fn details() -> UploadDetails {
        UploadDetails { md5: "00".into(), blake2b_256: "11".into(), attestations_sha256: None, token_id: None }
    }

    each_backend! {
    async fn index_definitions_round_trip(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let mut team =
            IndexDefinition::new("team", IndexKind::Layered { bases: vec!["local".into(), "upstream".into()] })
                .unwrap();
        team.anonymous_read = false;
        team.release_age.min_age = Some(Duration::from_secs(7 * 86400));
        team.release_age.exempt.insert(NormalizedName::new("Urgent_Fix").unwrap());
        team.merge_bases.insert(NormalizedName::new("shared").unwrap());
        db.put_index(&team).await.unwrap();
        db.put_index(&IndexDefinition::new("ci", IndexKind::Hosted).unwrap()).await.unwrap();
        let all = db.index_definitions().await.unwrap();
        assert_eq!(all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["ci", "team"]);
        assert_eq!(all[1], team);
        assert!(db.remove_index("ci").await.unwrap());
        assert!(!db.remove_index("ci").await.unwrap());
    }
    }

    each_backend! {
    async fn uploads_are_immutable_deleted_names_stay_dead_and_one_sdist_per_release(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let sdist = upload("demo-1.0.tar.gz", b"one");
        assert_eq!(db.publish_upload("team", &sdist, &details()).await.unwrap(), UploadOutcome::Added);
        assert_eq!(db.publish_upload("team", &sdist, &details()).await.unwrap(), UploadOutcome::AlreadyPresent);
        let other = upload("demo-1.0.tar.gz", b"two");
        assert_eq!(
            db.publish_upload("team", &other, &details()).await.unwrap(),
            UploadOutcome::Conflict { existing: sdist.sha256 }
        );
        let zip = upload("demo-1.0.0.zip", b"three");
        assert_eq!(
            db.publish_upload("team", &zip, &details()).await.unwrap(),
            UploadOutcome::SecondSdist { existing: "demo-1.0.tar.gz".into() }
        );
        let wheel = upload("demo-1.0-py3-none-any.whl", b"four");
        assert_eq!(db.publish_upload("team", &wheel, &details()).await.unwrap(), UploadOutcome::Added);
        assert_eq!(db.upload_details("team", &wheel.project).await.unwrap().len(), 2);

        let project = sdist.project.clone();
        assert_eq!(
            db.set_yanked("team", &project, std::slice::from_ref(&wheel.filename), Some("bad")).await.unwrap(),
            1
        );
        let record = db.project("team", &project).await.unwrap().unwrap();
        assert_eq!(record.files.iter().find(|f| f.filename == wheel.filename).unwrap().yanked.as_deref(), Some("bad"));
        assert_eq!(db.delete_files("team", &project, std::slice::from_ref(&sdist.filename)).await.unwrap(), 1);
        assert_eq!(db.publish_upload("team", &sdist, &details()).await.unwrap(), UploadOutcome::Deleted);
        assert_eq!(db.publish_upload("other", &sdist, &details()).await.unwrap(), UploadOutcome::Added);
        let record = db.project("team", &project).await.unwrap().unwrap();
        assert_eq!(record.files.len(), 1);
    }
    }

    each_backend! {
    async fn tokens_are_listed_and_revoked_once(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let token = TokenRecord {
            id: "abc".into(),
            index: "team".into(),
            scope: "upload".into(),
            salt: "00".into(),
            secret_sha256: "11".into(),
            description: Some("ci".into()),
            created: Timestamp::from_second(1_700_000_000).unwrap(),
            expires: None,
            revoked: None,
        };
        db.insert_token(&token).await.unwrap();
        assert_eq!(db.token("abc").await.unwrap().as_ref(), Some(&token));
        assert_eq!(db.tokens(Some("team")).await.unwrap().len(), 1);
        assert_eq!(db.tokens(Some("other")).await.unwrap().len(), 0);
        let now = Timestamp::from_second(1_700_000_100).unwrap();
        assert!(db.revoke_token("abc", now).await.unwrap());
        assert!(!db.revoke_token("abc", now).await.unwrap());
        assert_eq!(db.token("abc").await.unwrap().unwrap().revoked, Some(now));
    }
    }

    each_backend! {
    async fn first_sight_is_recorded_once(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let digest = Sha256::of(b"x");
        let early = Timestamp::from_second(1_700_000_000).unwrap();
        let late = Timestamp::from_second(1_700_100_000).unwrap();
        assert_eq!(db.first_seen(&[digest], early).await.unwrap()[&digest], early);
        assert_eq!(db.first_seen(&[digest], late).await.unwrap()[&digest], early);
    }
    }
}
