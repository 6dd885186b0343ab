//! Loading a device program and attaching it to a cgroup: `bpf(BPF_PROG_LOAD)` and
//! `bpf(BPF_PROG_ATTACH)` through libc (no crate: two system calls).
//!
//! The program is attached with no flags (`BPF_F_ALLOW_OVERRIDE` and `BPF_F_ALLOW_MULTI`
//! unset), so no cgroup below the container's can attach a program of its own: a container
//! cannot loosen its rules even with the capabilities to try. The attachment holds the
//! program; its fd is closed afterwards, and removing the cgroup frees both.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::program::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Room for the verifier's log when a load fails.
const LOG_SIZE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("load the device cgroup program ({insns} instructions): {source}{log}")]
    Load {
        insns: usize,
        source: io::Error,
        /// The verifier's log, with a leading separator, or empty.
        log: String,
    },
    #[error("open cgroup {path}")]
    OpenCgroup {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("attach the device cgroup program to {path}")]
    Attach {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// `union bpf_attr` as BPF_PROG_LOAD reads it (the fields up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `bpf(cmd, attr, sizeof attr)`.
///
/// # Safety
/// `attr` must be the attribute struct `cmd` reads, with every pointer in it valid for the
/// call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller vouches for `attr`; the kernel copies `size_of::<T>()` bytes of it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Loads `prog` as a cgroup device program. On failure the error carries the verifier's log.
pub fn load(prog: &[Insn]) -> Result<OwnedFd, BpfError> {
    match load_with_log(prog, None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; LOG_SIZE];
            let detail = match load_with_log(prog, Some(&mut log)) {
                // Loads on the second try: report the first error alone.
                Ok(_) => String::new(),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!("; verifier: {}", text.replace('\n', " | "))
                    }
                }
            };
            Err(BpfError::Load {
                insns: prog.len(),
                source: first,
                log: detail,
            })
        }
    }
}

fn load_with_log(prog: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let license = CString::from(c"Apache-2.0");
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"container");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is BPF_PROG_LOAD's struct; `insns`, `license` and `log_buf` point into
    // `prog`, `license` and `log`, which outlive the call, with the lengths given.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
    // SAFETY: a new fd (close-on-exec, as bpf fds are) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the loaded program `prog` to the cgroup directory `cgroup` as its device
/// program (no flags: nothing below it can attach another).
pub fn attach(prog: &OwnedFd, cgroup: &Path) -> Result<(), BpfError> {
    let path = cgroup.display().to_string();
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(cgroup)
        .map_err(|source| BpfError::OpenCgroup {
            path: path.clone(),
            source,
        })?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is BPF_PROG_ATTACH's struct of plain integers; both fds are open.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }
        .map(|_| ())
        .map_err(|source| BpfError::Attach { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_attr_layouts_match_the_kernel() {
        // Offsets from linux/bpf.h: expected_attach_type at 68, replace_bpf_fd at 16.
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<ProgAttachAttr>(), 20);
    }

    #[test]
    fn test_attach_to_a_missing_cgroup_names_it() {
        let Err(err) = attach(
            &File::open("/dev/null").unwrap().into(),
            Path::new("/nonexistent/cg"),
        ) else {
            panic!("attached to nothing")
        };
        assert!(err.to_string().contains("/nonexistent/cg"), "{err}");
    }
}
