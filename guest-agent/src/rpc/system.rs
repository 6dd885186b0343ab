//! The guest as a system: its facts (`GetGuestDetails`), its clock (`SetGuestDateTime`) and
//! files copied in from the host (`CopyFile`, a stub for now).

use std::io;
use std::time::Duration;

use protocol::agent::*;
use protocol::protobuf::MessageField;
use protocol::Empty;

use super::{Agent, RpcError};
use crate::guest_details;

pub fn get_guest_details(
    agent: &Agent,
    req: GuestDetailsRequest,
) -> Result<GuestDetailsResponse, RpcError> {
    let mut r = GuestDetailsResponse::new();
    if req.mem_block_size {
        r.mem_block_size_bytes = guest_details::read_block_size(&agent.memory_sysfs)
            .map_err(|e| RpcError::Internal(crate::error_chain::error_chain(&e)))?
            .unwrap_or(0);
    }
    if req.mem_hotplug_probe {
        r.support_mem_hotplug_probe = guest_details::hotplug_probe_exists(&agent.memory_sysfs);
    }
    let mut details = AgentDetails::new();
    details.version = crate::VERSION.to_string();
    details.init_daemon = nix::unistd::getpid().as_raw() == 1;
    r.agent_details = MessageField::some(details);
    r.kernel_version = guest_details::kernel_release();
    r.online_cpus = crate::cpus::online_count(&agent.cpu_sysfs).unwrap_or(0);
    Ok(r)
}

pub fn set_guest_date_time(agent: &Agent, req: SetGuestDateTimeRequest) -> Result<Empty, RpcError> {
    let since_epoch = realtime_from(req.sec, req.usec)?;
    (agent.clock)(since_epoch).map_err(RpcError::io("clock_settime(CLOCK_REALTIME)"))?;
    tracing::info!(
        "guest clock set to {}.{:06} s since the Epoch",
        req.sec,
        req.usec
    );
    Ok(Empty::new())
}

pub fn copy_file(_: &Agent, _: CopyFileRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("CopyFile"))
}

/// The time since the Epoch a `SetGuestDateTime` request names. Pure.
pub fn realtime_from(sec: i64, usec: i64) -> Result<Duration, RpcError> {
    let secs = u64::try_from(sec)
        .map_err(|_| RpcError::InvalidArgument(format!("sec {sec} is before the Epoch")))?;
    let micros = u32::try_from(usec)
        .ok()
        .filter(|&u| u < 1_000_000)
        .ok_or_else(|| RpcError::InvalidArgument(format!("usec {usec} is not in 0..=999999")))?;
    Ok(Duration::new(secs, micros * 1000))
}

/// Sets CLOCK_REALTIME: the agent's clock in production.
pub fn set_realtime(since_epoch: Duration) -> io::Result<()> {
    if i64::try_from(since_epoch.as_secs()).is_err() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let ts = nix::sys::time::TimeSpec::from_duration(since_epoch);
    nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_realtime_from_valid() {
        assert_eq!(
            realtime_from(1_764_000_000, 250_000).unwrap(),
            Duration::new(1_764_000_000, 250_000_000)
        );
        assert_eq!(
            realtime_from(0, 999_999).unwrap(),
            Duration::new(0, 999_999_000)
        );
    }

    #[test]
    fn test_realtime_from_out_of_range_is_invalid_argument() {
        for (sec, usec) in [
            (-1, 0),
            (i64::MIN, 0),
            (0, -1),
            (0, 1_000_000),
            (0, i64::MAX),
        ] {
            let e = realtime_from(sec, usec).unwrap_err();
            assert!(
                matches!(e, RpcError::InvalidArgument(_)),
                "{sec} {usec}: {e}"
            );
        }
    }
}
