//! The thread factory: starts threads on behalf of confined threads that may not start
//! threads themselves (a vCPU thread activating a virtio device on the guest's
//! DRIVER_OK). A thread inherits its creator's filter, so the factory's own filter
//! allows what every kind it starts needs; each new thread then adds its own kind's
//! filter as its first act.
//!
//! [`thread`] is how every host-vmm thread starts: the new thread confines itself as its
//! first act and the caller waits until it has, so a thread never runs a line of its
//! work unconfined, and a caller that then lets the guest run knows every filter is in.
//!
//! Before [`super::enable`] (tests, `--no-seccomp`) both start the thread directly.

use std::io;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use super::{confine, enabled, ThreadKind};

type Work = Box<dyn FnOnce() + Send + 'static>;

struct Request {
    name: String,
    work: Work,
    reply: SyncSender<io::Result<JoinHandle<()>>>,
}

static FACTORY: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();

/// Starts the factory thread (once, by [`super::enable`]).
pub(super) fn start() -> io::Result<()> {
    let (tx, rx) = mpsc::channel::<Request>();
    thread("thread-factory", ThreadKind::Factory, move || {
        for req in rx {
            let made = std::thread::Builder::new().name(req.name).spawn(req.work);
            let _ = req.reply.send(made);
        }
    })?;
    let _ = FACTORY.set(Mutex::new(tx));
    Ok(())
}

/// Starts a thread named `name` that confines itself as `kind`, then runs `work`;
/// returns once the thread is confined. The caller must be allowed to start threads
/// (it is unconfined, or of a kind with `thread_start`); a confined thread that is not
/// uses [`spawn`].
pub fn thread<T: Send + 'static>(
    name: impl Into<String>,
    kind: ThreadKind,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<JoinHandle<T>> {
    let builder = std::thread::Builder::new().name(name.into());
    if !enabled() {
        return builder.spawn(work);
    }
    let (confined_tx, confined) = mpsc::sync_channel::<()>(1);
    let handle = builder.spawn(move || {
        confine(kind);
        let _ = confined_tx.send(());
        work()
    })?;
    confined
        .recv()
        .map_err(|_| io::Error::other("the new thread ended before confining itself"))?;
    Ok(handle)
}

/// [`thread`], through the factory when confinement is on: for threads started by a
/// confined thread whose filter does not allow starting threads (a vCPU thread
/// activating a virtio device).
pub fn spawn(
    name: String,
    kind: ThreadKind,
    work: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let Some(factory) = FACTORY.get() else {
        return thread(name, kind, work);
    };
    let (confined_tx, confined) = mpsc::sync_channel::<()>(1);
    let work: Work = Box::new(move || {
        confine(kind);
        let _ = confined_tx.send(());
        work()
    });
    let (reply, answer) = mpsc::sync_channel(1);
    factory
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(Request { name, work, reply })
        .map_err(|_| io::Error::other("the thread factory is gone"))?;
    let handle = answer
        .recv()
        .map_err(|_| io::Error::other("the thread factory did not answer"))??;
    confined
        .recv()
        .map_err(|_| io::Error::other("the new thread ended before confining itself"))?;
    Ok(handle)
}
