//! `guest-agent --check`: a dry run as a normal process. Shows what pid 1 would do on this
//! system (the parsed switches, which mounts it would make or skip, the cgroup controllers)
//! and prints the ready line it would print, to stdout. Changes nothing.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use crate::cgroup_root as cgroups;
use crate::error_chain::error_chain;
use crate::init::mounts;
use crate::{cmdline, ready};

pub fn run() -> ExitCode {
    let mut ok = true;
    match fs::read_to_string("/proc/cmdline") {
        Ok(text) => {
            let (options, warnings) = cmdline::parse(&text);
            println!("cmdline: {options:?}");
            for w in warnings {
                println!("cmdline warning: {w}");
            }
        }
        Err(e) => {
            println!("cmdline: cannot read /proc/cmdline: {e}");
            ok = false;
        }
    }

    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for spec in &mounts::BASE_MOUNTS {
        match mounts::mounted_fstype(&table, spec.target) {
            Some(fstype) => println!("mount: {} already mounted ({fstype})", spec.target),
            None => println!("mount: would mount {} on {}", spec.fstype, spec.target),
        }
    }

    match cgroups::read_plan(Path::new(cgroups::CGROUP_ROOT)) {
        Ok(plan) => println!(
            "cgroup: would enable [{}], already [{}], missing [{}]",
            plan.enable.join(" "),
            plan.already.join(" "),
            plan.missing.join(" ")
        ),
        Err(e) => println!("cgroup: {}", error_chain(&e)),
    }

    match ready::ReadyInfo::collect() {
        Ok(info) => println!("{}", info.line()),
        Err(e) => {
            println!("ready: {}", error_chain(&e));
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
