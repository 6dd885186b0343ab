//! The thread factory: starts threads on behalf of confined threads that may not start
//! threads themselves (a vCPU thread activating a virtio device on the guest's
//! DRIVER_OK). A thread inherits its creator's filter, so the factory's own filter
//! allows what every kind it starts needs; each new thread then adds its own kind's
//! filter as its first act.
//!
//! Before [`super::enable`] (tests, `--no-seccomp`) [`spawn`] starts the thread directly.

use std::io;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use super::{confine, ThreadKind};

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
    std::thread::Builder::new()
        .name("thread-factory".into())
        .spawn(move || {
            confine(ThreadKind::Factory);
            for req in rx {
                let made = std::thread::Builder::new().name(req.name).spawn(req.work);
                let _ = req.reply.send(made);
            }
        })?;
    let _ = FACTORY.set(Mutex::new(tx));
    Ok(())
}

/// Starts a thread named `name` that confines itself as `kind` and then runs `work`;
/// through the factory when confinement is on.
pub fn spawn(
    name: String,
    kind: ThreadKind,
    work: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let work: Work = Box::new(move || {
        confine(kind);
        work()
    });
    let Some(factory) = FACTORY.get() else {
        return std::thread::Builder::new().name(name).spawn(work);
    };
    let (reply, answer) = mpsc::sync_channel(1);
    factory
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(Request { name, work, reply })
        .map_err(|_| io::Error::other("the thread factory is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the thread factory did not answer"))?
}
