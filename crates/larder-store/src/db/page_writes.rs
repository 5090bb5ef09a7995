//! Group commit for upstream pages.
//!
//! A page refresh is a handful of statements and one commit, and a commit
//! is an fsync: a mirror (or a cold install) storing hundreds of pages
//! paid one fsync per project. Pages stored while another write holds this
//! process's write turn wait in a queue instead; whoever gets the turn
//! next writes every queued page in one transaction and answers each. A
//! page is durable when its caller gets the answer, as before; a crash
//! loses only pages whose callers had no answer yet. When the shared
//! transaction fails, each of its pages is written again on its own, so
//! one bad page fails alone and each caller gets its own error.
//!
//! The writing runs in a task of its own: a caller that stops waiting (a
//! client gone) cannot cut short a transaction that carries other
//! callers' pages.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::proxied::{PageWrite, replace_in};
use super::{Database, DbError};

/// What a page's caller gets: the filenames whose stored bytes stay.
type Answer = Result<Vec<String>, DbError>;

/// A page waiting to be written, and where its answer goes.
type Waiting = (PageWrite, oneshot::Sender<Answer>);

/// Pages waiting for the next group commit.
#[derive(Clone, Default)]
pub(crate) struct PageQueue(Arc<Mutex<Vec<Waiting>>>);

impl PageQueue {
    fn push(&self, page: PageWrite) -> oneshot::Receiver<Answer> {
        let (answer, answered) = oneshot::channel();
        self.0.lock().expect("never poisoned").push((page, answer));
        answered
    }

    fn take(&self) -> Vec<Waiting> {
        std::mem::take(&mut *self.0.lock().expect("never poisoned"))
    }
}

impl Database {
    /// Stores `page` in the next group commit and waits until it is
    /// durable (or failed).
    pub(crate) async fn write_page(&self, page: PageWrite) -> Answer {
        let answered = self.pages.push(page);
        let turn = self.take_turn().await;
        let group = self.pages.take();
        if !group.is_empty() {
            let db = self.clone();
            tokio::spawn(async move { db.commit_group(turn, group).await });
        } else {
            // An earlier writer took this page with its group.
            drop(turn);
        }
        answered.await.expect("a group commit answers every page it takes")
    }

    /// Writes `group` in one transaction in `turn` and answers each page;
    /// when that fails, writes each page in a transaction of its own.
    async fn commit_group(&self, turn: OwnedMutexGuard<()>, group: Vec<Waiting>) {
        let together = async {
            let mut tx = self.write_in_turn(turn).await?;
            let mut answers = Vec::with_capacity(group.len());
            for (page, _) in &group {
                answers.push(replace_in(&mut tx, page).await?);
            }
            tx.commit().await?;
            Ok::<_, DbError>(answers)
        }
        .await;
        match together {
            Ok(answers) => {
                for ((_, answer), refused) in group.into_iter().zip(answers) {
                    // A caller that stopped waiting needs no answer.
                    let _ = answer.send(Ok(refused));
                }
            }
            Err(error) if group.len() == 1 => {
                let _ = group.into_iter().next().expect("one page").1.send(Err(error));
            }
            Err(_) => {
                for (page, answer) in group {
                    let alone = async {
                        let mut tx = self.write().await?;
                        let refused = replace_in(&mut tx, &page).await?;
                        tx.commit().await?;
                        Ok(refused)
                    };
                    let _ = answer.send(alone.await);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use larder_index::NormalizedName;

    use super::super::UPSTREAM_INDEX;
    use super::super::proxied::tests::listed;
    use super::super::proxied::{PageState, UpstreamMeta};
    use super::super::testing::{TestDb, each_backend};

    each_backend! {
    /// Pages stored at once share commits, and each is stored whole: its
    /// files (more than one statement's chunk, one listed twice) listed,
    /// each with its journal entry.
    async fn pages_stored_at_once_are_each_stored_whole(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let state = PageState {
            fetched_at: Timestamp::from_second(1_700_000_000).unwrap(),
            found: true,
            source_url: None,
            etag: None,
            body_sha256: None,
        };
        let serial = db.last_serial().await.unwrap();
        let writes = (0..24).map(|p| {
            let (db, state) = (db.clone(), state.clone());
            tokio::spawn(async move {
                let name = NormalizedName::new(&format!("p{p}")).unwrap();
                let mut files: Vec<_> =
                    (0..40).map(|f| listed(&format!("p{p}-{f}.0.tar.gz"), format!("{p}/{f}").as_bytes())).collect();
                files.push(files[3].clone());
                db.replace_page(&name, name.as_str(), &state, &UpstreamMeta::default(), &files).await.unwrap()
            })
        });
        for refused in futures_util::future::join_all(writes).await {
            assert!(refused.unwrap().is_empty());
        }
        for p in 0..24 {
            let name = NormalizedName::new(&format!("p{p}")).unwrap();
            let project = db.project(UPSTREAM_INDEX, &name).await.unwrap().unwrap();
            assert_eq!(project.files.len(), 40, "{name}");
            assert_eq!(db.page_state(&name).await.unwrap(), Some(state.clone()));
        }
        assert_eq!(db.last_serial().await.unwrap(), serial + 24, "one journal entry per page");
    }
    }
}
