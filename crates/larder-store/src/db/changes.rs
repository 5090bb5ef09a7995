//! Hearing of changes that other nodes make to a shared PostgreSQL
//! database, as they commit.
//!
//! Migration 0005 makes every statement that adds to the journal notify
//! the channel [`CHANNEL`] (in a trigger, so no writer can forget to). A [`ChangeListener`] waits on it,
//! so a node reads the journal at once instead of at its next poll. It is
//! a fast path only: a notification sent while the listener reconnects is
//! lost, so whoever listens keeps polling the journal as the backstop.
//! SQLite has no notifications: processes sharing a data dir only poll.

use sqlx::postgres::PgListener;

use super::backend::Pool;
use super::{Database, DbError};

/// The channel the migration's trigger notifies.
const CHANNEL: &str = "larder_changes";

/// What a [`ChangeListener`] heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeNotice {
    /// Entries were added to the journal (a file published, stored,
    /// yanked or deleted; a page refreshed; a project's status set).
    Journal,
    /// The connection was lost and is back: anything may have changed
    /// meanwhile.
    Anything,
}

/// Notifications of commits made by any process sharing the database
/// (this one included).
pub struct ChangeListener {
    listener: PgListener,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener").finish_non_exhaustive()
    }
}

impl Database {
    /// Starts listening for changes, on a connection of its own; `None`
    /// on SQLite, which has no notifications.
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, DbError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener { listener }))
    }
}

impl ChangeListener {
    /// Waits for the next change. An error means the server cannot be
    /// reached: the next call reconnects (and answers
    /// [`ChangeNotice::Anything`] once it has).
    pub async fn next(&mut self) -> Result<ChangeNotice, DbError> {
        Ok(match self.listener.try_recv().await? {
            None => ChangeNotice::Anything,
            Some(notification) if notification.payload() == "journal" => ChangeNotice::Journal,
            Some(_) => ChangeNotice::Anything,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use larder_index::{IndexDefinition, IndexKind};

    use super::*;
    use crate::db::testing::{Backend, TestDb};

    async fn next(listener: &mut ChangeListener) -> ChangeNotice {
        tokio::time::timeout(Duration::from_secs(10), listener.next()).await.expect("a notification").unwrap()
    }

    #[tokio::test]
    async fn a_listener_hears_of_commits_made_through_another_handle() {
        let test = TestDb::new(Backend::Postgres);
        let (db, other) = (test.open().await, test.open().await);
        let mut listener = db.change_listener().await.unwrap().expect("PostgreSQL notifies");
        let file = crate::db::tests::new_file("demo", "demo-1.0.tar.gz", b"demo");
        other.add_files("local", &[file.clone(), crate::db::tests::new_file("b", "b-1.0.tar.gz", b"b")]).await.unwrap();
        assert_eq!(next(&mut listener).await, ChangeNotice::Journal, "one notice per transaction");
        // A write that changes nothing is not a change; the next one is.
        other.add_files("local", &[file]).await.unwrap();
        other.put_index(&IndexDefinition::new("team", IndexKind::Hosted).unwrap()).await.unwrap();
        other.add_files("local", &[crate::db::tests::new_file("c", "c-1.0.tar.gz", b"c")]).await.unwrap();
        assert_eq!(next(&mut listener).await, ChangeNotice::Journal);
        let early = tokio::time::timeout(Duration::from_millis(300), listener.next()).await;
        assert!(early.is_err(), "a notice for nothing: {early:?}");
    }

    #[tokio::test]
    async fn sqlite_has_no_notifications() {
        let test = TestDb::new(Backend::Sqlite);
        assert!(test.open().await.change_listener().await.unwrap().is_none());
    }
}
