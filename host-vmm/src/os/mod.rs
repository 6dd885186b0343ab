//! Thin, checked wrappers over the Linux calls that keep host-vmm's own files private: a
//! directory that must be the caller's alone ([`private_dir`]), files created with
//! `O_NOFOLLOW | O_CLOEXEC` ([`file`]), `flock` ([`flock`]), Unix sockets that are 0600
//! before they listen ([`socket`]) and children that die with host-vmm ([`child`]).
//!
//! Nothing here imports from the rest of the crate: every layer may use it.

pub mod child;
pub mod file;
pub mod flock;
pub mod private_dir;
pub mod socket;
