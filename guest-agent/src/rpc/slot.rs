//! The agent's one sandbox: empty, being created, there, or being destroyed.
//!
//! The lock is held only to look at or change the state, never across the slow create or
//! destroy: those reserve the slot first (so a second CreateSandbox is refused at once), run
//! unlocked, then fill or empty it. Generic over the sandbox type so the rules are tested
//! without a real sandbox.

use std::sync::{Arc, Mutex, MutexGuard};

use super::RpcError;

enum State<T> {
    Empty,
    Creating,
    Ready(Arc<T>),
    Destroying,
}

/// Holds at most one sandbox.
pub struct SandboxSlot<T> {
    state: Mutex<State<T>>,
}

impl<T> Default for SandboxSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn no_sandbox() -> RpcError {
    RpcError::FailedPrecondition("no sandbox: CreateSandbox first".into())
}

impl<T> SandboxSlot<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::Empty),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sandbox; FAILED_PRECONDITION when there is none (or it is still being created,
    /// or being destroyed).
    pub fn get(&self) -> Result<Arc<T>, RpcError> {
        match &*self.lock() {
            State::Ready(sandbox) => Ok(Arc::clone(sandbox)),
            State::Creating => Err(RpcError::FailedPrecondition(
                "the sandbox is still being created".into(),
            )),
            State::Destroying => Err(RpcError::FailedPrecondition(
                "the sandbox is being destroyed".into(),
            )),
            State::Empty => Err(no_sandbox()),
        }
    }

    /// Creates the sandbox with `create` (run without the lock). ALREADY_EXISTS when there
    /// is one (or one is being created); FAILED_PRECONDITION while one is being destroyed.
    pub fn create<E>(&self, create: impl FnOnce() -> Result<Arc<T>, E>) -> Result<(), RpcError>
    where
        RpcError: From<E>,
    {
        {
            let mut state = self.lock();
            match &*state {
                State::Empty => *state = State::Creating,
                State::Creating | State::Ready(_) => {
                    return Err(RpcError::AlreadyExists(
                        "a sandbox already exists (one per agent)".into(),
                    ))
                }
                State::Destroying => {
                    return Err(RpcError::FailedPrecondition(
                        "the sandbox is being destroyed".into(),
                    ))
                }
            }
        }
        let result = create();
        let mut state = self.lock();
        match result {
            Ok(sandbox) => {
                *state = State::Ready(sandbox);
                Ok(())
            }
            Err(e) => {
                *state = State::Empty;
                Err(e.into())
            }
        }
    }

    /// Destroys the sandbox with `destroy` (run without the lock) and forgets it, whatever
    /// `destroy` returns (its error is returned). FAILED_PRECONDITION when there is none.
    pub fn destroy<E>(&self, destroy: impl FnOnce(&T) -> Result<(), E>) -> Result<(), RpcError>
    where
        RpcError: From<E>,
    {
        let sandbox = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Destroying) {
                State::Ready(sandbox) => sandbox,
                other => {
                    *state = other;
                    drop(state);
                    return self.get().map(|_| ());
                }
            }
        };
        let result = destroy(&sandbox);
        *self.lock() = State::Empty;
        result.map_err(RpcError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ttrpc::Code;

    fn ok(n: u32) -> impl FnOnce() -> Result<Arc<u32>, RpcError> {
        move || Ok(Arc::new(n))
    }

    #[test]
    fn test_empty_slot_is_failed_precondition() {
        let slot = SandboxSlot::<u32>::new();
        let e = slot.get().unwrap_err();
        assert_eq!(e.code(), Code::FAILED_PRECONDITION);
        assert_eq!(e.to_string(), "no sandbox: CreateSandbox first");
        let e = slot.destroy(|_| Ok::<_, RpcError>(())).unwrap_err();
        assert_eq!(e.code(), Code::FAILED_PRECONDITION);
    }

    #[test]
    fn test_second_create_is_already_exists() {
        let slot = SandboxSlot::new();
        slot.create(ok(1)).unwrap();
        let e = slot.create(ok(2)).unwrap_err();
        assert_eq!(e.code(), Code::ALREADY_EXISTS);
        assert_eq!(*slot.get().unwrap(), 1);
    }

    #[test]
    fn test_create_during_create_is_already_exists() {
        let slot = SandboxSlot::new();
        slot.create(|| {
            let e = slot.create(ok(2)).unwrap_err();
            assert_eq!(e.code(), Code::ALREADY_EXISTS);
            assert_eq!(slot.get().unwrap_err().code(), Code::FAILED_PRECONDITION);
            ok(1)()
        })
        .unwrap();
        assert_eq!(*slot.get().unwrap(), 1);
    }

    #[test]
    fn test_failed_create_leaves_the_slot_empty() {
        let slot = SandboxSlot::<u32>::new();
        let e = slot
            .create(|| Err(RpcError::Internal("boom".into())))
            .unwrap_err();
        assert_eq!(e.code(), Code::INTERNAL);
        slot.create(ok(3)).unwrap();
        assert_eq!(*slot.get().unwrap(), 3);
    }

    #[test]
    fn test_destroy_forgets_even_on_error_and_allows_a_new_one() {
        let slot = SandboxSlot::new();
        slot.create(ok(1)).unwrap();
        let e = slot
            .destroy(|n| {
                assert_eq!(*n, 1);
                assert_eq!(slot.get().unwrap_err().code(), Code::FAILED_PRECONDITION);
                assert_eq!(
                    slot.create(ok(9)).unwrap_err().code(),
                    Code::FAILED_PRECONDITION
                );
                Err(RpcError::DeadlineExceeded("slow".into()))
            })
            .unwrap_err();
        assert_eq!(e.code(), Code::DEADLINE_EXCEEDED);
        assert_eq!(slot.get().unwrap_err().code(), Code::FAILED_PRECONDITION);
        slot.create(ok(2)).unwrap();
        assert_eq!(*slot.get().unwrap(), 2);
    }
}
