//! The control socket in front of a real VM's hot-plug (no guest runs:
//! the requests are answered by the host side alone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use vmm_sys_util::tempdir::TempDir;

use super::{request, ApiServer, Request, Response, VmmApi};
use crate::arch::x86_64::test_utils::stub_bzimage;
use crate::builder::{build_vm, BootOptions};
use crate::config::HypervisorConfig;

fn hypervisor(dir: &TempDir) -> HypervisorConfig {
    let kernel = dir.as_path().join("bzImage");
    // hlt
    std::fs::write(&kernel, stub_bzimage(&[0xf4])).unwrap();
    HypervisorConfig {
        kernel,
        initrd: None,
        image: None,
        firmware: None,
        kernel_params: String::new(),
        default_vcpus: 1,
        default_maxvcpus: 1,
        default_root_ports: 0,
        default_bridges: 0,
        default_memory: 64,
        memory_slots: 1,
        default_maxmemory: 1024,
    }
}

/// Issue 10, finding 7: `disk-add` of a FIFO used to block the API thread
/// in `open()` forever, and dropping the server joined it forever. Now
/// the request is refused at once, naming the path and what it is, and
/// the server stops promptly.
#[test]
fn test_api_disk_add_of_a_fifo_is_refused_promptly() {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm, which this host does not have"
    );
    let dir = TempDir::new().unwrap();
    let cfg = hypervisor(&dir);
    let vmm = build_vm(&cfg, &BootOptions::default()).unwrap();
    let api = VmmApi::new(vmm.memory_hotplug(), 64 << 20).with_disk_hotplug(vmm.disk_hotplug());
    let sock = dir.as_path().join("api.sock");
    let server = ApiServer::start(&sock, Arc::new(api)).unwrap();
    let fifo = dir.as_path().join("disk.fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for read_only in [false, true] {
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, f) = (sock.clone(), fifo.clone());
        std::thread::spawn(move || {
            let _ = tx.send(request(
                &s,
                &Request::DiskAdd {
                    path: f,
                    read_only,
                    serial: "fifo".into(),
                    owner: None,
                },
            ));
        });
        let answer = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("an answer within 10 s")
            .unwrap();
        match answer {
            Response::Error { message } => {
                assert!(message.contains("disk.fifo: is a FIFO"), "{message}");
                assert!(
                    message.contains("regular file or a block device"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    drop(vmm);
}
