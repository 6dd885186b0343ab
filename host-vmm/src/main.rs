//! The host-vmm command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

mod cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use host_vmm::config::{self, Overrides};
use host_vmm::errors::error_chain;
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
    /// Talk to the agent of a running sandbox (started with `boot --id ID`).
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
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
    /// Sandbox id: names the runtime directory ($HOST_VMM_RUNTIME_DIR or
    /// /run/host-vmm, then /<id>) that other commands reach the VM through.
    /// Default: hv-<pid>.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Configuration file (default: $HOST_VMM_CONFIG, ./configuration.toml,
    /// /etc/host-vmm/configuration.toml).
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Boot(args) => {
            let outcome = cmd::boot::boot(cmd::boot::BootRequest {
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
        Command::Agent { command } => {
            let text = match command {
                AgentCommand::Check { id } => cmd::agent::check(&id)?,
                AgentCommand::Details { id } => cmd::agent::details(&id)?,
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // Before any thread starts, so that only the stop-signal thread gets them.
    if let Err(e) = stop_signals::block_stop_signals() {
        eprintln!("host-vmm: error: cannot block the stop signals: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
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
    }
}
