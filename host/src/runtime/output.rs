//! A guest's stdout and stderr: kept for the run log, charged to the run's
//! [`Budget`] as they are written (each line also counts as an item).
//!
//! Past the limit the write traps with [`OutputLimitHit`], so the run ends
//! as `output-limit` rather than as whatever the guest does when a write
//! fails (a Rust guest panics on a failed `println!`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::budget::{Budget, OutputLimitHit};

/// How much a guest may write in one call, before the limit is checked.
const PERMIT: usize = 64 * 1024;

/// Shared by the stream wasmtime-wasi writes to and the run that reads it.
#[derive(Clone)]
pub struct OutputPipe {
    buffer: Arc<Mutex<Vec<u8>>>,
    budget: Arc<Budget>,
}

impl OutputPipe {
    pub fn new(budget: Arc<Budget>) -> Self {
        OutputPipe {
            buffer: Arc::default(),
            budget,
        }
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.buffer.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn append(&self, bytes: &[u8]) -> Result<(), OutputLimitHit> {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        self.budget.log(bytes.len(), lines)?;
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.extend_from_slice(bytes);
        Ok(())
    }
}

impl IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for OutputPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes).map_err(|hit| StreamError::Trap(hit.into()))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.append(buf).map(|()| buf.len()).map_err(io::Error::other))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
