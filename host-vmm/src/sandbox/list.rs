//! The sandboxes in a runtime root, each judged by its pid file's lock.

use std::path::Path;

use super::id::validate_id;
use super::runtime_dir::{RuntimeDir, RuntimeDirError};
use crate::os::private_dir::check_private_dir;

/// What a directory in the runtime root is.
#[derive(Debug)]
pub enum SandboxState {
    /// Its host-vmm holds the lock.
    Live(RuntimeDir),
    /// Left by a host-vmm that is gone (`pid`: what its pid file says).
    Stale { pid: Option<u32> },
    /// Not usable: not private, not host-vmm's, ... (the error says).
    Refused(RuntimeDirError),
}

#[derive(Debug)]
pub struct SandboxEntry {
    pub id: String,
    pub state: SandboxState,
}

/// Every sandbox directory in `root`, sorted by id (hidden work directories and names that
/// are not ids are skipped; a missing root has none).
pub fn list_sandboxes(root: &Path) -> Result<Vec<SandboxEntry>, RuntimeDirError> {
    match check_private_dir(root) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    let entries = std::fs::read_dir(root).map_err(|source| RuntimeDirError::Io {
        path: root.to_path_buf(),
        op: "cannot list",
        source,
    })?;
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| validate_id(name).is_ok())
        .collect();
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let state = match RuntimeDir::open(root, &id) {
            Ok(dir) => SandboxState::Live(dir),
            Err(RuntimeDirError::Stale { pid, .. }) => SandboxState::Stale { pid },
            // Gone since the listing.
            Err(RuntimeDirError::NotRunning { .. }) => continue,
            Err(e) => SandboxState::Refused(e),
        };
        out.push(SandboxEntry { id, state });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::private_dir::ensure_private_dir;

    #[test]
    fn test_list_live_stale_and_skipped() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let root = tmp.as_path().join("root");
        assert!(list_sandboxes(&root).unwrap().is_empty());
        let live = RuntimeDir::create(&root, "b-live").unwrap();
        let stale = root.join("a-stale");
        ensure_private_dir(&stale).unwrap();
        std::fs::write(stale.join("pid"), "1\n").unwrap();
        std::fs::create_dir(root.join(".b-live.new-1-0")).unwrap();
        std::fs::write(root.join("not an id"), "").unwrap();
        let list = list_sandboxes(&root).unwrap();
        let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a-stale", "b-live"]);
        assert!(matches!(
            list[0].state,
            SandboxState::Stale { pid: Some(1) }
        ));
        match &list[1].state {
            SandboxState::Live(dir) => assert_eq!(dir.pid(), Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(live);
    }
}
