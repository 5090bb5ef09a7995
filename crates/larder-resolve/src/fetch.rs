//! The bridge between the synchronous solver and the asynchronous source.
//!
//! pubgrub asks its questions synchronously, so the solver runs on a
//! blocking thread and sends each question to the caller's task as a
//! [`Request`]; [`serve`] answers them there, several at once, and the
//! solver thread waits for the one answer it needs. [`Fetcher`] remembers
//! every answer, so nothing is fetched twice, and lets the solver ask
//! ahead of need (the file lists of a package's dependencies).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Arc, mpsc};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use larder_index::{CoreMetadata, NormalizedName};
use pep508_rs::Requirement;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::source::{PackageSource, SourceError, SourceFile};

/// How many source calls [`serve`] runs at once.
const MAX_IN_FLIGHT: usize = 16;

/// Where an answer goes.
type Reply<T> = mpsc::Sender<Result<T, SourceError>>;

/// One question for the source.
pub(crate) enum Request {
    Files(NormalizedName, Reply<Vec<SourceFile>>),
    Metadata(NormalizedName, SourceFile, Reply<CoreMetadata>),
    BuildRequires(NormalizedName, SourceFile, Reply<Vec<Requirement>>),
}

/// Answers requests until every sender is gone (the solver is done).
pub(crate) async fn serve<S: PackageSource + ?Sized>(source: &S, mut requests: UnboundedReceiver<Request>) {
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            request = requests.recv(), if running.len() < MAX_IN_FLIGHT => match request {
                Some(request) => running.push(answer(source, request)),
                None => return,
            },
            Some(()) = running.next(), if !running.is_empty() => {}
        }
    }
}

async fn answer<S: PackageSource + ?Sized>(source: &S, request: Request) {
    // A failed send means the solver stopped waiting for this answer.
    match request {
        Request::Files(name, reply) => drop(reply.send(source.files(&name).await)),
        Request::Metadata(name, file, reply) => drop(reply.send(source.metadata(&name, &file).await)),
        Request::BuildRequires(name, file, reply) => drop(reply.send(source.build_requires(&name, &file).await)),
    }
}

/// The caller stopped waiting for the resolution (its future was dropped).
#[derive(Debug, thiserror::Error)]
#[error("the resolution was abandoned")]
struct Abandoned;

/// An answer that is on its way or has arrived.
enum Slot<T> {
    Pending(mpsc::Receiver<Result<T, SourceError>>),
    Ready(Result<T, SourceError>),
}

/// Answers by key, each asked for once.
struct Answers<K, T>(HashMap<K, Slot<T>>);

impl<K: Hash + Eq, T> Answers<K, T> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    /// Sends the request for `key` unless it was sent before.
    fn request(&mut self, key: K, requests: &UnboundedSender<Request>, make: impl FnOnce(Reply<T>) -> Request) {
        if let Entry::Vacant(entry) = self.0.entry(key) {
            entry.insert(Slot::Pending(send(requests, make)));
        }
    }

    /// The answer for `key`, asking for it and waiting as needed.
    fn get(
        &mut self,
        key: K,
        requests: &UnboundedSender<Request>,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> &Result<T, SourceError> {
        let slot = self.0.entry(key).or_insert_with(|| Slot::Pending(send(requests, make)));
        if let Slot::Pending(receiver) = slot {
            let answer = receiver.recv().unwrap_or_else(|_| Err(SourceError::Fetch(Arc::new(Abandoned))));
            *slot = Slot::Ready(answer);
        }
        match slot {
            Slot::Ready(answer) => answer,
            Slot::Pending(_) => unreachable!("a pending answer was just received"),
        }
    }
}

fn send<T>(
    requests: &UnboundedSender<Request>,
    make: impl FnOnce(Reply<T>) -> Request,
) -> mpsc::Receiver<Result<T, SourceError>> {
    let (reply, receiver) = mpsc::channel();
    // When `serve` is gone the request (and its reply sender) is dropped
    // here, and the receiver reports the resolution as abandoned.
    let _ = requests.send(make(reply));
    receiver
}

/// The solver thread's view of the source: blocking calls, each made once.
pub(crate) struct Fetcher {
    requests: UnboundedSender<Request>,
    files: Answers<NormalizedName, Vec<SourceFile>>,
    metadata: Answers<String, CoreMetadata>,
    build_requires: Answers<String, Vec<Requirement>>,
}

impl Fetcher {
    /// A fetcher whose requests [`serve`] answers on the other end.
    pub(crate) fn new(requests: UnboundedSender<Request>) -> Self {
        Self { requests, files: Answers::new(), metadata: Answers::new(), build_requires: Answers::new() }
    }

    /// Starts fetching a project's file list without waiting for it.
    pub(crate) fn prefetch_files(&mut self, name: &NormalizedName) {
        self.files.request(name.clone(), &self.requests, |reply| Request::Files(name.clone(), reply));
    }

    /// A project's file list.
    pub(crate) fn files(&mut self, name: &NormalizedName) -> &Result<Vec<SourceFile>, SourceError> {
        self.files.get(name.clone(), &self.requests, |reply| Request::Files(name.clone(), reply))
    }

    /// The core metadata of one file.
    pub(crate) fn metadata(&mut self, name: &NormalizedName, file: &SourceFile) -> &Result<CoreMetadata, SourceError> {
        self.metadata
            .get(file.filename.clone(), &self.requests, |reply| Request::Metadata(name.clone(), file.clone(), reply))
    }

    /// Starts fetching the build requirements of an sdist without waiting.
    pub(crate) fn prefetch_build_requires(&mut self, name: &NormalizedName, sdist: &SourceFile) {
        self.build_requires.request(sdist.filename.clone(), &self.requests, |reply| {
            Request::BuildRequires(name.clone(), sdist.clone(), reply)
        });
    }

    /// The build requirements of an sdist.
    pub(crate) fn build_requires(
        &mut self,
        name: &NormalizedName,
        sdist: &SourceFile,
    ) -> &Result<Vec<Requirement>, SourceError> {
        self.build_requires.get(sdist.filename.clone(), &self.requests, |reply| {
            Request::BuildRequires(name.clone(), sdist.clone(), reply)
        })
    }
}
