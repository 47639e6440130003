//! A resource limiter that caps the memory of a whole run, not each memory.
//!
//! wasmtime's `StoreLimits` caps every linear memory separately, so a small
//! component instantiating many core modules could use the per-memory cap many
//! times over. This sums them.

use wasmtime::ResourceLimiter;

/// A memory grow past the run's limit. It ends the run as a trap carrying
/// this error, so the outcome says "memory limit" rather than a guest panic.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached")]
pub struct MemoryLimitHit {
    pub limit: usize,
}

pub struct RunLimiter {
    memory_limit: usize,
    memory_used: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
}

impl RunLimiter {
    pub fn new(config: &super::SandboxConfig) -> Self {
        RunLimiter {
            memory_limit: config.memory_bytes,
            memory_used: 0,
            table_elements: config.table_elements,
            instances: config.instances,
            tables: config.tables,
            memories: config.memories,
        }
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.memory_used - current.min(self.memory_used) + desired;
        if used > self.memory_limit {
            return Err(MemoryLimitHit {
                limit: self.memory_limit,
            }
            .into());
        }
        self.memory_used = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}
