//! Copying the whole metadata from one database into another of the other
//! backend: a single-machine store's SQLite file into the PostgreSQL
//! database that several nodes will share, or back.
//!
//! Both backends have the same tables and columns (one migration set per
//! dialect, checked by a test), so the copy is generic: every table the
//! PostgreSQL side lists, every column of it, a batch of rows at a time,
//! read with booleans as integers (the SQLite form) and written with each
//! column's type. The target must be empty (migrated, nothing stored) and
//! is written in one transaction: a copy that fails leaves it empty, and is
//! simply run again. Leases are not copied (they belong to running nodes).

use std::collections::BTreeMap;

use super::backend::{DbRow, Pool, on_pool, on_tx};
use super::{Database, DbError};

/// Rows read from the source at once.
const BATCH: i64 = 5_000;

/// Tables not copied.
const SKIPPED: &[&str] = &["_sqlx_migrations", "leases"];

/// What a copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Tables copied.
    pub tables: usize,
    /// Rows copied, in all.
    pub rows: u64,
}

/// A column's type, as far as the copy is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Integer,
    Boolean,
    Text,
    Bytes,
}

/// A value read from the source.
enum Value {
    Integer(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Database {
    /// Copies every row of every table into `target`, an empty database of
    /// the other backend (migrated, as [`Database::connect`] leaves it).
    pub async fn copy_into(&self, target: &Database) -> Result<CopyReport, DbError> {
        let schema = match (&self.pool, &target.pool) {
            (Pool::Postgres(_), Pool::Sqlite(_)) => self.schema().await?,
            (Pool::Sqlite(_), Pool::Postgres(_)) => target.schema().await?,
            _ => return Err(DbError::Copy("one database must be SQLite and the other PostgreSQL".to_owned())),
        };
        let mut tx = target.write().await?;
        let mut report = CopyReport::default();
        for (table, columns) in &schema {
            let count = format!("SELECT COUNT(*) FROM {table}");
            let held: i64 =
                on_tx!(tx, |conn| sqlx::query_scalar(sqlx::AssertSqlSafe(count.as_str())).fetch_one(conn).await?);
            if held > 0 {
                return Err(DbError::Copy(format!("the target database already holds metadata (table {table})")));
            }
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            let read: Vec<String> = columns
                .iter()
                .map(|(name, kind)| match kind {
                    Kind::Boolean => format!(
                        "CASE WHEN {name} IS NULL THEN NULL WHEN {name} THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END \
                         AS {name}"
                    ),
                    _ => name.clone(),
                })
                .collect();
            let select = format!("SELECT {} FROM {table} LIMIT $1 OFFSET $2", read.join(", "));
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let insert = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), placeholders.join(", "));
            let mut offset = 0;
            loop {
                let rows: Vec<Vec<Value>> = on_pool!(&self.pool, |pool| {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str()))
                        .bind(BATCH)
                        .bind(offset)
                        .fetch_all(pool)
                        .await?;
                    rows.iter()
                        .map(|row| {
                            columns
                                .iter()
                                .map(|(name, kind)| match kind {
                                    Kind::Text => Value::Text(row.col(name)),
                                    Kind::Bytes => Value::Bytes(row.col(name)),
                                    _ => Value::Integer(row.col(name)),
                                })
                                .collect()
                        })
                        .collect()
                });
                for row in &rows {
                    on_tx!(tx, |conn| {
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()));
                        for (value, (_, kind)) in row.iter().zip(columns) {
                            query = match (value, kind) {
                                (Value::Integer(v), Kind::Boolean) => query.bind(v.map(|v| v != 0)),
                                (Value::Integer(v), _) => query.bind(*v),
                                (Value::Text(v), _) => query.bind(v.clone()),
                                (Value::Bytes(v), _) => query.bind(v.clone()),
                            };
                        }
                        query.execute(conn).await?;
                    });
                }
                report.rows += rows.len() as u64;
                if (rows.len() as i64) < BATCH {
                    break;
                }
                offset += BATCH;
            }
            report.tables += 1;
        }
        if let Pool::Postgres(_) = target.pool {
            // The journal's serials were written as they were: its identity
            // goes on from the highest.
            on_tx!(tx, |conn| {
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('journal', 'serial'), COALESCE(MAX(serial), 0) + 1, false)
                     FROM journal",
                )
                .execute(conn)
                .await?;
            });
        }
        tx.commit().await?;
        Ok(report)
    }

    /// The tables of this PostgreSQL database to copy (not its views),
    /// each with its columns in order.
    async fn schema(&self) -> Result<BTreeMap<String, Vec<(String, Kind)>>, DbError> {
        let rows: Vec<(String, String, String)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as(
                "SELECT c.table_name::text, c.column_name::text, c.data_type::text
                 FROM information_schema.columns c JOIN information_schema.tables t
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                 ORDER BY c.table_name, c.ordinal_position",
            )
            .fetch_all(pool)
            .await?
        });
        let mut tables: BTreeMap<String, Vec<(String, Kind)>> = BTreeMap::new();
        for (table, column, data_type) in rows {
            if SKIPPED.contains(&table.as_str()) {
                continue;
            }
            let kind = match data_type.as_str() {
                "bigint" | "integer" => Kind::Integer,
                "boolean" => Kind::Boolean,
                "text" => Kind::Text,
                "bytea" => Kind::Bytes,
                _ => return Err(DbError::Corrupt("a column of a type the copy does not know")),
            };
            tables.entry(table).or_default().push((column, kind));
        }
        Ok(tables)
    }
}

#[cfg(test)]
mod tests {
    use larder_index::{IndexDefinition, IndexKind};

    use super::*;
    use crate::db::testing::{Backend, TestDb};
    use crate::db::tests::new_file;

    /// What a database holds, in a comparable form.
    async fn contents(db: &Database) -> (Vec<String>, u64, Vec<IndexDefinition>, Vec<(u64, String)>) {
        let projects = db.projects("local").await.unwrap().into_iter().map(|p| p.display_name).collect();
        let changes = db.changes_since(0, 100).await.unwrap();
        let changes = changes.into_iter().map(|(serial, name)| (serial, name.as_str().to_owned())).collect();
        (projects, db.last_serial().await.unwrap(), db.index_definitions().await.unwrap(), changes)
    }

    #[tokio::test]
    async fn sqlite_metadata_moves_into_postgres_and_back() {
        let (sqlite, postgres, back) =
            (TestDb::new(Backend::Sqlite), TestDb::new(Backend::Postgres), TestDb::new(Backend::Sqlite));
        let source = sqlite.open().await;
        source.add_files("local", &[new_file("Demo", "demo-1.0.tar.gz", b"demo")]).await.unwrap();
        source.add_files("local", &[new_file("other", "other-1.0.tar.gz", b"other")]).await.unwrap();
        let mut team = IndexDefinition::new("team", IndexKind::Hosted).unwrap();
        team.anonymous_read = false;
        source.put_index(&team).await.unwrap();
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        source.put_upstream_project_list(at, b"\x1f\x8b\0list").await.unwrap();
        let expected = contents(&source).await;
        assert_eq!(expected.1, 2);

        let target = postgres.open().await;
        let report = source.copy_into(&target).await.unwrap();
        assert!(report.tables > 10 && report.rows >= 7, "{report:?}");
        assert_eq!(contents(&target).await, expected);
        assert_eq!(target.upstream_project_list().await.unwrap(), Some((at, b"\x1f\x8b\0list".to_vec())));
        assert!(!target.file_rows(&new_file("Demo", "", b"demo").sha256, "demo-1.0.tar.gz").await.unwrap().is_empty());
        let again = source.copy_into(&target).await.unwrap_err();
        assert!(again.to_string().contains("already holds metadata"), "{again}");
        // New changes on the target go on from the copied serials.
        target.add_files("local", &[new_file("third", "third-1.0.tar.gz", b"third")]).await.unwrap();
        assert_eq!(target.last_serial().await.unwrap(), 3);

        let returned = back.open().await;
        target.copy_into(&returned).await.unwrap();
        assert_eq!(contents(&returned).await, contents(&target).await);
        assert_eq!(returned.upstream_project_list().await.unwrap(), Some((at, b"\x1f\x8b\0list".to_vec())));
        let same = source.copy_into(&sqlite.open().await).await.unwrap_err();
        assert!(same.to_string().contains("SQLite and the other PostgreSQL"), "{same}");
    }
}
