//! Reading another process's memory through /proc/PID/mem.
//!
//! Everything read is hostile data: lengths are capped by the caller, and a
//! failed or short read is an error, never a partial value.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub struct ProcessMemory {
    mem: File,
}

impl ProcessMemory {
    pub fn open(pid: u32) -> io::Result<Self> {
        Ok(ProcessMemory {
            mem: File::open(format!("/proc/{pid}/mem"))?,
        })
    }

    /// Fills `buf` from `addr`, or fails.
    pub fn read_exact(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        if addr == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "null pointer"));
        }
        self.mem.read_exact_at(buf, addr)
    }

    pub fn read_u64(&self, addr: u64) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, addr: u64) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn read_i32(&self, addr: u64) -> io::Result<i32> {
        Ok(self.read_u32(addr)? as i32)
    }

    /// Reads `len` bytes, refusing more than `max` (a length read from the
    /// target is never trusted).
    pub fn read_vec(&self, addr: u64, len: u64, max: u64) -> io::Result<Vec<u8>> {
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "implausible length",
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_exact(addr, &mut v)?;
        Ok(v)
    }
}
