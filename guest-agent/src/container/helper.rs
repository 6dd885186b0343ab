//! The helper: the agent binary re-executed as `ga-container-helper` (see `spawn`). It is a
//! fresh, single-threaded process already in the container's namespaces and cgroup. It reads
//! its [`Plan`] from the channel (fd 3), sets up, reports, and execs the container process.
//!
//! For a container's init ([`Role::Init`]), in order: a cgroup namespace if asked; every mount
//! private; the spec's mounts under the prepared root; the standard `/dev` nodes and
//! `linux.devices`; masked and read-only paths; switch into the root (`rootfs::enter`); the
//! hostname and domain name; a read-only root if asked. Then, for every role that runs a
//! process: umask, rlimits, the bounding set, the program looked up in the container's `PATH`,
//! user and groups, capabilities, the working directory, `no_new_privs`, a new session (with
//! the terminal as controlling tty). It reports `Ready`, an init waits for `Start`, then
//! signals are reset, the seccomp filters installed, and the process is exec'd.
//!
//! Seccomp comes last, as runc orders it, so the helper's own calls are not filtered: right
//! before `execve` when `no_new_privs` is set. Without `no_new_privs` the kernel wants
//! `CAP_SYS_ADMIN` to install a filter, so then it goes in before the user and capabilities
//! change (and what the helper does after it must be allowed by the profile).
//!
//! Errors go back on the channel as `Failed("<step>: <error>")`; the helper then exits 1.
//! It never logs to the console and never touches the agent's state.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sched::{unshare, CloneFlags};

use super::caps;
use super::channel::{recv, send, FromHelper, InitPlan, Plan, ProcessPlan, Role, ToHelper};
use super::dev_nodes;
use super::mounts;
use super::rootfs;
use super::seccomp;
use super::spawn::CHANNEL_FD;
use super::user;

/// Runs the helper. Never returns.
pub fn main() -> ! {
    // SAFETY: the agent placed the helper's end of the channel at fd 3 (spawn::clone_exec);
    // nothing else in this fresh process owns it.
    let channel = unsafe { UnixStream::from_raw_fd(CHANNEL_FD) };
    // dup2 cleared close-on-exec: set it again so the exec'd process does not inherit the
    // channel (its closing is how the agent learns the exec succeeded).
    // SAFETY: fcntl on an fd we own, integer arguments.
    unsafe { libc::fcntl(CHANNEL_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Keep the container's processes from ptrace-attaching to, or opening /proc/<pid>/exe of,
    // the helper while it still has the agent's privileges. exec resets it.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let plan = match recv::<ToHelper>(&channel) {
        Ok(Some(ToHelper::Plan(plan))) => *plan,
        // No plan (the agent gave up) or garbage: nothing to report to.
        _ => exit(1),
    };
    let Err(error) = run(&channel, plan);
    let _ = send(&channel, &FromHelper::Failed(error));
    exit(1)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running anything of the agent's.
    unsafe { libc::_exit(code) }
}

fn run(channel: &UnixStream, plan: Plan) -> Result<Infallible, String> {
    let is_init = matches!(plan.role, Role::Init(_));
    match &plan.role {
        Role::Pause => {
            send(channel, &FromHelper::Ready).map_err(|e| format!("report ready: {e}"))?;
            pause()
        }
        Role::Init(init) => set_up_container(init)?,
        Role::Exec => {}
    }
    let process = plan.process.ok_or("the plan has no process")?;
    let exec = prepare_process(&process)?;
    send(channel, &FromHelper::Ready).map_err(|e| format!("report ready: {e}"))?;
    if is_init {
        match recv::<ToHelper>(channel) {
            Ok(Some(ToHelper::Start)) => {}
            // The container was removed before it started.
            Ok(None) => exit(0),
            Ok(Some(other)) => return Err(format!("expected Start, got {other:?}")),
            Err(e) => return Err(format!("wait for Start: {e}")),
        }
    }
    reset_signals();
    let argv: Vec<&CString> = exec.argv.iter().collect();
    let envp: Vec<&CString> = exec.envp.iter().collect();
    if process.no_new_privileges {
        seccomp::install(&process.seccomp).map_err(|e| format!("install seccomp: {e}"))?;
    }
    let Err(e) = nix::unistd::execve(&exec.path, &argv, &envp);
    Err(format!("exec {}: {e}", process.args[0]))
}

fn set_up_container(init: &InitPlan) -> Result<(), String> {
    if init.new_cgroup_namespace {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| format!("new cgroup namespace: {e}"))?;
    }
    // Before the first mount: nothing done here may propagate to the agent.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("make mounts private: {e}"))?;
    let root = init.rootfs.as_path();
    for (i, m) in init.mounts.iter().enumerate() {
        mounts::mount_one(root, m).map_err(|e| format!("mounts[{i}] {}: {e}", m.destination))?;
    }
    dev_nodes::populate_dev(root, &dev_nodes::nodes(&init.devices))?;
    if init.console {
        mounts::bind_console(root)?;
    }
    mounts::mask_paths(root, &init.masked_paths)?;
    mounts::readonly_paths(root, &init.readonly_paths)?;
    rootfs::enter(root)?;
    nix::unistd::sethostname(&init.hostname).map_err(|e| format!("sethostname: {e}"))?;
    if let Some(domainname) = init.domainname.as_deref().filter(|d| !d.is_empty()) {
        set_domainname(domainname)?;
    }
    if init.readonly {
        rootfs::make_root_readonly()?;
    }
    Ok(())
}

fn set_domainname(name: &str) -> Result<(), String> {
    // SAFETY: the pointer and length describe `name`'s bytes, alive for the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(format!(
            "setdomainname: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The exec arguments, ready.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstrings(list: &[String], what: &str) -> Result<Vec<CString>, String> {
    list.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| format!("{what} holds a NUL")))
        .collect()
}

fn prepare_process(p: &ProcessPlan) -> Result<Exec, String> {
    // SAFETY: umask takes and returns a mode.
    unsafe { libc::umask(p.umask.unwrap_or(0o022) as libc::mode_t) };
    for (name, soft, hard) in &p.rlimits {
        user::set_rlimit(name, *soft, *hard).map_err(|e| format!("setrlimit {name}: {e}"))?;
    }
    caps::drop_bounding(p.caps.bounding).map_err(|e| format!("drop bounding caps: {e}"))?;
    let program = p.args.first().ok_or("process.args is empty")?;
    let path = user::find_program(program, user::path_of(&p.env))?;
    let exec = Exec {
        path: user::path_cstring(&path)?,
        argv: cstrings(&p.args, "process.args")?,
        envp: cstrings(&p.env, "process.env")?,
    };
    if !p.no_new_privileges {
        seccomp::install(&p.seccomp).map_err(|e| format!("install seccomp: {e}"))?;
    }
    user::switch_user(p.uid, p.gid, &p.additional_gids)
        .map_err(|e| format!("switch to uid {} gid {}: {e}", p.uid, p.gid))?;
    caps::set_process_caps(&p.caps).map_err(|e| format!("set capabilities: {e}"))?;
    let cwd = if p.cwd.is_empty() {
        "/"
    } else {
        p.cwd.as_str()
    };
    nix::unistd::chdir(Path::new(cwd)).map_err(|e| format!("chdir {cwd}: {e}"))?;
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
    }
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if p.terminal {
        // SAFETY: TIOCSCTTY on fd 0 (the pty slave) with an integer argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(format!(
                "make the terminal the controlling tty: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(exec)
}

/// Default dispositions and an empty signal mask, as a freshly started process expects (the
/// agent blocks every signal, and Rust's runtime ignores SIGPIPE; both survive exec).
fn reset_signals() {
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL for a signal number; invalid numbers just fail.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// The pid 1 of a shared pid namespace: reaps whatever is re-parented to it, forever. Every
/// signal stays blocked and is only waited for (SIGCHLD wakes it); SIGKILL from the agent ends
/// it.
fn pause() -> ! {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let _ = SigSet::all().thread_block();
    let mut wake = SigSet::empty();
    wake.add(Signal::SIGCHLD);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => {
                let _ = wake.wait();
            }
            Ok(_) => {}
        }
    }
}
