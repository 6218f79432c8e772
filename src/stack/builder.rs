//! Turns one raw sample into a stack of interned frames, root first.
//!
//! For a Python process the default stack is its Python frames; with
//! `native` the native stack with the Python frames spliced in (merge.rs),
//! then kernel frames. Other processes get native then kernel frames.

use std::collections::HashMap;

use super::frame::{FrameId, FrameKind, FrameTable};
use super::merge::{self, NativeFrame, PyFrame};
use crate::process::ProcessTable;
use crate::process::elf_file::FileId;
use crate::python::layout::Layout;
use crate::python::{Change, PythonState};
use crate::sampler::record::{
    PY_FRAME_ENTRY, RawSample, SAMPLE_PY_READ_ERROR, SAMPLE_PY_TRUNCATED,
};
use crate::symbols::Symbols;

/// Counters of how well stacks could be rebuilt.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildStats {
    /// Samples with a user part whose native unwind reached the outermost frame.
    pub complete: u64,
    /// Samples with a user part whose unwind stopped early.
    pub truncated: u64,
    /// Samples with Python frames.
    pub python: u64,
}

/// An interpreter for the BPF program to walk (`layout`), or to stop
/// walking (`None`).
pub struct Publication {
    pub pid: u32,
    pub mm: u64,
    pub runtime: u64,
    pub layout: Option<Layout>,
}

pub struct StackBuilder {
    pub frames: FrameTable,
    pub processes: ProcessTable,
    /// Splice Python frames into native stacks instead of showing them alone.
    native_mode: bool,
    symbols: Symbols,
    /// Frame of each (file, stated address) and kernel address seen so far:
    /// each address is symbolized once. The flag marks eval-loop frames.
    user_frames: HashMap<(FileId, u64), (FrameId, bool)>,
    kernel_frames: HashMap<u64, FrameId>,
    /// Frame of each (pid, code, first line, instruction).
    py_frames: HashMap<(u32, u64, u32, u64), FrameId>,
    pub stats: BuildStats,
    /// Interpreters found since the last call to `take_publications`.
    publications: Vec<Publication>,
    /// Warnings for the user (one per unusable interpreter).
    pub warnings: Vec<String>,
    native: Vec<NativeFrame>,
    python: Vec<PyFrame>,
}

impl StackBuilder {
    pub fn new(native_mode: bool) -> Self {
        StackBuilder {
            frames: FrameTable::default(),
            processes: ProcessTable::new(),
            native_mode,
            symbols: Symbols::new(),
            user_frames: HashMap::new(),
            kernel_frames: HashMap::new(),
            py_frames: HashMap::new(),
            stats: BuildStats::default(),
            publications: Vec::new(),
            warnings: Vec::new(),
            native: Vec::new(),
            python: Vec::new(),
        }
    }

    pub fn take_publications(&mut self) -> Vec<Publication> {
        std::mem::take(&mut self.publications)
    }

    /// Puts the sample's stack, root first, in `out`.
    pub fn build(&mut self, sample: &RawSample<'_>, out: &mut Vec<FrameId>) {
        out.clear();
        let root = self.process_frame(sample);
        out.push(root);
        if sample.tgid() == 0 {
            self.push_kernel_frames(sample, out);
            return;
        }
        self.check_python(sample);
        self.python_frames(sample);
        if !self.python.is_empty() {
            self.stats.python += 1;
            if !self.native_mode {
                out.extend(self.python.iter().rev().map(|f| f.id));
                return;
            }
        }
        self.native_frames(sample);
        match self.interpreter_file(sample) {
            Some((file, entry_frames)) if !self.python.is_empty() => {
                merge::merge(&self.native, &self.python, file, entry_frames, out);
            }
            _ => out.extend(self.native.iter().map(|f| f.id)),
        }
        self.push_kernel_frames(sample, out);
    }

    fn process_frame(&mut self, sample: &RawSample<'_>) -> FrameId {
        let pid = sample.tgid();
        if pid == 0 {
            return self.frames.intern(FrameKind::Process, "[idle] (0)");
        }
        let proc = self.processes.get(pid, sample.header.mm);
        if let Some(id) = proc.root_frame {
            return id;
        }
        if proc.name.is_empty() {
            // Gone before /proc could name it: the sampled thread's name.
            proc.name = sample.comm();
        }
        let id = self
            .frames
            .intern(FrameKind::Process, &format!("{} ({pid})", proc.name));
        proc.root_frame = Some(id);
        id
    }

    /// Looks for an interpreter in a process seen for the first time (and
    /// validates one found early), queueing what the BPF program must walk
    /// or stop walking.
    fn check_python(&mut self, sample: &RawSample<'_>) {
        let h = sample.header;
        let proc = self.processes.get(h.tgid, h.mm);
        if proc.files.is_empty() {
            return;
        }
        match proc.python.update(h.tgid, &proc.files) {
            Change::Nothing => {}
            Change::Found => {
                if let PythonState::Ready(py) = &proc.python {
                    self.publications.push(Publication {
                        pid: h.tgid,
                        mm: h.mm,
                        runtime: py.interp.runtime,
                        layout: Some(py.interp.layout.clone()),
                    });
                }
            }
            Change::Unusable(why) => self.warnings.push(format!(
                "{} ({}): {why}; showing native stacks only",
                proc.name, h.tgid
            )),
            Change::Withdrawn(why) => {
                self.warnings.push(format!(
                    "{} ({}): {why}; showing native stacks only",
                    proc.name, h.tgid
                ));
                self.publications.push(Publication {
                    pid: h.tgid,
                    mm: h.mm,
                    runtime: 0,
                    layout: None,
                });
            }
        }
    }

    /// The sample's Python frames, innermost first, into `self.python`.
    fn python_frames(&mut self, sample: &RawSample<'_>) {
        self.python.clear();
        if sample.py_frames.is_empty() {
            return;
        }
        let h = sample.header;
        let proc = self.processes.get(h.tgid, h.mm);
        let PythonState::Ready(py) = &mut proc.python else {
            return;
        };
        for f in sample.py_frames {
            let key = (h.tgid, f.code, f.first_line, f.instr);
            let id = match self.py_frames.get(&key) {
                Some(&id) => id,
                None => {
                    let name = py
                        .frame_name(f.code, f.first_line, f.instr)
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let id = self.frames.intern(FrameKind::Python, &name);
                    self.py_frames.insert(key, id);
                    id
                }
            };
            self.python.push(PyFrame {
                id,
                entry: f.flags & PY_FRAME_ENTRY != 0,
                shim: f.shim,
            });
        }
        if h.flags & (SAMPLE_PY_TRUNCATED | SAMPLE_PY_READ_ERROR) != 0 {
            let marker = self
                .frames
                .intern(FrameKind::Truncated, "[python stack truncated]");
            self.python.push(PyFrame {
                id: marker,
                entry: true,
                shim: 0,
            });
        }
    }

    /// The interpreter's file and whether it marks entry frames.
    fn interpreter_file(&mut self, sample: &RawSample<'_>) -> Option<(FileId, bool)> {
        let h = sample.header;
        match &self.processes.get(h.tgid, h.mm).python {
            PythonState::Ready(py) => Some((py.interp.file_id, py.has_entry_frames())),
            _ => None,
        }
    }

    /// The sample's native frames, outermost first, into `self.native`.
    fn native_frames(&mut self, sample: &RawSample<'_>) {
        self.native.clear();
        if !sample.has_user_regs() {
            return;
        }
        let h = sample.header;
        let pid = sample.tgid();
        let mut read = |addr: u64| sample.read_stack_word(addr).ok_or(());
        let proc = self.processes.get(pid, h.mm);
        if proc.files.is_empty() {
            // Its maps could not be read (it exited before we saw it): an
            // unwind without modules would only follow garbage.
            let id = self.frames.intern(FrameKind::Truncated, "[unknown]");
            self.native.push(NativeFrame {
                id,
                file: None,
                eval: false,
                stack: (0, 0),
            });
            return;
        }
        let mut stack = proc.unwinder.unwind(h.ip, h.sp, h.bp, &mut read);
        // An address outside every known file means the maps changed since
        // we read them (a library loaded later): read them again and redo.
        if stack.addrs.iter().any(|&a| proc.file_at(a).is_none()) && self.processes.refresh(pid) {
            let proc = self.processes.get(pid, h.mm);
            stack = proc.unwinder.unwind(h.ip, h.sp, h.bp, &mut read);
        }
        let proc = self.processes.get(pid, h.mm);
        if stack.complete {
            self.stats.complete += 1;
        } else {
            self.stats.truncated += 1;
            let id = self.frames.intern(FrameKind::Truncated, "[truncated]");
            self.native.push(NativeFrame {
                id,
                file: None,
                eval: false,
                stack: (0, 0),
            });
        }
        let last = stack.addrs.len().saturating_sub(1);
        for (i, &addr) in stack.addrs.iter().enumerate().rev() {
            // The outermost frame's stack is open-ended when the unwind
            // stopped there.
            let top = if i == last && !stack.complete {
                u64::MAX
            } else {
                stack.sps[i + 1]
            };
            let range = (stack.sps[i], top);
            let frame = match proc.file_at(addr) {
                Some(mapped) => {
                    let svma = addr.wrapping_sub(mapped.bias);
                    let file = mapped.file.id;
                    let (id, eval) = *self.user_frames.entry((file, svma)).or_insert_with(|| {
                        let name = self.symbols.user(&mapped.file, svma).unwrap_or_else(|| {
                            format!("{}+{svma:#x}", basename(&mapped.file.name))
                        });
                        // The eval loop, including GCC's `.cold` split.
                        let eval = name.starts_with("_PyEval_EvalFrameDefault");
                        (self.frames.intern(FrameKind::Native, &name), eval)
                    });
                    NativeFrame {
                        id,
                        file: Some(file),
                        eval,
                        stack: range,
                    }
                }
                None => NativeFrame {
                    id: self.frames.intern(FrameKind::Native, "[unknown]"),
                    file: None,
                    eval: false,
                    stack: range,
                },
            };
            self.native.push(frame);
        }
    }

    fn push_kernel_frames(&mut self, sample: &RawSample<'_>, out: &mut Vec<FrameId>) {
        for &addr in sample.kernel_stack().iter().rev() {
            let id = match self.kernel_frames.get(&addr) {
                Some(&id) => id,
                None => {
                    let name = match self.symbols.kernel(addr) {
                        Some(sym) => format!("{sym}_[k]"),
                        None => "[unknown]_[k]".to_string(),
                    };
                    let id = self.frames.intern(FrameKind::Kernel, &name);
                    self.kernel_frames.insert(addr, id);
                    id
                }
            };
            out.push(id);
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
