//! Container process stdio: stdin writes, stdout/stderr reads, tty size. Reads block until
//! data arrives or the stream ends (empty data): the host polls them with one call in flight
//! per stream.

use protocol::agent::*;
use protocol::Empty;

use super::{ids, Agent, RpcError};
use crate::container::stdio::MAX_READ;

/// What a read with `len` 0 returns at most.
pub const DEFAULT_READ: usize = 64 << 10;

/// The most bytes a read of `len` returns: 0 is [`DEFAULT_READ`], at most [`MAX_READ`].
pub fn read_len(len: u32) -> usize {
    match usize::try_from(len) {
        Ok(0) => DEFAULT_READ,
        Ok(n) => n.min(MAX_READ),
        Err(_) => MAX_READ,
    }
}

pub fn write_stdin(
    agent: &Agent,
    req: WriteStreamRequest,
) -> Result<WriteStreamResponse, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let written = agent
        .sandbox()?
        .with_io(&req.container_id, &req.exec_id, |io| {
            io.write_stdin(&req.data)
        })?;
    let mut r = WriteStreamResponse::new();
    // A ttrpc message is at most a few MiB.
    r.len = u32::try_from(written).unwrap_or(u32::MAX);
    Ok(r)
}

pub fn read_stdout(agent: &Agent, req: ReadStreamRequest) -> Result<ReadStreamResponse, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let max = read_len(req.len);
    let data = agent
        .sandbox()?
        .with_io(&req.container_id, &req.exec_id, |io| io.read_stdout(max))?;
    let mut r = ReadStreamResponse::new();
    r.data = data;
    Ok(r)
}

pub fn read_stderr(agent: &Agent, req: ReadStreamRequest) -> Result<ReadStreamResponse, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let max = read_len(req.len);
    let data = agent
        .sandbox()?
        .with_io(&req.container_id, &req.exec_id, |io| io.read_stderr(max))?;
    let mut r = ReadStreamResponse::new();
    r.data = data;
    Ok(r)
}

pub fn close_stdin(agent: &Agent, req: CloseStdinRequest) -> Result<Empty, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    agent
        .sandbox()?
        .with_io(&req.container_id, &req.exec_id, |io| io.close_stdin())?;
    Ok(Empty::new())
}

pub fn tty_win_resize(agent: &Agent, req: TtyWinResizeRequest) -> Result<Empty, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let dimension = |value: u32, field: &str| {
        u16::try_from(value).map_err(|_| {
            RpcError::InvalidArgument(format!("{field}: {value} is more than {}", u16::MAX))
        })
    };
    let (rows, cols) = (dimension(req.row, "row")?, dimension(req.column, "column")?);
    agent
        .sandbox()?
        .with_io(&req.container_id, &req.exec_id, |io| io.resize(rows, cols))?;
    Ok(Empty::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_read_len() {
        assert_eq!(read_len(0), DEFAULT_READ);
        assert_eq!(read_len(10), 10);
        assert_eq!(read_len(u32::MAX), MAX_READ);
        assert_eq!(MAX_READ, 1 << 20);
    }
}
