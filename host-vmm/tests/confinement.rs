//! host-vmm runs confined: every thread of a real VM process under a seccomp filter,
//! `no_new_privs` set, every file descriptor close-on-exec; a forbidden call on a vCPU
//! thread kills the process with SIGSYS.
//!
//! The VM tests boot `host-vmm boot` natively with a stub bzImage (a few instructions;
//! KVM-PVM runs those) and need /dev/kvm: they fail, not skip, without it. The SIGSYS
//! tests run the filter in a child process (this test binary again, see [`child`]).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use host_vmm::seccomp::{self, ThreadKind};

/// Set in a child this binary starts: which forbidden thing to do.
const CHILD_ENV: &str = "HOST_VMM_CONFINEMENT_CHILD";

/// Native VMs of a stub guest (x86_64: the stub is a bzImage).
#[cfg(target_arch = "x86_64")]
mod vm {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir()
                .join(format!("host-vmm-confine-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A minimal bzImage (boot protocol 2.15, 64-bit entry at 0x200) running `code`, then
    /// `hlt` forever.
    fn stub_bzimage(code: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 2 * 512];
        img[0x1f1] = 1; // setup_sects
        img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        img[0x211] = 0x1; // LOADED_HIGH
        img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        img[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
        img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        img[0x258..0x260].copy_from_slice(&0x10_0000u64.to_le_bytes());
        img[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
        img.extend_from_slice(&[0u8; 0x200]);
        img.extend_from_slice(code);
        img.extend_from_slice(&[0xf4, 0xeb, 0xfd]); // hlt; jmp .-1
        img
    }

    /// `out 0x3f8` of each byte of `text`, then ACPI S5 (power off).
    fn print_and_power_off(text: &[u8]) -> Vec<u8> {
        let mut code: Vec<u8> = text
            .iter()
            .flat_map(|b| [0x66, 0xba, 0xf8, 0x03, 0xb0, *b, 0xee])
            .collect();
        code.extend_from_slice(&[0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee]);
        code
    }

    /// A configuration for the stub in `dir` (64 MiB, memory hotplug on, so the control
    /// socket's hot-add path exists).
    fn stub_config(dir: &Path, code: &[u8]) -> PathBuf {
        let kernel = dir.join("bzImage");
        std::fs::write(&kernel, stub_bzimage(code)).unwrap();
        let initrd = dir.join("initrd");
        std::fs::write(&initrd, b"").unwrap();
        let cfg = dir.join("configuration.toml");
        std::fs::write(
            &cfg,
            format!(
                "[hypervisor.host-vmm]\nkernel = \"{}\"\ninitrd = \"{}\"\ndefault_memory = 64\n\
                 memory_slots = 2\n",
                kernel.display(),
                initrd.display()
            ),
        )
        .unwrap();
        cfg
    }

    fn need_kvm() {
        assert!(
            Path::new("/dev/kvm").exists(),
            "this test needs /dev/kvm, which this host does not have"
        );
    }

    /// `host-vmm GLOBAL... boot --config CFG --console DIR/console BOOT...`, with only
    /// stdin, stdout and stderr open (whatever this test process inherited is closed), so
    /// every other fd it has, it opened itself.
    fn host_vmm(dir: &Path, cfg: &Path, global: &[&str], boot: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-vmm"));
        cmd.args(global)
            .arg("boot")
            .arg("--config")
            .arg(cfg)
            .arg("--console")
            .arg(dir.join("console"))
            .args(boot)
            .env("HOST_VMM_RUNTIME_DIR", dir.join("run"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: close_range is a plain system call, async-signal-safe, touching no
        // memory; it runs in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::close_range(3, libc::c_uint::MAX, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// What /proc says about one process.
    struct Inspected {
        /// (fd, flags from fdinfo, what it points to)
        fds: Vec<(u32, u32, String)>,
        /// (thread name, Seccomp mode, number of filters)
        threads: Vec<(String, u32, u32)>,
        no_new_privs: bool,
    }

    fn status_field(status: &str, key: &str) -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    }

    fn inspect(pid: u32) -> Inspected {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let mut fds = Vec::new();
        for entry in std::fs::read_dir(proc_dir.join("fd")).unwrap() {
            let entry = entry.unwrap();
            let fd: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
            let info = std::fs::read_to_string(proc_dir.join("fdinfo").join(fd.to_string()))
                .unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
                .unwrap_or(u32::MAX);
            let target = std::fs::read_link(entry.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            fds.push((fd, flags, target));
        }
        fds.sort();
        let mut threads = Vec::new();
        for task in std::fs::read_dir(proc_dir.join("task")).unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
            threads.push((
                name.trim().to_string(),
                status_field(&status, "Seccomp:").unwrap_or(u32::MAX),
                status_field(&status, "Seccomp_filters:").unwrap_or(0),
            ));
        }
        threads.sort();
        let status = std::fs::read_to_string(proc_dir.join("status")).unwrap();
        Inspected {
            fds,
            threads,
            no_new_privs: status_field(&status, "NoNewPrivs:") == Some(1),
        }
    }

    /// Runs `cmd` (the first-entry hook on) until it stops itself at its first vCPU entry,
    /// inspects it there, kills it; returns what was seen and its stderr.
    fn inspect_at_first_entry(mut cmd: Command) -> (Inspected, String) {
        cmd.env("HOST_VMM_STOP_AFTER_FIRST_ENTRY", "1");
        let mut child = cmd.spawn().expect("cannot start host-vmm");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child with a valid out pointer; WNOHANG never blocks.
            let r = unsafe {
                libc::waitpid(
                    pid as libc::pid_t,
                    &mut status,
                    libc::WUNTRACED | libc::WNOHANG,
                )
            };
            if r == pid as libc::pid_t {
                break;
            }
            assert!(Instant::now() < deadline, "host-vmm did not stop in 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stopped = libc::WIFSTOPPED(status);
        let seen = stopped.then(|| inspect(pid));
        let _ = child.kill();
        let _ = child.wait();
        let mut stderr = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        match seen {
            Some(seen) => (seen, stderr),
            None => {
                panic!("host-vmm did not stop at its first entry (status {status:#x}):\n{stderr}")
            }
        }
    }

    const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

    /// The threads a `boot` has by its first vCPU entry.
    const BOOT_THREADS: [&str; 7] = [
        "host-vmm",
        "vcpu0",
        "api",
        "agent-log",
        "stop-signals",
        "guest-setup",
        "thread-factory",
    ];

    #[test]
    fn test_real_vm_process_every_fd_cloexec_every_thread_filtered() {
        need_kvm();
        let dir = TempDir::new("fds");
        let cfg = stub_config(&dir.0, &[]);
        let (seen, stderr) = inspect_at_first_entry(host_vmm(&dir.0, &cfg, &[], &[]));
        // 0, 1, 2 are what we gave it; Command gives a child nothing else.
        let opened: Vec<_> = seen.fds.iter().filter(|(fd, ..)| *fd > 2).collect();
        for want in [
            "/dev/kvm",
            "anon_inode:kvm-vm",
            "anon_inode:kvm-vcpu:0",
            "anon_inode:[eventfd]",
            "socket:[",
        ] {
            assert!(
                opened.iter().any(|(_, _, t)| t.starts_with(want)),
                "no {want} among the fds: {opened:?}\n{stderr}"
            );
        }
        let leaking: Vec<_> = opened
            .iter()
            .filter(|(_, flags, _)| flags & O_CLOEXEC == 0)
            .collect();
        assert!(leaking.is_empty(), "fds without O_CLOEXEC: {leaking:?}");
        assert!(seen.no_new_privs, "no_new_privs is not set");
        for name in BOOT_THREADS {
            assert!(
                seen.threads.iter().any(|(n, ..)| n == name),
                "no thread {name}: {:?}",
                seen.threads
            );
        }
        // Every thread is in seccomp filter mode (2), with its kind's filter(s).
        for (name, mode, filters) in &seen.threads {
            assert_eq!(
                *mode, 2,
                "thread {name} is not filtered: {:?}",
                seen.threads
            );
            assert!(*filters >= 1, "thread {name}: {:?}", seen.threads);
        }
        let _ = std::fs::remove_dir_all(dir.0.join("run"));
    }

    #[test]
    fn test_no_seccomp_runs_unfiltered_and_says_so() {
        need_kvm();
        let dir = TempDir::new("noseccomp");
        let cfg = stub_config(&dir.0, &[]);
        let (seen, stderr) = inspect_at_first_entry(host_vmm(&dir.0, &cfg, &["--no-seccomp"], &[]));
        assert!(
            stderr.contains("WARNING: --no-seccomp"),
            "no warning on stderr:\n{stderr}"
        );
        for (name, mode, _) in &seen.threads {
            assert_eq!(*mode, 0, "thread {name} filtered under --no-seccomp");
        }
        // no_new_privs is not part of the escape hatch.
        assert!(seen.no_new_privs);
    }

    /// The control socket's thread under its filter: a memory hot-add (a new KVM slot)
    /// and a disk hot-add (file, irqfd, ioeventfds), asked for by confined client
    /// commands; then SIGTERM stops the VM (the signal thread, the VMM's teardown).
    #[test]
    fn test_confined_hotplug_through_the_control_socket_then_sigterm() {
        need_kvm();
        let dir = TempDir::new("hotplug");
        let cfg = stub_config(&dir.0, &[]);
        let disk = dir.0.join("disk.img");
        std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
        let mut vm = host_vmm(&dir.0, &cfg, &[], &["--id", "hp"])
            .spawn()
            .unwrap();
        let api = dir.0.join("run/hp/api.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !api.exists() {
            assert!(Instant::now() < deadline, "no {} after 30 s", api.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let client = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_host-vmm"))
                .args(args)
                .env("HOST_VMM_RUNTIME_DIR", dir.0.join("run"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {:?}\n{err}",
                out.status
            );
            text
        };
        let mem = client(&["memory", "hp", "--add", "128M", "--no-wait"]);
        assert!(mem.contains("hotplugged_mib=128"), "{mem}");
        let spec = format!("{},serial=d1", disk.display());
        let added = client(&["disk", "hp", "--add", &spec]);
        assert!(
            added.contains("serial=d1") && added.contains("sectors=2048"),
            "{added}"
        );
        // SAFETY: kill on our own child, not yet reaped.
        unsafe { libc::kill(vm.id() as libc::pid_t, libc::SIGTERM) };
        let status = vm.wait().unwrap();
        let mut stderr = String::new();
        let _ = vm.stderr.take().unwrap().read_to_string(&mut stderr);
        assert_eq!(status.code(), Some(143), "{status:?}\n{stderr}");
        assert!(!dir.0.join("run/hp").exists(), "runtime directory left");
    }

    /// The whole path under the filters: vCPU I/O exits and console writes, the guest's
    /// power-off, the teardown (vCPUs kicked and joined, sockets and the runtime directory
    /// removed) on the VMM thread.
    #[test]
    fn test_confined_boot_runs_guest_to_power_off_and_cleans_up() {
        need_kvm();
        let dir = TempDir::new("poweroff");
        let cfg = stub_config(&dir.0, &print_and_power_off(b"confined\n"));
        let out = host_vmm(&dir.0, &cfg, &[], &["--id", "confined"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{:?}\n{stderr}", out.status);
        let console = std::fs::read_to_string(dir.0.join("console")).unwrap();
        assert_eq!(console, "confined\n");
        assert!(
            !dir.0.join("run/confined").exists(),
            "runtime directory left"
        );
    }
}

/// Forbidden things a child does on a confined thread (see [`child`]).
fn run_child(test: &str, what: &str) -> (std::process::ExitStatus, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, what)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// In a child: confine a new thread as `kind`, do `what` on it. Never returns: exits 0
/// if the thread came back (the call was allowed), or dies of the filter.
fn child(kind: ThreadKind, what: &str) -> ! {
    seccomp::enable(seccomp::Options::default()).unwrap();
    let what = what.to_string();
    let t = std::thread::spawn(move || {
        seccomp::confine(kind);
        // SAFETY: each call passes plain integers or a static C string; the results
        // are only compared.
        unsafe {
            match what.as_str() {
                "open" => {
                    libc::openat(libc::AT_FDCWD, c"/etc/hostname".as_ptr(), libc::O_RDONLY);
                }
                "create-vm-ioctl" => {
                    // KVM_CREATE_VM: the filter decides on the request number alone.
                    libc::ioctl(-1, 0xae01 as libc::c_ulong, 0);
                }
                "allowed" => {
                    // KVM_RUN on no fd: allowed by the filter, refused by the kernel.
                    let r = libc::ioctl(-1, 0xae80 as libc::c_ulong, 0);
                    assert_eq!(r, -1);
                    let msg = b"allowed calls pass\n";
                    libc::write(2, msg.as_ptr().cast(), msg.len());
                }
                other => panic!("unknown child action {other}"),
            }
        }
    });
    let ok = t.join().is_ok();
    std::process::exit(if ok { 0 } else { 1 });
}

#[test]
fn test_forbidden_open_on_vcpu_thread_kills_with_sigsys() {
    if let Ok(what) = std::env::var(CHILD_ENV) {
        child(ThreadKind::Vcpu, &what);
    }
    let (status, stderr) = run_child(
        "test_forbidden_open_on_vcpu_thread_kills_with_sigsys",
        "open",
    );
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}\n{stderr}");
    let line = format!("a vcpu thread made system call {}", libc::SYS_openat);
    assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
}

#[test]
fn test_forbidden_ioctl_on_vcpu_thread_kills_with_sigsys() {
    if let Ok(what) = std::env::var(CHILD_ENV) {
        child(ThreadKind::Vcpu, &what);
    }
    let (status, stderr) = run_child(
        "test_forbidden_ioctl_on_vcpu_thread_kills_with_sigsys",
        "create-vm-ioctl",
    );
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}\n{stderr}");
    assert!(
        stderr.contains(&format!("system call {}", libc::SYS_ioctl)),
        "{stderr}"
    );
}

#[test]
fn test_allowed_calls_on_vcpu_thread_pass() {
    if let Ok(what) = std::env::var(CHILD_ENV) {
        child(ThreadKind::Vcpu, &what);
    }
    let (status, stderr) = run_child("test_allowed_calls_on_vcpu_thread_pass", "allowed");
    assert_eq!(status.code(), Some(0), "{status:?}\n{stderr}");
    assert!(stderr.contains("allowed calls pass"), "{stderr}");
}
