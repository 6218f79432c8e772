//! Turns one raw sample into a stack of interned frames, root first.
//!
//! For a Python process the default stack is its Python frames; with
//! `native` the native stack with the Python frames spliced in (merge.rs),
//! then kernel frames. Other processes get native then kernel frames.

use std::collections::HashMap;

use super::frame::{FrameId, FrameKind, FrameTable};
use super::merge::{self, NativeFrame, PyFrame};
use super::naming::Naming;
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

/// What the stacks show.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    /// Splice Python frames into native stacks instead of showing them alone.
    pub native: bool,
    /// Add a frame per thread under the process frame.
    pub threads: bool,
    /// How Python frames are named.
    pub naming: Naming,
}

pub struct StackBuilder {
    pub frames: FrameTable,
    pub processes: ProcessTable,
    /// Splice Python frames into native stacks instead of showing them alone.
    native_mode: bool,
    naming: Naming,
    symbols: Symbols,
    /// Frame of each (file, stated address) and kernel address seen so far:
    /// each address is symbolized once. The flag marks eval-loop frames.
    user_frames: HashMap<(FileId, u64), (FrameId, bool)>,
    kernel_frames: HashMap<u64, FrameId>,
    /// The start time of the process each root label was given to: a
    /// reused PID gets a label of its own.
    labels: HashMap<String, u64>,
    /// Add a frame per thread under the process frame.
    threads: bool,
    pub stats: BuildStats,
    /// Interpreters found since the last call to `take_publications`.
    publications: Vec<Publication>,
    /// Warnings for the user (one per unusable interpreter).
    pub warnings: Vec<String>,
    native: Vec<NativeFrame>,
    python: Vec<PyFrame>,
}

impl StackBuilder {
    pub fn new(opts: BuildOptions) -> Self {
        StackBuilder {
            frames: FrameTable::default(),
            processes: ProcessTable::new(),
            native_mode: opts.native,
            naming: opts.naming,
            symbols: Symbols::new(),
            user_frames: HashMap::new(),
            kernel_frames: HashMap::new(),
            labels: HashMap::new(),
            threads: opts.threads,
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
        if self.threads && sample.tgid() != 0 {
            let thread = self.thread_frame(sample);
            out.push(thread);
        }
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
        let h = sample.header;
        if h.tgid == 0 {
            return self.frames.intern(FrameKind::Process, "[idle] (0)");
        }
        let root = self.processes.get(h.tgid, h.start_ns, h.mm).root_frame;
        // Once per sample (this is its first lookup): one clock read, not
        // one per lookup.
        self.processes.touch(h.tgid);
        if let Some(id) = root {
            return id;
        }
        let proc = self.processes.get(h.tgid, h.start_ns, h.mm);
        if proc.name.is_empty() {
            // Gone before /proc could name it: the sampled thread's name.
            proc.name = sample.comm();
        }
        let ns = proc.ns_pid.map(|n| format!(", ns {n}")).unwrap_or_default();
        // A PID reused by another process during the recording: the same
        // name and PID must not merge two processes' stacks.
        let mut label = format!("{} ({}{ns})", proc.name, h.tgid);
        let mut n = 1;
        while self.labels.get(&label).is_some_and(|&s| s != h.start_ns) {
            n += 1;
            label = format!("{} ({} #{n}{ns})", proc.name, h.tgid);
        }
        self.labels.insert(label.clone(), h.start_ns);
        let id = self.frames.intern(FrameKind::Process, &label);
        self.processes.get(h.tgid, h.start_ns, h.mm).root_frame = Some(id);
        id
    }

    /// `thread name (tid)`: the name the thread has now (Python 3.14+ gives
    /// its threads their Python names).
    fn thread_frame(&mut self, sample: &RawSample<'_>) -> FrameId {
        let h = sample.header;
        let comm: [u8; 16] = h.comm.map(|c| c as u8);
        let proc = self.processes.get(h.tgid, h.start_ns, h.mm);
        if let Some(&id) = proc.thread_frames.get(&(h.tid, comm)) {
            return id;
        }
        let id = self
            .frames
            .intern(FrameKind::Thread, &format!("{} ({})", sample.comm(), h.tid));
        self.processes
            .get(h.tgid, h.start_ns, h.mm)
            .thread_frames
            .insert((h.tid, comm), id);
        id
    }

    /// Releases what is kept for a process that exited.
    pub fn release(&mut self, pid: u32, start_ns: u64) {
        self.processes.release(pid, start_ns);
    }

    /// Looks for an interpreter in a process seen for the first time (and
    /// validates one found early), queueing what the BPF program must walk
    /// or stop walking.
    fn check_python(&mut self, sample: &RawSample<'_>) {
        let h = sample.header;
        self.check_python_of(h.tgid, h.start_ns, h.mm, false);
    }

    /// Prepares a process that was just forked or exec'd, before its first
    /// sample: its maps, and its interpreter if one can be found already.
    pub fn prepare(&mut self, pid: u32, start_ns: u64, mm: u64) {
        if pid != 0 && mm != 0 {
            // Whatever was made of it before the event is stale.
            self.processes.forget(pid);
            self.check_python_of(pid, start_ns, mm, true);
        }
    }

    /// Looks for the interpreter of a target that was running before the
    /// recording started, so that it is walked from its first sample. Its
    /// address space is not known here: the BPF program takes the layout
    /// for any, until the first sample replaces it with one for the exact
    /// address space (an exec in between removes it).
    pub fn prepare_running(&mut self, pid: u32) {
        let files = self.processes.files_of(pid);
        let mut state = PythonState::Pending;
        if let Change::Found = state.update_early(pid, &files) {
            if let PythonState::Ready(py) = &state {
                self.publications.push(Publication {
                    pid,
                    mm: 0,
                    runtime: py.interp.runtime,
                    layout: Some(py.interp.layout.clone()),
                });
            }
        }
    }

    /// The interpreter of a prepared process: its version and every
    /// thread's Python frames now. `None` for a process without one.
    pub fn python_threads(
        &mut self,
        pid: u32,
        start_ns: u64,
        mm: u64,
    ) -> Option<((u8, u8), Vec<crate::python::walk::WalkedThread>)> {
        match &self.processes.get(pid, start_ns, mm).python {
            PythonState::Ready(py) => Some(((py.interp.major, py.interp.minor), py.threads())),
            _ => None,
        }
    }

    fn check_python_of(&mut self, pid: u32, start_ns: u64, mm: u64, early: bool) {
        let proc = self.processes.get(pid, start_ns, mm);
        if !early && proc.maps_early && matches!(proc.python, PythonState::Pending) {
            // Looked at as it exec'd: the libraries are there by now.
            self.processes.refresh_now(pid);
        }
        let proc = self.processes.get(pid, start_ns, mm);
        if proc.files.is_empty() {
            return;
        }
        let change = if early {
            let change = proc.python.update_early(pid, &proc.files);
            proc.maps_early = matches!(proc.python, PythonState::Pending);
            change
        } else {
            proc.python.update(pid, &proc.files)
        };
        match change {
            Change::Nothing => {}
            Change::Found => {
                if let PythonState::Ready(py) = &proc.python {
                    self.publications.push(Publication {
                        pid,
                        mm,
                        runtime: py.interp.runtime,
                        layout: Some(py.interp.layout.clone()),
                    });
                }
            }
            Change::Unusable(why) => self.warnings.push(format!(
                "{} ({pid}): {why}; showing native stacks only",
                proc.name
            )),
            Change::Withdrawn(why) => {
                self.warnings.push(format!(
                    "{} ({pid}): {why}; showing native stacks only",
                    proc.name
                ));
                self.publications.push(Publication {
                    pid,
                    mm,
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
        let proc = self.processes.get(h.tgid, h.start_ns, h.mm);
        let PythonState::Ready(py) = &mut proc.python else {
            return;
        };
        for f in sample.py_frames {
            let key = (f.code, f.first_line, f.instr);
            let id = match proc.py_frame_ids.get(&key) {
                Some(&id) => id,
                None => {
                    let id = match py.frame_source(f.code, f.first_line, f.instr) {
                        Some(src) => {
                            let (name, src) = self.naming.python(&src, proc.cwd.as_deref());
                            self.frames.intern_python(&name, src)
                        }
                        None => self.frames.intern(FrameKind::Python, "<unknown>"),
                    };
                    proc.py_frame_ids.insert(key, id);
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
        match &self.processes.get(h.tgid, h.start_ns, h.mm).python {
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
        if self.processes.get(pid, h.start_ns, h.mm).files.is_empty() {
            // Read in the middle of an exec, say: try again (at most every
            // 100 ms).
            self.processes.refresh(pid);
        }
        let proc = self.processes.get(pid, h.start_ns, h.mm);
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
            let proc = self.processes.get(pid, h.start_ns, h.mm);
            stack = proc.unwinder.unwind(h.ip, h.sp, h.bp, &mut read);
        }
        let proc = self.processes.get(pid, h.start_ns, h.mm);
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
