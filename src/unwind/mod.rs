//! Native unwinding from the user-stack copy taken by the BPF program, using
//! the .eh_frame / .debug_frame CFI of each mapped file (framehop).
//!
//! Frame pointers cannot be the main path: the Pythons and most distribution
//! binaries this profiler targets are built without them. framehop falls back
//! to frame pointers for code without CFI (JIT code, say).

use std::ops::Range;
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

/// Deepest native stack followed.
pub const MAX_NATIVE_FRAMES: usize = 512;

type Section = Option<(Range<u64>, Arc<[u8]>)>;

/// The sections of one file that unwinding needs, read once per file.
#[derive(Clone, Default)]
pub struct UnwindSections {
    text: Section,
    eh_frame: Section,
    eh_frame_hdr: Section,
    debug_frame: Section,
    got: Option<Range<u64>>,
}

impl UnwindSections {
    /// Collects the sections through `section(name)`, which returns a
    /// section's stated address range and contents.
    pub fn from_sections(section: &dyn Fn(&str) -> Section) -> Self {
        UnwindSections {
            text: section(".text"),
            eh_frame: section(".eh_frame"),
            eh_frame_hdr: section(".eh_frame_hdr"),
            debug_frame: section(".debug_frame"),
            got: section(".got").map(|(r, _)| r),
        }
    }

    pub fn has_cfi(&self) -> bool {
        self.eh_frame.is_some() || self.debug_frame.is_some()
    }

    fn section_info(&self) -> ExplicitModuleSectionInfo<Arc<[u8]>> {
        let range = |s: &Section| s.as_ref().map(|(r, _)| r.clone());
        let data = |s: &Section| s.as_ref().map(|(_, d)| d.clone());
        ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: range(&self.text),
            text: data(&self.text),
            got_svma: self.got.clone(),
            eh_frame_svma: range(&self.eh_frame),
            eh_frame: data(&self.eh_frame),
            eh_frame_hdr_svma: range(&self.eh_frame_hdr),
            eh_frame_hdr: data(&self.eh_frame_hdr),
            debug_frame: data(&self.debug_frame),
            ..Default::default()
        }
    }
}

/// The unwinder of one process: its modules at their runtime addresses, and
/// its own cache of unwind rules. framehop keys cached rules by address and a
/// global 16-bit module generation; with one cache for every process, a
/// whole-host recording's processes evict each other's rules (the cache has
/// 509 slots), and after 65536 module changes the generation wraps, when one
/// process could be handed another's rule for code at the same address.
pub struct NativeUnwinder {
    unwinder: UnwinderX86_64<Arc<[u8]>>,
    cache: Box<CacheX86_64>,
}

impl Default for NativeUnwinder {
    fn default() -> Self {
        NativeUnwinder {
            unwinder: UnwinderX86_64::default(),
            cache: Box::new(CacheX86_64::new()),
        }
    }
}

/// The result of one unwind.
pub struct NativeStack {
    /// Code addresses, innermost first. The first is the sampled instruction
    /// pointer; the others are return addresses minus one, so that each one
    /// falls inside the call instruction and symbolizes to the caller.
    pub addrs: Vec<u64>,
    /// The stack pointer at entry of each frame's code, innermost first:
    /// frame i's own stack is `sps[i]..sps[i + 1]` (the last one is open).
    pub sps: Vec<u64>,
    /// The unwinder reached the outermost frame (rather than giving up).
    pub complete: bool,
}

impl NativeUnwinder {
    /// Adds a module mapped at `avma` whose stated addresses are shifted by `bias`.
    pub fn add_module(
        &mut self,
        name: &str,
        avma: Range<u64>,
        bias: u64,
        sections: &UnwindSections,
    ) {
        self.unwinder.add_module(Module::new(
            name.to_string(),
            avma,
            bias,
            sections.section_info(),
        ));
    }

    /// Unwinds from the given registers; `read_stack` reads 8 bytes of the
    /// thread's stack (from the copy) or fails.
    pub fn unwind<F: FnMut(u64) -> Result<u64, ()>>(
        &mut self,
        ip: u64,
        sp: u64,
        bp: u64,
        read_stack: &mut F,
    ) -> NativeStack {
        // Driven frame by frame (not with iter_frames) to see the stack
        // pointer after each step: it bounds each frame's stack.
        let mut regs = UnwindRegsX86_64::new(ip, sp, bp);
        let mut addrs = Vec::with_capacity(32);
        let mut sps = Vec::with_capacity(32);
        let mut address = FrameAddress::InstructionPointer(ip);
        let complete = loop {
            if addrs.len() >= MAX_NATIVE_FRAMES {
                break false;
            }
            addrs.push(match address {
                FrameAddress::InstructionPointer(a) => a,
                FrameAddress::ReturnAddress(a) => u64::from(a) - 1,
            });
            sps.push(regs.sp());
            match self
                .unwinder
                .unwind_frame(address, &mut regs, &mut self.cache, read_stack)
            {
                Ok(Some(ra)) => match FrameAddress::from_return_address(ra) {
                    Some(next) => address = next,
                    None => break false,
                },
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        sps.push(regs.sp());
        NativeStack {
            addrs,
            sps,
            complete,
        }
    }
}
