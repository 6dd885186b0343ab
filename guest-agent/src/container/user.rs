//! The process's identity and limits, applied in the helper just before exec: rlimits, user
//! and groups (keeping capabilities across the uid change), and finding the program in the
//! container's `PATH`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::spec::DEFAULT_PATH;

/// `RLIMIT_*` names and their resource numbers.
const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// The resource number of an `RLIMIT_*` name.
pub fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Sets one rlimit of the calling process.
pub fn set_rlimit(name: &str, soft: u64, hard: u64) -> io::Result<()> {
    let resource =
        rlimit_resource(name).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit struct from this stack frame.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Changes to `uid`/`gid` with exactly `groups` as supplementary groups. The caller keeps its
/// permitted capabilities across the change (`PR_SET_KEEPCAPS`) so it can then set the ones
/// the spec asks for; the effective set is emptied by the kernel and set again by the caller.
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    // SAFETY: setgroups reads `groups.len()` gids from the slice.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresuid(uid, uid, uid) })?;
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })
}

/// The `PATH` value of a `KEY=VALUE` environment, or the default.
pub fn path_of(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|v| v.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// Finds `program` as `execvp` would: a name with a `/` is taken as it is (and must exist),
/// otherwise the first executable regular file of that name in `path` wins. Paths are seen
/// from the caller's root (the container's, in the helper).
pub fn find_program(program: &str, path: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        let p = Path::new(program);
        return match p.metadata() {
            Ok(m) if m.is_file() => Ok(p.to_path_buf()),
            Ok(_) => Err(format!("{program} is not a regular file")),
            Err(e) => Err(format!("{program}: {e}")),
        };
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| Path::new(dir).join(program))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("executable file {program:?} not found in $PATH ({path})"))
}

/// A path as a C string (paths from the OS hold no NUL).
pub fn path_cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{} holds a NUL", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::testutil::TempDir;
    use std::fs;

    #[test]
    fn test_rlimit_names() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_STACK"), Some(libc::RLIMIT_STACK));
        assert_eq!(rlimit_resource("NOFILE"), None);
    }

    #[test]
    fn test_path_of_env() {
        assert_eq!(path_of(&[]), DEFAULT_PATH);
        assert_eq!(path_of(&["A=1".into(), "PATH=/x:/y".into()]), "/x:/y");
    }

    #[test]
    fn test_find_program_in_path() {
        let dir = TempDir::new("findprog");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("tool"), "").unwrap(); // not executable
        fs::write(b.join("tool"), "").unwrap();
        fs::set_permissions(b.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(find_program("tool", &path).unwrap(), b.join("tool"));
        let err = find_program("nope", &path).unwrap_err();
        assert!(err.contains("not found in $PATH"), "{err}");
        let abs = b.join("tool");
        assert_eq!(find_program(abs.to_str().unwrap(), "").unwrap(), abs);
        assert!(find_program("/nonexistent/x", "").is_err());
    }
}
