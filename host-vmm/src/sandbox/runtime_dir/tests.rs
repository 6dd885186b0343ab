use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::{Arc, Barrier};

use super::*;
use crate::os::flock::lock;

fn temp_root() -> (vmm_sys_util::tempdir::TempDir, PathBuf) {
    let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
    let root = tmp.as_path().join("root");
    (tmp, root)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Names in `root` (hidden ones included), sorted.
fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A directory as a dead owner leaves it: private, with an unlocked pid file.
fn plant_stale(root: &Path, id: &str, pid: &str) -> PathBuf {
    ensure_private_dir(root).unwrap();
    let dir = root.join(id);
    ensure_private_dir(&dir).unwrap();
    std::fs::write(dir.join(PID_FILE), pid).unwrap();
    dir
}

#[test]
fn test_runtime_dir_private_locked_and_removed_on_drop() {
    let (_tmp, root) = temp_root();
    let dir = RuntimeDir::create(&root, "sb1").unwrap();
    let path = dir.path().to_path_buf();
    assert_eq!(path, root.join("sb1"));
    assert_eq!((mode(&root), mode(&path)), (0o700, 0o700));
    assert_eq!(mode(&path.join(PID_FILE)) & 0o077, 0);
    assert_eq!(
        std::fs::read_to_string(path.join(PID_FILE)).unwrap(),
        format!("{}\n", std::process::id())
    );
    assert_eq!(dir.vsock_socket(), root.join("sb1/vsock.sock"));
    let opened = RuntimeDir::open(&root, "sb1").unwrap();
    assert_eq!(opened.pid(), Some(std::process::id()));
    drop(opened);
    assert!(path.exists(), "a reader must not remove the directory");
    drop(dir);
    assert!(names(&root).is_empty(), "left: {:?}", names(&root));
}

#[test]
fn test_runtime_dir_live_owner_refused_as_in_use() {
    let (_tmp, root) = temp_root();
    let dir = plant_stale(&root, "sb", "1\n");
    // Another open file description holding the lock: a live owner.
    let holder = File::open(dir.join(PID_FILE)).unwrap();
    lock(&holder, LockKind::Exclusive).unwrap();
    let err = RuntimeDir::create(&root, "sb").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("sandbox sb is already running (id in use: host-vmm pid 1"),
        "{err}"
    );
    assert_eq!(RuntimeDir::open(&root, "sb").unwrap().pid(), Some(1));
    // The refused start left nothing (its hidden staging directory is gone).
    assert_eq!(names(&root), ["sb"]);
    drop(holder);
}

/// `kill -9` of the owner (its lock is free) while its pid is reused (pid 1 lives): the
/// directory is stale, reads as not running, and the next start reclaims it.
#[test]
fn test_runtime_dir_stale_reclaimed_even_if_pid_alive() {
    let (_tmp, root) = temp_root();
    let dir = plant_stale(&root, "sb", "1\n");
    std::fs::write(dir.join("vsock.sock"), "").unwrap();
    let victim = root.parent().unwrap().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("agent.log")).unwrap();
    let err = RuntimeDir::open(&root, "sb").unwrap_err();
    assert!(
        matches!(err, RuntimeDirError::Stale { pid: Some(1), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("reclaims it"), "{err}");
    let owner = RuntimeDir::create(&root, "sb").unwrap();
    assert!(!owner.vsock_socket().exists());
    assert!(std::fs::symlink_metadata(owner.agent_log()).is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(names(&root), ["sb"]);
    drop(owner);
    assert!(names(&root).is_empty());
}

#[test]
fn test_runtime_root_with_group_or_world_access_refused() {
    let (_tmp, root) = temp_root();
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = RuntimeDir::create(&root, "sb").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&root.display().to_string())
            && text.contains("mode 0777")
            && text.contains("required: owned by uid")
            && text.contains("mode 0700"),
        "{text}"
    );
    assert!(names(&root).is_empty(), "nothing created in a refused root");
    // Readers refuse it too.
    assert!(matches!(
        RuntimeDir::open(&root, "sb"),
        Err(RuntimeDirError::Private(_))
    ));
}

#[test]
fn test_sandbox_dir_with_world_access_refused() {
    let (_tmp, root) = temp_root();
    let dir = plant_stale(&root, "sb", "1\n");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for err in [
        RuntimeDir::create(&root, "sb").unwrap_err(),
        RuntimeDir::open(&root, "sb").unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                RuntimeDirError::Private(PrivateDirError::NotPrivate { mode: 0o755, .. })
            ),
            "{err}"
        );
    }
    assert!(dir.join(PID_FILE).exists(), "not removed");
}

#[test]
fn test_runtime_dir_without_pid_file_or_symlinked_pid_refused() {
    let (_tmp, root) = temp_root();
    ensure_private_dir(&root).unwrap();
    ensure_private_dir(&root.join("empty")).unwrap();
    assert!(matches!(
        RuntimeDir::create(&root, "empty"),
        Err(RuntimeDirError::NotASandbox { .. })
    ));
    let dir = root.join("link");
    ensure_private_dir(&dir).unwrap();
    std::os::unix::fs::symlink("/proc/self/stat", dir.join(PID_FILE)).unwrap();
    assert!(matches!(
        RuntimeDir::create(&root, "link"),
        Err(RuntimeDirError::Io { .. })
    ));
}

/// Eight starts with one id at once: exactly one wins, every other one is told the id is
/// in use, and nothing else is left.
#[test]
fn test_concurrent_starts_one_wins() {
    let (_tmp, root) = temp_root();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (root, barrier) = (root.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                RuntimeDir::create(&root, "same")
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, RuntimeDirError::InUse { .. }), "{e}");
        }
    }
    assert_eq!(names(&root), ["same"]);
    drop(results);
    assert!(names(&root).is_empty());
}

#[test]
fn test_open_missing_says_not_running_and_bad_id_refused() {
    let (_tmp, root) = temp_root();
    let err = RuntimeDir::open(&root, "nope").unwrap_err();
    assert!(
        err.to_string().starts_with("sandbox nope is not running"),
        "{err}"
    );
    assert!(matches!(
        RuntimeDir::create(&root, "../etc"),
        Err(RuntimeDirError::Id(_))
    ));
    assert!(!root.exists());
}

#[test]
fn test_wait_gone_follows_the_owner() {
    let (_tmp, root) = temp_root();
    let owner = RuntimeDir::create(&root, "sb").unwrap();
    let reader = RuntimeDir::open(&root, "sb").unwrap();
    let poll = Duration::from_millis(5);
    assert!(matches!(
        reader.wait_gone(Duration::from_millis(30), poll),
        Err(RuntimeDirError::StillRunning { .. })
    ));
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(owner);
    });
    reader.wait_gone(Duration::from_secs(5), poll).unwrap();
    assert!(!root.join("sb").exists());
    t.join().unwrap();
}

#[test]
fn test_runtime_root_explicit_then_root_then_xdg_for_users() {
    let os = |s: &str| Some(std::ffi::OsString::from(s));
    let root = |e, uid, x| runtime_root_from(e, uid, x);
    assert_eq!(
        root(os("/x"), 1000, os("/run/user/1000")),
        PathBuf::from("/x")
    );
    assert_eq!(root(os("/x"), 0, None), PathBuf::from("/x"));
    assert_eq!(
        root(None, 0, os("/run/user/0")),
        PathBuf::from("/run/host-vmm")
    );
    assert_eq!(
        root(os(""), 1000, os("/run/user/1000")),
        PathBuf::from("/run/user/1000/host-vmm")
    );
    assert_eq!(root(None, 1000, None), PathBuf::from("/run/host-vmm"));
    assert_eq!(root(None, 1000, os("")), PathBuf::from("/run/host-vmm"));
}
