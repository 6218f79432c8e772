//! Turns one raw sample into a stack of interned frames, root first:
//! `process (pid)`, native frames from the outermost down, then kernel frames.

use std::collections::HashMap;

use super::frame::{FrameId, FrameKind, FrameTable};
use crate::process::ProcessTable;
use crate::process::elf_file::FileId;
use crate::sampler::record::RawSample;
use crate::symbols::Symbols;
use crate::unwind::UnwindCache;

/// Counters of how well stacks could be rebuilt.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildStats {
    /// Samples with a user part whose native unwind reached the outermost frame.
    pub complete: u64,
    /// Samples with a user part whose unwind stopped early.
    pub truncated: u64,
}

pub struct StackBuilder {
    pub frames: FrameTable,
    pub processes: ProcessTable,
    symbols: Symbols,
    cache: Box<UnwindCache>,
    /// Frame of each (file, stated address) and kernel address seen so far:
    /// each address is symbolized once.
    user_frames: HashMap<(FileId, u64), FrameId>,
    kernel_frames: HashMap<u64, FrameId>,
    pub stats: BuildStats,
}

impl Default for StackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StackBuilder {
    pub fn new() -> Self {
        StackBuilder {
            frames: FrameTable::default(),
            processes: ProcessTable::new(),
            symbols: Symbols::new(),
            cache: Box::new(UnwindCache::new()),
            user_frames: HashMap::new(),
            kernel_frames: HashMap::new(),
            stats: BuildStats::default(),
        }
    }

    /// Appends the sample's stack, root first, to `out` (which is cleared).
    pub fn build(&mut self, sample: &RawSample<'_>, out: &mut Vec<FrameId>) {
        out.clear();
        let root = self.process_frame(sample);
        out.push(root);

        if sample.has_user_regs() {
            self.push_user_frames(sample, out);
        }
        let kernel = sample.kernel_stack();
        for &addr in kernel.iter().rev() {
            let id = self.kernel_frame(addr);
            out.push(id);
        }
    }

    fn process_frame(&mut self, sample: &RawSample<'_>) -> FrameId {
        let pid = sample.tgid();
        if pid == 0 {
            return self.frames.intern(FrameKind::Process, "[idle] (0)");
        }
        let proc = self.processes.get(pid, sample.header.mm, &sample.comm());
        if let Some(id) = proc.root_frame {
            return id;
        }
        let id = self
            .frames
            .intern(FrameKind::Process, &format!("{} ({pid})", proc.name));
        proc.root_frame = Some(id);
        id
    }

    fn push_user_frames(&mut self, sample: &RawSample<'_>, out: &mut Vec<FrameId>) {
        let h = sample.header;
        let pid = sample.tgid();
        let mut read = |addr: u64| sample.read_stack_word(addr).ok_or(());
        let proc = self.processes.get(pid, h.mm, "");
        if proc.files.is_empty() {
            // Its maps could not be read (it exited before we saw it): an
            // unwind without modules would only follow garbage.
            out.push(self.frames.intern(FrameKind::Truncated, "[unknown]"));
            return;
        }
        let mut stack = proc
            .unwinder
            .unwind(&mut self.cache, h.ip, h.sp, h.bp, &mut read);
        // An address outside every known file means the maps changed since
        // we read them (a library loaded later): read them again and redo.
        if stack.addrs.iter().any(|&a| proc.file_at(a).is_none()) && self.processes.refresh(pid) {
            let proc = self.processes.get(pid, h.mm, "");
            stack = proc
                .unwinder
                .unwind(&mut self.cache, h.ip, h.sp, h.bp, &mut read);
        }
        let proc = self.processes.get(pid, h.mm, "");
        if stack.complete {
            self.stats.complete += 1;
        } else {
            self.stats.truncated += 1;
            out.push(self.frames.intern(FrameKind::Truncated, "[truncated]"));
        }
        for &addr in stack.addrs.iter().rev() {
            let id = match proc.file_at(addr) {
                Some(mapped) => {
                    let svma = addr.wrapping_sub(mapped.bias);
                    let key = (mapped.file.id, svma);
                    match self.user_frames.get(&key) {
                        Some(&id) => id,
                        None => {
                            let name = self.symbols.user(&mapped.file, svma).unwrap_or_else(|| {
                                format!("{}+{svma:#x}", basename(&mapped.file.name))
                            });
                            let id = self.frames.intern(FrameKind::Native, &name);
                            self.user_frames.insert(key, id);
                            id
                        }
                    }
                }
                None => self.frames.intern(FrameKind::Native, "[unknown]"),
            };
            out.push(id);
        }
    }

    fn kernel_frame(&mut self, addr: u64) -> FrameId {
        if let Some(&id) = self.kernel_frames.get(&addr) {
            return id;
        }
        let name = match self.symbols.kernel(addr) {
            Some(sym) => format!("{sym}_[k]"),
            None => "[unknown]_[k]".to_string(),
        };
        let id = self.frames.intern(FrameKind::Kernel, &name);
        self.kernel_frames.insert(addr, id);
        id
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
