//! One sample record as the BPF program wrote it into the ring buffer:
//! `struct sample_header` (bpf/sample.h), then `py_frames` Python frames,
//! then `ustack_bytes` of user stack copied from `sp` upwards.

pub use super::skel::types::{py_frame, sample_header};

/// Flag bits of `sample_header.flags`, as in bpf/sample.h.
pub const SAMPLE_USER_REGS: u32 = 1;
pub const SAMPLE_IN_KERNEL: u32 = 2;
pub const SAMPLE_KTHREAD: u32 = 4;
pub const SAMPLE_PY_TRUNCATED: u32 = 8;
pub const SAMPLE_PY_NO_THREAD: u32 = 16;
pub const SAMPLE_PY_READ_ERROR: u32 = 32;
/// `py_frame.flags`: the first frame its eval-loop call ran (3.11+).
pub const PY_FRAME_ENTRY: u32 = 1;

// SAFETY: sample_header is a repr(C) struct of integers and integer arrays,
// valid for any bit pattern.
unsafe impl plain::Plain for sample_header {}
// SAFETY: as above, integers only.
unsafe impl plain::Plain for py_frame {}

/// A borrowed view of one record; valid only inside the ring-buffer callback.
pub struct RawSample<'a> {
    pub header: &'a sample_header,
    /// Python frames, innermost first (empty for other processes).
    pub py_frames: &'a [py_frame],
    /// The user stack copy: `stack[i]` is the byte at address `header.sp + i`.
    pub stack: &'a [u8],
}

impl<'a> RawSample<'a> {
    /// Parses a record, checking every length against the bytes actually
    /// received (the BPF side is trusted no more than it has to be).
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let header: &sample_header = plain::from_bytes(data).ok()?;
        let mut at = size_of::<sample_header>();
        let py_len = usize::try_from(header.py_frames)
            .ok()?
            .checked_mul(size_of::<py_frame>())?;
        let py_bytes = data.get(at..at.checked_add(py_len)?)?;
        // Records are 8-byte aligned in the ring buffer, and so are these
        // offsets, which plain checks.
        let py_frames: &[py_frame] = plain::slice_from_bytes(py_bytes).ok()?;
        at += py_len;
        let len = usize::try_from(header.ustack_bytes).ok()?;
        let stack = data.get(at..at.checked_add(len)?)?;
        Some(RawSample {
            header,
            py_frames,
            stack,
        })
    }

    pub fn tgid(&self) -> u32 {
        self.header.tgid
    }

    pub fn has_user_regs(&self) -> bool {
        self.header.flags & SAMPLE_USER_REGS != 0
    }

    /// Kernel return addresses, innermost first.
    pub fn kernel_stack(&self) -> &'a [u64] {
        let n = usize::try_from(self.header.kstack_bytes.max(0)).unwrap_or(0) / 8;
        &self.header.kstack[..n.min(self.header.kstack.len())]
    }

    /// The thread's command name (at most 15 bytes, as the kernel keeps it).
    pub fn comm(&self) -> String {
        let bytes: Vec<u8> = self
            .header
            .comm
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Reads the 8-byte word at `addr` from the stack copy, if it was copied.
    pub fn read_stack_word(&self, addr: u64) -> Option<u64> {
        let off = usize::try_from(addr.checked_sub(self.header.sp)?).ok()?;
        let bytes = self.stack.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}
