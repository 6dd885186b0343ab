//! Test driver for memory hot-plug until the control API is wired into
//! `host-vmm`: boots like `host-vmm boot`, waits for the agent's ready
//! line on the console, then hot-adds each `--add SIZE` in turn through
//! [`host_vmm::memory::hotplug::MemoryHotplug::hotplug_memory`], waiting
//! after each for the agent's `memory: onlined N blocks, MemTotal now M kB`
//! line to show the new memory, and finally stops the VM.
//!
//! ```text
//! hotplug-boot --config FILE --console FILE [--memory MIB] --add 512M [--add 512M ...]
//!              [--wait-secs 120] [--vsock SOCKET]
//! ```
//!
//! stdout gets one line per step (`added ...`, `online ... mem_total_kib=N`);
//! exit status 0 when every add was seen online by the guest, 1 otherwise.
//! Not part of the product: `tests/scenarios/35-memory-hotplug.sh` runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_vmm::builder::{build_vm, BootOptions};
use host_vmm::config::{self, Overrides};
use host_vmm::memory::hotplug::MemoryHotplug;
use host_vmm::units::parse_size;
use host_vmm::vmm::{stop_signals, ExitSignal, GuestExit};

struct Args {
    config: Option<PathBuf>,
    console: PathBuf,
    memory: Option<u64>,
    adds: Vec<u64>,
    wait: Duration,
    vsock: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut config, mut console, mut memory, mut adds) = (None, None, None, Vec::new());
    let mut vsock = None;
    let mut wait = Duration::from_secs(120);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value()?)),
            "--console" => console = Some(PathBuf::from(value()?)),
            "--vsock" => vsock = Some(PathBuf::from(value()?)),
            "--memory" => memory = Some(value()?.parse().map_err(|e| format!("--memory: {e}"))?),
            "--add" => adds.push(parse_size(&value()?).map_err(|e| e.to_string())?),
            "--wait-secs" => {
                wait =
                    Duration::from_secs(value()?.parse().map_err(|e| format!("--wait-secs: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        config,
        console: console.ok_or("--console is required")?,
        memory,
        adds,
        wait,
        vsock,
    })
}

/// The console so far (carriage returns dropped).
fn console_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
        .unwrap_or_default()
}

fn ready_mem_kib(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with("AGENT_READY "))
        .filter_map(|l| l.split(" mem_total_kib=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
}

fn last_onlined_mem_kib(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.contains("memory: onlined "))
        .filter_map(|l| l.split("MemTotal now ").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// Poll the console until `f` finds something or `wait` passes.
fn wait_for<T>(console: &Path, wait: Duration, f: impl Fn(&str) -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f(&console_text(console)) {
            return Some(v);
        }
        if start.elapsed() > wait {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn drive(hp: &MemoryHotplug, args: &Args) -> Result<(), String> {
    let mut kib = wait_for(&args.console, args.wait, ready_mem_kib)
        .ok_or("no AGENT_READY line on the console")?;
    println!("ready mem_total_kib={kib}");
    for &size in &args.adds {
        let t = Instant::now();
        let r = hp
            .hotplug_memory(size)
            .map_err(|e| format!("hot-add of {size} bytes: {e}"))?;
        println!(
            "added slot={} base={:#x} size={} total_bytes={}",
            r.slot, r.base, r.size, r.total_bytes
        );
        // 98% of the added size must show up (the kernel keeps the memmap).
        let want = kib + size / 1024 * 98 / 100;
        let now = wait_for(&args.console, args.wait, |text| {
            last_onlined_mem_kib(text).filter(|&k| k >= want)
        })
        .ok_or(format!(
            "the guest did not report MemTotal >= {want} kB within {:?}",
            args.wait
        ))?;
        println!(
            "online mem_total_kib={now} grew_kib={} after_ms={}",
            now - kib,
            t.elapsed().as_millis()
        );
        kib = now;
    }
    Ok(())
}

fn run(args: Args) -> Result<bool, String> {
    let cfg = config::load_with(
        args.config.as_deref(),
        &Overrides {
            memory: args.memory,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let opts = BootOptions {
        console: Some(args.console.clone()),
        vsock_socket: args.vsock.clone(),
    };
    let vmm = build_vm(&cfg, &opts).map_err(|e| format!("build: {e}"))?;
    let hp = vmm
        .memory_hotplug()
        .ok_or("memory_slots = 0: memory hotplug is disabled")?;
    let exit: Arc<ExitSignal> = vmm.exit_signal().clone();
    stop_signals::spawn_stop_waiter(exit.clone()).map_err(|e| e.to_string())?;
    let driver = std::thread::spawn(move || {
        let result = drive(&hp, &args);
        if let Err(e) = &result {
            println!("error: {e}");
        }
        exit.request(GuestExit::Stopped {
            signal: libc::SIGTERM,
        });
        result.is_ok()
    });
    let outcome = vmm.run().map_err(|e| e.to_string())?;
    println!("vm: {outcome}");
    let ok = driver.join().unwrap_or(false);
    Ok(ok && matches!(outcome, GuestExit::Stopped { .. }))
}

fn main() -> ExitCode {
    if let Err(e) = stop_signals::block_stop_signals() {
        eprintln!("hotplug-boot: {e}");
        return ExitCode::FAILURE;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match parse_args().and_then(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hotplug-boot: error: {e}");
            ExitCode::FAILURE
        }
    }
}
