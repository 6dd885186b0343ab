//! The host-vmm command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

mod cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cmd::container_args::{
    CreateArgs, ExecArgs, ResourceArgs, RunArgs, CONTAINER_HELP, RUN_EXIT_CODES,
};
use cmd::run::{NamespaceFlags, RunRequest};
use cmd::sandbox_vm::VmRequest;
use host_vmm::config::{self, Overrides};
use host_vmm::errors::error_chain;
use host_vmm::kvm::first_entry;
use host_vmm::seccomp::{self, ThreadKind};
use host_vmm::vmm::stop_signals;

const EXIT_CODES: &str = "\
Exit status of `boot`:
  0  the guest powered off
  1  the VMM failed (configuration, kernel, KVM setup); the error says why
  2  the guest reset (reboot, i8042 or ACPI reset, kernel panic with panic=-1)
  3  a vCPU triple-faulted or KVM could not run it (registers are logged)
  128+N  host-vmm was stopped by signal N (SIGINT, SIGTERM, SIGHUP); the VM was torn down";

#[derive(Parser)]
#[command(name = "host-vmm", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace incl. every
    /// KVM exit). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Run every thread without its seccomp filter. For debugging a refused system call
    /// only (the VMM is then far less contained): never in production.
    #[arg(long, global = true)]
    no_seccomp: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the guest kernel and run until the guest powers off.
    #[command(after_help = EXIT_CODES)]
    Boot(BootArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show a running sandbox's RAM, or hot-add to it (ACPI DIMM slots).
    Memory {
        /// The sandbox (`boot --id ID`).
        id: String,
        /// Hot-add SIZE (for example 512M, 2G): one slot; a multiple of the
        /// guest's memory block size (128M on x86_64).
        #[arg(long, value_name = "SIZE", conflicts_with = "set")]
        add: Option<String>,
        /// Hot-add until the sandbox has TOTAL RAM.
        #[arg(long, value_name = "TOTAL")]
        set: Option<String>,
        /// Return once the VMM has plugged the memory, without waiting for the
        /// guest to online it (by default the command returns when the memory is
        /// usable in the guest, and prints vmm_ms= and guest_ms=).
        #[arg(long)]
        no_wait: bool,
    },
    /// Show a running sandbox's vCPUs (boot, present, online in the guest, max), or
    /// change their number (ACPI vCPU hot-plug; needs default_maxvcpus above
    /// default_vcpus and memory_slots > 0). Returns once the guest has the CPUs online
    /// (or offline), printing vmm_ms= and guest_ms=.
    Cpus {
        /// The sandbox (`boot --id ID`, `run --id ID`).
        id: String,
        /// Bring the sandbox to N vCPUs: from default_vcpus to default_maxvcpus.
        #[arg(long, value_name = "N")]
        set: Option<u32>,
    },
    /// Hot-add, remove or list the virtio-blk disks of a running sandbox (needs
    /// memory_slots > 0: the notification shares memory hot-plug's GED).
    Disk {
        /// The sandbox (`boot --id ID`, `run --id ID`).
        id: String,
        /// Hot-add a disk: a file, read-only with `ro`, and the serial the guest
        /// finds it by (ASCII, at most 20 bytes, not used by another disk of the
        /// sandbox; without one the VMM gives it a fresh `disk-N`). Prints its slot,
        /// serial and size.
        #[arg(long, value_name = "PATH[,ro][,serial=S]", conflicts_with_all = ["remove", "list"])]
        add: Option<host_vmm::builder::DiskConfig>,
        /// Remove the hot-added disk with this serial, once the guest has let go of
        /// it (refused while a container uses it as its rootfs).
        #[arg(long, value_name = "SERIAL", conflicts_with = "list")]
        remove: Option<String>,
        /// List the hot-added disks (slot, serial, owning container).
        #[arg(long)]
        list: bool,
    },
    /// Talk to the agent of a running sandbox (started with `boot --id ID`).
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Run a command in a container in a new sandbox VM, attached, and exit with its code.
    /// Without a command (and with --id), start a sandbox for `create`/`exec` and keep it
    /// running until SIGTERM.
    #[command(after_help = RUN_EXIT_CODES)]
    Run(RunArgs),
    /// Create a container in a running sandbox (not started).
    #[command(after_help = CONTAINER_HELP)]
    Create(CreateArgs),
    /// Start a created container.
    #[command(after_help = CONTAINER_HELP)]
    Start {
        sandbox: String,
        container: String,
        /// Stream its stdio (like `run`) and exit with its code.
        #[arg(short, long)]
        attach: bool,
        /// With --attach: copy stdin to it.
        #[arg(short, long, requires = "attach")]
        interactive: bool,
    },
    /// Run a command in a running container, attached; exit with its code.
    #[command(after_help = RUN_EXIT_CODES)]
    Exec(ExecArgs),
    /// Send a signal (name or number; default TERM) to every process of a container.
    Kill {
        sandbox: String,
        container: String,
        #[arg(value_name = "SIGNAL")]
        signal: Option<String>,
    },
    /// Wait for a container's init process; print and exit with its code.
    Wait { sandbox: String, container: String },
    /// Remove a container (its processes are killed).
    Delete { sandbox: String, container: String },
    /// List a sandbox's containers.
    Ps { sandbox: String },
    /// A container's resource usage, one key=value per line.
    Stats { sandbox: String, container: String },
    /// Stop a running sandbox (as SIGTERM to its host-vmm: the VM and its containers stop,
    /// its runtime directory is removed) and wait until it is gone.
    Stop {
        id: String,
        /// Give up (exit 1) if it is not gone after SECS.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
    },
    /// The sandboxes in the runtime directory: id, state, pid, uptime, vCPUs, memory (MiB),
    /// containers. A directory whose host-vmm is gone shows as stale.
    List {
        /// A JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Change a running container's limits (cgroup v2 in the guest, live). A memory
    /// limit above what the sandbox has grows the sandbox first (memory hotplug).
    Update {
        sandbox: String,
        container: String,
        #[command(flatten)]
        resources: ResourceArgs,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Is the agent serving? Prints SERVING and its version.
    Check { id: String },
    /// The guest's details: memory block size, hotplug probe, kernel and agent versions.
    Details { id: String },
}

#[derive(clap::Args)]
struct BootArgs {
    /// Sandbox id: names the runtime directory ($HOST_VMM_RUNTIME_DIR, else
    /// /run/host-vmm for root and $XDG_RUNTIME_DIR/host-vmm for other users; then
    /// /<id>) that other commands reach the VM through.
    /// Default: hv-<pid>.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Configuration file (default: $HOST_VMM_CONFIG, then
    /// /etc/host-vmm/configuration.toml, then the build tree's
    /// configuration.toml; the current directory only when named).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the guest console to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    console: Option<PathBuf>,
    /// Guest kernel (bzImage or PVH vmlinux); overrides `kernel`.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Guest initramfs; overrides `initrd`.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Guest RAM in MiB; overrides `default_memory`.
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    /// vCPUs at boot; overrides `default_vcpus`.
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// Appended to the configured `kernel_params`.
    #[arg(long, value_name = "STR")]
    kernel_params: Option<String>,
    /// Attach a virtio-blk disk (repeatable; for tests): a file, read-only
    /// with `ro`, with the serial the guest sees (ASCII, at most 20 bytes).
    #[arg(long = "disk", value_name = "PATH[,ro][,serial=S]", hide = true)]
    disks: Vec<host_vmm::builder::DiskConfig>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every setting's effective value and where it came from.
    Show {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

impl Command {
    /// Every id the command names, with the field it was given as. Exhaustive on purpose: a
    /// new command must say which of its arguments are ids.
    fn ids(&self) -> Vec<(&'static str, &str)> {
        const SANDBOX: &str = "sandbox id";
        const CONTAINER: &str = "container id";
        match self {
            Command::Boot(BootArgs { id, .. }) | Command::Run(RunArgs { id, .. }) => {
                id.iter().map(|id| ("--id", id.as_str())).collect()
            }
            Command::Config { .. } | Command::List { .. } => Vec::new(),
            Command::Memory { id, .. }
            | Command::Cpus { id, .. }
            | Command::Stop { id, .. }
            | Command::Disk { id, .. }
            | Command::Agent {
                command: AgentCommand::Check { id } | AgentCommand::Details { id },
            } => vec![(SANDBOX, id)],
            Command::Ps { sandbox } => vec![(SANDBOX, sandbox)],
            Command::Create(CreateArgs {
                sandbox, container, ..
            })
            | Command::Exec(ExecArgs {
                sandbox, container, ..
            })
            | Command::Start {
                sandbox, container, ..
            }
            | Command::Kill {
                sandbox, container, ..
            }
            | Command::Wait { sandbox, container }
            | Command::Delete { sandbox, container }
            | Command::Stats { sandbox, container }
            | Command::Update {
                sandbox, container, ..
            } => vec![(SANDBOX, sandbox), (CONTAINER, container)],
        }
    }
}

/// Every id of `command` against the one rule ([`protocol::id`]), before anything else.
fn check_ids(command: &Command) -> anyhow::Result<()> {
    for (field, id) in command.ids() {
        protocol::id::validate_id(id, field)?;
    }
    Ok(())
}

/// Turns the seccomp filters on (unless `--no-seccomp`, said loudly), and confines the
/// main thread of the commands that are only clients of a running sandbox. `boot` and
/// `run` confine their threads as they start them; `create` once its image is built.
fn confinement(cli: &Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Config { .. }) {
        return Ok(());
    }
    if cli.no_seccomp {
        tracing::warn!("--no-seccomp: seccomp filters are off");
        eprintln!(
            "host-vmm: WARNING: --no-seccomp: every thread runs WITHOUT its seccomp filter; \
             a compromised VMM thread can make any system call. For debugging only."
        );
        return Ok(());
    }
    seccomp::enable(seccomp::Options {
        first_entry_hook: first_entry::enabled(),
    })
    .context("cannot set up the seccomp filters")?;
    if is_client(&cli.command) {
        seccomp::install(ThreadKind::Cli)?;
    }
    Ok(())
}

/// Commands that only talk to a running sandbox's sockets (and the terminal).
fn is_client(command: &Command) -> bool {
    matches!(
        command,
        Command::Memory { .. }
            | Command::Cpus { .. }
            | Command::Disk { .. }
            | Command::Agent { .. }
            | Command::Start { .. }
            | Command::Exec(_)
            | Command::Kill { .. }
            | Command::Wait { .. }
            | Command::Delete { .. }
            | Command::Ps { .. }
            | Command::Stats { .. }
            | Command::Update { .. }
            | Command::Stop { .. }
    )
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    check_ids(&cli.command)?;
    match cli.command {
        Command::Boot(args) => {
            let outcome = cmd::boot::boot(VmRequest {
                id: args.id,
                config: args.config,
                console: args.console,
                overrides: Overrides {
                    kernel: args.kernel,
                    initrd: args.initrd,
                    memory: args.memory,
                    cpus: args.cpus,
                    kernel_params: args.kernel_params,
                },
                verbose: cli.verbose > 0,
                disks: args.disks,
            })?;
            let code = outcome.exit_code();
            if code == 0 {
                tracing::info!("{outcome}");
            } else {
                tracing::debug!("{outcome}");
                eprintln!("host-vmm: {outcome}");
            }
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Config {
            command: ConfigCommand::Show { config },
        } => {
            let text = config::show(config.as_deref()).context("cannot show the configuration")?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Memory {
            id,
            add,
            set,
            no_wait,
        } => {
            let op = match (add, set) {
                (Some(size), _) => cmd::memory::MemoryOp::Add(size),
                (None, Some(total)) => cmd::memory::MemoryOp::Set(total),
                (None, None) => cmd::memory::MemoryOp::Show,
            };
            print!("{}", cmd::memory::memory(&id, op, !no_wait)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cpus { id, set } => {
            print!("{}", cmd::cpus::cpus(&id, set)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Disk {
            id,
            add,
            remove,
            list,
        } => {
            let text = match (add, remove) {
                (Some(disk), _) => cmd::disk::add(&id, disk, None)?.to_string(),
                (None, Some(serial)) => cmd::disk::remove(&id, &serial)?,
                (None, None) if list => cmd::disk::list(&id)?,
                (None, None) => {
                    anyhow::bail!("disk {id}: give --add PATH, --remove SERIAL or --list")
                }
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { command } => {
            let text = match command {
                AgentCommand::Check { id } => cmd::agent::check(&id)?,
                AgentCommand::Details { id } => cmd::agent::details(&id)?,
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let code = cmd::run::run(RunRequest {
                vm: VmRequest {
                    id: args.id,
                    config: args.config,
                    // The console is the guest kernel's, not the container's: off by default.
                    console: Some(args.console.unwrap_or_else(|| PathBuf::from("/dev/null"))),
                    overrides: Overrides::default(),
                    verbose: cli.verbose > 0,
                    disks: Vec::new(),
                },
                rootfs: args.rootfs.choice(),
                process: args.process.options(args.command),
                resources: args.resources.options(),
                namespaces: NamespaceFlags {
                    net: args.net,
                    ipc: args.ipc,
                    pid: args.pid,
                    uts: args.uts,
                },
                interactive: args.interactive,
            })?;
            Ok(ExitCode::from(code))
        }
        Command::Create(args) => {
            cmd::containers::create(cmd::containers::CreateRequest {
                sandbox: args.sandbox,
                container: args.container,
                rootfs: args.rootfs.choice(),
                process: args.process.options(args.command),
                resources: args.resources.options(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Start {
            sandbox,
            container,
            attach,
            interactive,
        } => Ok(ExitCode::from(cmd::containers::start(
            &sandbox,
            &container,
            attach,
            interactive,
        )?)),
        Command::Exec(args) => Ok(ExitCode::from(cmd::containers::exec(
            &args.sandbox,
            &args.container,
            args.process.options(args.command),
            args.interactive,
        )?)),
        Command::Kill {
            sandbox,
            container,
            signal,
        } => {
            cmd::containers::kill(&sandbox, &container, signal.as_deref().unwrap_or("TERM"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait { sandbox, container } => {
            let code = cmd::containers::wait(&sandbox, &container)?;
            println!("{code}");
            Ok(ExitCode::from(code))
        }
        Command::Delete { sandbox, container } => {
            cmd::containers::delete(&sandbox, &container)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ps { sandbox } => {
            print!("{}", cmd::containers::ps(&sandbox)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { sandbox, container } => {
            print!("{}", cmd::containers::stats(&sandbox, &container)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop { id, timeout } => {
            cmd::stop::stop(&id, std::time::Duration::from_secs(timeout))?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json } => {
            print!("{}", cmd::list::list(json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Update {
            sandbox,
            container,
            resources,
        } => {
            cmd::update::update(cmd::update::UpdateRequest {
                sandbox,
                container,
                resources: resources.options(),
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // First, while this is the only thread: malloc never reads /sys from a confined one.
    seccomp::bound_malloc_arenas();
    // Nothing host-vmm runs (mkfs.erofs) gains privileges through set-uid bits or file
    // capabilities; inherited by every thread and child.
    if let Err(e) = seccomp::set_no_new_privs() {
        eprintln!("host-vmm: error: {}", error_chain(&e));
        return ExitCode::FAILURE;
    }
    // Before any thread starts, so that only the stop-signal thread gets them.
    if let Err(e) = stop_signals::block_stop_signals() {
        eprintln!("host-vmm: error: cannot block the stop signals: {e}");
        return ExitCode::FAILURE;
    }
    // Also before any thread: `run` and `exec` resize the container's terminal on SIGWINCH;
    // SIGQUIT prints what each thread waits for.
    if let Err(e) = cmd::signals::block_winch() {
        eprintln!("host-vmm: error: cannot block SIGWINCH and SIGQUIT: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // Before any other thread starts: threads confine themselves as they start.
    if let Err(e) = confinement(&cli) {
        eprintln!("host-vmm: error: {}", error_chain(e.as_ref()));
        return ExitCode::FAILURE;
    }
    // `boot` has its own stop-signal thread (and answers only SIGQUIT here); every other
    // command routes signals here.
    if matches!(cli.command, Command::Boot(_)) {
        if let Err(e) = cmd::signals::start_quit_dump() {
            eprintln!("host-vmm: error: cannot start the SIGQUIT thread: {e}");
            return ExitCode::FAILURE;
        }
    } else if let Err(e) = cmd::signals::start() {
        eprintln!("host-vmm: error: cannot start the signal thread: {e}");
        return ExitCode::FAILURE;
    }
    // With debug logging (-vv), waits that last are logged as they go.
    if cli.verbose >= 2 {
        if let Err(e) = cmd::signals::start_wait_report() {
            tracing::warn!("cannot start the wait report thread: {e}");
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("host-vmm: error: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmd::run::RootfsChoice;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn test_error_chain_skips_repeated_source() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(Repeats(io())).context("ctx");
        assert_eq!(error_chain(e.as_ref()), "ctx: outer: gone");
        let e = anyhow::Error::new(io()).context("a").context("b");
        assert_eq!(error_chain(e.as_ref()), "b: a: gone");
    }

    #[test]
    fn test_cli_parses_boot_and_config_show() {
        let cli = Cli::try_parse_from([
            "host-vmm",
            "-vv",
            "boot",
            "--kernel",
            "k",
            "--memory",
            "512",
            "--cpus",
            "2",
            "--kernel-params",
            "a=1 b=2",
            "--console",
            "c",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        let Command::Boot(b) = cli.command else {
            panic!("not boot");
        };
        assert_eq!((b.memory, b.cpus), (Some(512), Some(2)));
        assert_eq!(b.kernel_params.as_deref(), Some("a=1 b=2"));
        assert!(Cli::try_parse_from(["host-vmm", "config", "show", "--config", "x"]).is_ok());
        assert!(Cli::try_parse_from(["host-vmm", "boot", "--memory", "lots"]).is_err());
        let cli = Cli::try_parse_from([
            "host-vmm",
            "boot",
            "--disk",
            "a.img,ro,serial=s1",
            "--disk",
            "b.img",
        ])
        .unwrap();
        let Command::Boot(b) = cli.command else {
            panic!("not boot");
        };
        assert_eq!(b.disks.len(), 2);
        assert!(b.disks[0].read_only && b.disks[0].serial == "s1");
        assert!(Cli::try_parse_from(["host-vmm", "boot", "--disk", "a,bogus"]).is_err());
    }

    #[test]
    fn test_cli_parses_run() {
        let cli = Cli::try_parse_from([
            "host-vmm",
            "run",
            "--id",
            "c1",
            "-m",
            "64",
            "--cpus",
            "0.5",
            "-t",
            "-i",
            "-e",
            "A=1",
            "-e",
            "B=2",
            "-w",
            "/tmp",
            "--net",
            "host",
            "--pid",
            "pod",
            "--",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run");
        };
        assert_eq!(r.id.as_deref(), Some("c1"));
        assert_eq!(r.resources.memory, Some(64));
        assert_eq!(r.resources.cpus, Some(0.5));
        assert!(r.process.tty && r.interactive);
        assert_eq!(r.process.env, ["A=1", "B=2"]);
        assert_eq!(r.process.workdir.as_deref(), Some("/tmp"));
        // Refused later, by our own check (exit 1, not clap's 2).
        assert_eq!(r.net.as_deref(), Some("host"));
        assert_eq!(r.pid.as_deref(), Some("pod"));
        assert_eq!(r.command, ["sh", "-c", "echo -n hi"]);
        assert_eq!(r.rootfs.choice(), RootfsChoice::Default);
        let opts = r.process.options(r.command.clone());
        assert_eq!(opts.args[0], "sh");
        assert!(opts.terminal);
    }

    #[test]
    fn test_cli_run_without_dashdash_and_rootfs_choices() {
        let cli = Cli::try_parse_from(["host-vmm", "run", "echo", "-n", "x"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run");
        };
        assert_eq!(r.command, ["echo", "-n", "x"]);
        let cli = Cli::try_parse_from(["host-vmm", "run", "--bundle", "b", "--", "sh"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run");
        };
        assert_eq!(r.rootfs.choice(), RootfsChoice::Bundle("b".into()));
        assert!(
            Cli::try_parse_from(["host-vmm", "run", "--bundle", "b", "--rootfs", "r"]).is_err()
        );
        // Sandbox only: no command.
        let cli = Cli::try_parse_from(["host-vmm", "run", "--id", "pod1"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run");
        };
        assert!(r.command.is_empty());
    }

    fn ids_of(args: &[&str]) -> anyhow::Result<()> {
        check_ids(&Cli::try_parse_from(args).unwrap().command)
    }

    #[test]
    fn test_every_command_checks_its_ids() {
        let bad = "caf\u{e9}";
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["boot", "--id", bad], "--id"),
            (vec!["run", "--id", bad, "--", "true"], "--id"),
            (vec!["memory", bad], "sandbox id"),
            (vec!["disk", bad, "--add", "x.img"], "sandbox id"),
            (vec!["agent", "check", bad], "sandbox id"),
            (vec!["agent", "details", bad], "sandbox id"),
            (vec!["ps", bad], "sandbox id"),
            (vec!["create", bad, "c", "--", "true"], "sandbox id"),
            (vec!["create", "p", bad, "--", "true"], "container id"),
            (vec!["start", "p", bad], "container id"),
            (vec!["exec", "p", bad, "--", "true"], "container id"),
            (vec!["kill", bad, "c"], "sandbox id"),
            (vec!["wait", "p", bad], "container id"),
            (vec!["delete", "p", bad], "container id"),
            (vec!["stats", "p", bad], "container id"),
            (vec!["update", "p", bad, "--memory", "100"], "container id"),
        ];
        for (args, field) in cases {
            let argv: Vec<&str> = std::iter::once("host-vmm").chain(args.clone()).collect();
            let e = ids_of(&argv).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{field}: ")), "{args:?}: {e}");
            assert!(
                e.contains("[A-Za-z0-9]+([._-][A-Za-z0-9]+)*"),
                "{args:?}: {e}"
            );
        }
        for args in [
            &["host-vmm", "create", "pod-1", "web.2", "--", "true"][..],
            &["host-vmm", "run", "--", "true"],
            &["host-vmm", "config", "show"],
        ] {
            ids_of(args).unwrap();
        }
    }

    #[test]
    fn test_cli_parses_container_subcommands() {
        let cli = Cli::try_parse_from([
            "host-vmm", "create", "pod1", "c2", "-e", "X=1", "--", "nc", "-l", "-p", "8080",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!("not create");
        };
        assert_eq!((c.sandbox.as_str(), c.container.as_str()), ("pod1", "c2"));
        assert_eq!(c.command, ["nc", "-l", "-p", "8080"]);
        let cli = Cli::try_parse_from([
            "host-vmm", "exec", "-t", "-i", "pod1", "c2", "--", "ls", "-l",
        ])
        .unwrap();
        let Command::Exec(e) = cli.command else {
            panic!("not exec");
        };
        assert!(e.process.tty && e.interactive);
        assert_eq!(e.command, ["ls", "-l"]);
        assert!(Cli::try_parse_from(["host-vmm", "exec", "pod1", "c2"]).is_err());
        let cli = Cli::try_parse_from(["host-vmm", "kill", "pod1", "c2", "KILL"]).unwrap();
        assert!(matches!(cli.command, Command::Kill { signal: Some(ref s), .. } if s == "KILL"));
        let cli = Cli::try_parse_from(["host-vmm", "start", "-a", "pod1", "c2"]).unwrap();
        assert!(matches!(cli.command, Command::Start { attach: true, .. }));
        assert!(Cli::try_parse_from(["host-vmm", "start", "-i", "pod1", "c2"]).is_err());
        for args in [
            &["host-vmm", "wait", "p", "c"][..],
            &["host-vmm", "delete", "p", "c"],
            &["host-vmm", "ps", "p"],
            &["host-vmm", "stats", "p", "c"],
            &["host-vmm", "stop", "p"],
            &["host-vmm", "stop", "p", "--timeout", "5"],
            &["host-vmm", "list"],
            &["host-vmm", "list", "--json"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn test_cli_parses_disk_add_remove_list() {
        let cli = Cli::try_parse_from(["host-vmm", "disk", "p", "--add", "a.img,ro"]).unwrap();
        assert!(
            matches!(cli.command, Command::Disk { add: Some(ref d), remove: None, list: false, .. } if d.read_only && d.serial.is_empty())
        );
        let cli = Cli::try_parse_from(["host-vmm", "disk", "p", "--remove", "disk-3"]).unwrap();
        assert!(
            matches!(cli.command, Command::Disk { add: None, remove: Some(ref s), .. } if s == "disk-3")
        );
        let cli = Cli::try_parse_from(["host-vmm", "disk", "p", "--list"]).unwrap();
        assert!(matches!(cli.command, Command::Disk { list: true, .. }));
        for args in [
            &["host-vmm", "disk", "p", "--add", "a", "--remove", "s"][..],
            &["host-vmm", "disk", "p", "--remove", "s", "--list"],
            &["host-vmm", "disk", "p", "--add", "a", "--list"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
