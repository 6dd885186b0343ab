//! guest-agent: the guest's `/init`. Everything lives in the library; see `guest_agent::entry`.

fn main() -> std::process::ExitCode {
    guest_agent::entry(std::env::args().skip(1).collect())
}
