//! The benchmark driver: options, the interleaved rounds, the raw-sample
//! TSV and the summary printed by `cargo bench`.

use std::path::{Path, PathBuf};

struct Options {
    runs: usize,
    out: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    config: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let repo = repo();
    let mut o = Options {
        runs: 11,
        out: repo.join("target/bench/native"),
        kernel: repo.join("target/kernel/guest/bzImage"),
        initrd: repo.join("target/rootfs/initramfs.cpio"),
        config: repo.join("configuration.toml"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => {
                o.runs = value()?
                    .parse()
                    .map_err(|_| "--runs: not a number".to_string())?
            }
            "--out" => o.out = PathBuf::from(value()?),
            "--kernel" => o.kernel = PathBuf::from(value()?),
            "--initrd" => o.initrd = PathBuf::from(value()?),
            "--config" => o.config = PathBuf::from(value()?),
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(o)
}

/// What one run spawns.
#[derive(Clone, Copy)]
enum Subject {
    Floor,
    HostVmm,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Floor => "kvm-floor",
            Subject::HostVmm => "host-vmm",
        }
    }
}

/// Guest RAM sizes: the default configuration's 1024 MiB, and 128 MiB.
const MEMORY_MIB: [u64; 2] = [1024, 128];
const DEFAULT_MIB: u64 = 1024;

fn command(o: &Options, subject: Subject, mib: u64, scratch: &Path) -> std::process::Command {
    use std::process::Command;
    match subject {
        Subject::Floor => {
            let mut c =
                Command::new(std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()));
            c.arg("--floor").arg(mib.to_string());
            c
        }
        Subject::HostVmm => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_host-vmm"));
            c.arg("boot")
                .arg("--config")
                .arg(&o.config)
                .arg("--kernel")
                .arg(&o.kernel)
                .arg("--initrd")
                .arg(&o.initrd)
                .arg("--console")
                .arg(scratch.join("console"));
            if mib != DEFAULT_MIB {
                c.args(["--memory", &mib.to_string(), "--cpus", "1"]);
            }
            c.env("HOST_VMM_RUNTIME_DIR", scratch.join("run"));
            c
        }
    }
}

fn check_inputs(o: &Options) -> Result<(), String> {
    kvm_ioctls::Kvm::new().map_err(|e| {
        format!("cannot open /dev/kvm ({e}): this benchmark enters a vCPU and needs KVM")
    })?;
    for (what, path, make) in [
        ("guest kernel", &o.kernel, "make kernel"),
        ("guest initramfs", &o.initrd, "make rootfs"),
        (
            "configuration",
            &o.config,
            "the repository's configuration.toml",
        ),
    ] {
        if !path.is_file() {
            return Err(format!("{what} {} is missing ({make})", path.display()));
        }
    }
    Ok(())
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let o = parse_args(args)?;
    check_inputs(&o)?;
    let smaps_dir = o.out.join("smaps");
    std::fs::create_dir_all(&smaps_dir)
        .map_err(|e| format!("create {}: {e}", smaps_dir.display()))?;
    let scratch = std::env::temp_dir().join(format!("host-vmm-boot-bench-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("run"))
        .map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let result = rounds(&o, &scratch, &smaps_dir);
    let _ = std::fs::remove_dir_all(&scratch);
    let rows = result?;
    let tsv = o.out.join("native.tsv");
    let mut text = String::from(
        "subject\tmem_mib\tround\tentry_wall_us\tentry_cpu_us\tstop_wall_us\tstop_cpu_us\tsmaps\n",
    );
    for r in &rows {
        text.push_str(&r.tsv());
    }
    std::fs::write(&tsv, text).map_err(|e| format!("write {}: {e}", tsv.display()))?;
    print_summary(&rows, o.runs);
    println!("raw samples: {}", tsv.display());
    Ok(())
}

struct Row {
    subject: Subject,
    mib: u64,
    round: usize,
    sample: crate::child::Sample,
    smaps: String,
}

impl Row {
    fn tsv(&self) -> String {
        let s = &self.sample;
        format!(
            "{}\t{}\t{}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\t{}\n",
            self.subject.name(),
            self.mib,
            self.round,
            s.entry_wall_us,
            s.entry_cpu_us,
            s.stop_wall_us,
            s.stop_cpu_us,
            self.smaps
        )
    }
}

fn rounds(o: &Options, scratch: &Path, smaps_dir: &Path) -> Result<Vec<Row>, String> {
    let mut order = Vec::new();
    for mib in MEMORY_MIB {
        order.push((Subject::Floor, mib));
        order.push((Subject::HostVmm, mib));
    }
    let mut rows = Vec::new();
    // Round 0 warms the page cache and is not recorded.
    eprintln!("boot bench: host-vmm {}", env!("CARGO_BIN_EXE_host-vmm"));
    for round in 0..=o.runs {
        // Alternate which subject goes first.
        order.reverse();
        for &(subject, mib) in &order {
            let sample = crate::child::run_once(command(o, subject, mib, scratch))
                .map_err(|e| format!("{} {mib} MiB, round {round}: {e}", subject.name()))?;
            if round == 0 {
                continue;
            }
            let name = format!("{}-{mib}-{round}.smaps", subject.name());
            std::fs::write(smaps_dir.join(&name), &sample.smaps)
                .map_err(|e| format!("write {name}: {e}"))?;
            rows.push(Row {
                subject,
                mib,
                round,
                sample,
                smaps: format!("smaps/{name}"),
            });
        }
        eprintln!("boot bench: round {round}/{} done", o.runs);
    }
    Ok(rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn print_summary(rows: &[Row], runs: usize) {
    type Metric = fn(&crate::child::Sample) -> f64;
    let metrics: [(&str, Metric); 4] = [
        ("exec -> first KVM_RUN, wall (ms)", |s| {
            s.entry_wall_us / 1e3
        }),
        ("exec -> first KVM_RUN, CPU (ms)", |s| s.entry_cpu_us / 1e3),
        ("exec -> stopped after entry, wall (ms)", |s| {
            s.stop_wall_us / 1e3
        }),
        ("exec -> stopped after entry, CPU (ms)", |s| {
            s.stop_cpu_us / 1e3
        }),
    ];
    println!("\nnative, {runs} runs each, medians (ratio = host-vmm / kvm-floor)");
    for mib in MEMORY_MIB {
        for (label, f) in metrics {
            let med = |subject: &str| {
                median(
                    rows.iter()
                        .filter(|r| r.mib == mib && r.subject.name() == subject)
                        .map(|r| f(&r.sample))
                        .collect(),
                )
            };
            let (vmm, floor) = (med("host-vmm"), med("kvm-floor"));
            println!(
                "{mib:>5} MiB  {label:<40} host-vmm {vmm:>8.2}  kvm-floor {floor:>8.2}  ratio {:>6.2}",
                vmm / floor
            );
        }
    }
}
