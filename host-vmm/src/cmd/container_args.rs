//! The command-line arguments of the container commands (`run`, `create`, `exec`), their
//! help texts, and their mapping to the `oci` options.

use std::path::PathBuf;

use host_vmm::oci::{ProcessOptions, ResourceOptions};

use super::run::RootfsChoice;

pub const RUN_EXIT_CODES: &str = "\
Exit status of `run` and `exec` (as docker's):
  0-255  the container's (or the exec'd process's) exit code; 128+N when a signal N killed
         it (137: SIGKILL, e.g. the OOM killer; 143: SIGTERM)
  1      host-vmm failed before anything started (a refused or invalid option, the
         configuration, the bundle), or lost the sandbox while the container ran
  125    the sandbox or the container could not be started (VM, agent, CreateContainer,
         StartContainer; for `exec`, ExecProcess); nothing is left running
`run --id ID` without a command keeps the sandbox running, exiting like `boot`.

Namespaces: every container of a sandbox shares the sandbox's network (--net pod) and IPC
(--ipc pod) namespaces, has its own uts namespace (--uts container) and its own pid
namespace (--pid container) or the sandbox's (--pid pod). `host` is refused for all four:
the container runs inside a VM and cannot join a namespace of the host.

Memory: -m/--memory sets the container's memory limit. The sandbox boots with
default_memory; a larger limit hot-adds the difference (whole memory blocks) before the
container is created.";

pub const CONTAINER_HELP: &str = "\
Output of containers started with `create` + `start` (without --attach): nobody reads it.
Each of its stdout and stderr is a pipe in the guest that holds 64 KiB; once full, the
container's writes block until it is read, so give such containers quiet commands or
redirect their output inside the container (sh -c 'cmd >/tmp/log 2>&1'). Its stdin is
closed at start (a terminal gets ^D). `start --attach` streams it like `run` instead, and
`exec` streams the process it starts.";

/// Options of the container's process (run, create, exec).
#[derive(clap::Args, Debug, Clone)]
pub struct ProcessArgs {
    /// Set an environment variable (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the container (absolute).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Give the process a terminal (stderr is merged into it).
    #[arg(short = 't', long)]
    pub tty: bool,
}

/// Resource limits of a container (run, create).
#[derive(clap::Args, Debug, Clone)]
pub struct ResourceArgs {
    /// Memory limit in MiB (the sandbox grows to hold it).
    #[arg(short = 'm', long = "memory", value_name = "MIB")]
    pub memory: Option<u64>,
    /// CPU time, in CPUs (e.g. 0.5): a CFS quota per 100 ms period.
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// Most processes in the container.
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<u64>,
}

/// Where the root filesystem comes from (run, create). Neither: the default image.
#[derive(clap::Args, Debug, Clone)]
pub struct RootfsArgs {
    /// An OCI bundle: DIR/config.json and its root.path.
    #[arg(long, value_name = "DIR", conflicts_with = "rootfs")]
    pub bundle: Option<PathBuf>,
    /// A root filesystem directory (with the default spec).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
}

/// `host-vmm run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Sandbox (and container) id; names the runtime directory. Default: hv-<pid>.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Configuration file (as for `boot`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the guest console to FILE (default: discarded).
    #[arg(long, value_name = "FILE")]
    pub console: Option<PathBuf>,
    #[command(flatten)]
    pub rootfs: RootfsArgs,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Copy the host's stdin to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Network namespace: pod (the sandbox's). host is refused.
    #[arg(long, value_name = "MODE")]
    pub net: Option<String>,
    /// IPC namespace: pod (the sandbox's). host is refused.
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// Pid namespace: container (its own) or pod (the sandbox's). host is refused.
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// Uts namespace: container (its own). host is refused.
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// The command and its arguments (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// `host-vmm create`.
#[derive(clap::Args)]
pub struct CreateArgs {
    pub sandbox: String,
    pub container: String,
    #[command(flatten)]
    pub rootfs: RootfsArgs,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// The command and its arguments (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// `host-vmm exec`.
#[derive(clap::Args)]
pub struct ExecArgs {
    pub sandbox: String,
    pub container: String,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Copy the host's stdin to the process.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

impl ProcessArgs {
    pub fn options(&self, args: Vec<String>) -> ProcessOptions {
        ProcessOptions {
            args,
            env: self.env.clone(),
            cwd: self.workdir.clone(),
            terminal: self.tty,
        }
    }
}

impl ResourceArgs {
    pub fn options(&self) -> ResourceOptions {
        ResourceOptions {
            memory_mib: self.memory,
            cpus: self.cpus,
            pids_limit: self.pids_limit,
        }
    }
}

impl RootfsArgs {
    pub fn choice(&self) -> RootfsChoice {
        match (&self.bundle, &self.rootfs) {
            (Some(b), _) => RootfsChoice::Bundle(b.clone()),
            (None, Some(r)) => RootfsChoice::Dir(r.clone()),
            (None, None) => RootfsChoice::Default,
        }
    }
}
