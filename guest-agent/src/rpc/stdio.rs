//! Container process stdio: stdin writes, stdout/stderr reads, tty size. Stubs for now.

use protocol::agent::*;
use protocol::Empty;

use super::{Agent, RpcError};

pub fn write_stdin(_: &Agent, _: WriteStreamRequest) -> Result<WriteStreamResponse, RpcError> {
    Err(RpcError::Unimplemented("WriteStdin"))
}

pub fn read_stdout(_: &Agent, _: ReadStreamRequest) -> Result<ReadStreamResponse, RpcError> {
    Err(RpcError::Unimplemented("ReadStdout"))
}

pub fn read_stderr(_: &Agent, _: ReadStreamRequest) -> Result<ReadStreamResponse, RpcError> {
    Err(RpcError::Unimplemented("ReadStderr"))
}

pub fn close_stdin(_: &Agent, _: CloseStdinRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("CloseStdin"))
}

pub fn tty_win_resize(_: &Agent, _: TtyWinResizeRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("TtyWinResize"))
}
