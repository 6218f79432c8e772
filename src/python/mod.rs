//! CPython support: finding the interpreter in a process, the per-version
//! layouts, and naming the frames the BPF program recorded.

pub mod code;
pub mod discover;
pub mod layout;
pub mod layouts;
pub mod linetable;
pub mod walk;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use code::{CodeInfo, CodeReader};
use discover::{Discovery, Interpreter};
use linetable::LineTableKind;

use crate::process::memory::ProcessMemory;
use crate::stack::frame::Source;

/// How often a Python process whose runtime is not initialized yet is
/// checked again.
const RETRY: Duration = Duration::from_millis(20);

/// What is known about the Python side of a process.
pub enum PythonState {
    /// Not looked at yet.
    Pending,
    NotPython,
    /// Python, but it cannot be walked (the warning was given).
    Unsupported,
    Ready(Box<PythonProcess>),
}

/// A process whose interpreter pystrobe can walk.
pub struct PythonProcess {
    pub interp: Box<Interpreter>,
    mem: ProcessMemory,
    /// Code objects read so far, by (address, co_firstlineno as the BPF
    /// program saw it): an address freed and reused for another code
    /// object is a different key, so it is not misnamed.
    codes: HashMap<(u64, u32), Option<CodeInfo>>,
    /// The layout was checked against the initialized runtime; until then,
    /// when to check again.
    validated: bool,
    next_check: Instant,
}

/// What an update found, for the caller to act on.
pub enum Change {
    Nothing,
    /// An interpreter to walk.
    Found,
    /// Python, but it cannot be walked: one warning.
    Unusable(String),
    /// The interpreter being walked failed validation: stop walking it.
    Withdrawn(String),
}

impl PythonState {
    /// Looks for the interpreter on first sight, and validates a layout
    /// published before the runtime was initialized once it is.
    pub fn update(&mut self, pid: u32, files: &[crate::process::MappedFile]) -> Change {
        match self {
            PythonState::Pending => self.discover(pid, files),
            PythonState::Ready(py) if !py.validated && Instant::now() >= py.next_check => {
                match discover::validate(&py.interp.layout, py.interp.runtime, &py.mem) {
                    Ok(true) => {
                        py.validated = true;
                        Change::Nothing
                    }
                    Ok(false) => {
                        py.next_check = Instant::now() + RETRY;
                        Change::Nothing
                    }
                    Err(why) => {
                        let why = format!("Python {}.{}: {why}", py.interp.major, py.interp.minor);
                        *self = PythonState::Unsupported;
                        Change::Withdrawn(why)
                    }
                }
            }
            _ => Change::Nothing,
        }
    }

    /// Looks for the interpreter of a process that just started (forked or
    /// exec'd), before its first sample: a found one is walked from the
    /// start. Anything else is left for the first sample to decide, since
    /// a shared libpython is not mapped yet at exec.
    pub fn update_early(&mut self, pid: u32, files: &[crate::process::MappedFile]) -> Change {
        if !matches!(self, PythonState::Pending) {
            return Change::Nothing;
        }
        match self.discover(pid, files) {
            Change::Found => Change::Found,
            _ => {
                *self = PythonState::Pending;
                Change::Nothing
            }
        }
    }

    fn discover(&mut self, pid: u32, files: &[crate::process::MappedFile]) -> Change {
        let Ok(mem) = ProcessMemory::open(pid) else {
            *self = PythonState::NotPython;
            return Change::Nothing;
        };
        match discover::discover(files, &mem) {
            Discovery::Found { interp, validated } => {
                *self = PythonState::Ready(Box::new(PythonProcess {
                    interp,
                    mem,
                    codes: HashMap::new(),
                    validated,
                    next_check: Instant::now() + RETRY,
                }));
                Change::Found
            }
            Discovery::NotPython => {
                *self = PythonState::NotPython;
                Change::Nothing
            }
            Discovery::Unsupported(why) => {
                *self = PythonState::Unsupported;
                Change::Unusable(why)
            }
        }
    }
}

impl PythonProcess {
    /// Function, file and line of a frame, or `None` if the code object
    /// cannot be read.
    pub fn frame_source(&mut self, code: u64, first_line: u32, instr: u64) -> Option<Source> {
        let layout = &self.interp.layout;
        let info = self
            .codes
            .entry((code, first_line))
            .or_insert_with(|| {
                CodeReader {
                    mem: &self.mem,
                    layout,
                    types: self.interp.types,
                }
                .read(code)
            })
            .as_ref()?;
        let offset = match layout.linetable {
            // f_lasti: a byte offset in 3.9, an instruction index in 3.10.
            LineTableKind::Lnotab => instr as i64,
            LineTableKind::Linetable310 => (instr as i64).saturating_mul(2),
            // An instruction pointer into the code object's bytecode.
            LineTableKind::Locations => {
                let start = code.wrapping_add(layout.code_adaptive.unwrap_or(0));
                (instr.wrapping_sub(start) as i64) / 2
            }
        };
        let line = linetable::line_for(layout.linetable, &info.linetable, info.first_line, offset);
        Some(Source {
            function: info.name.clone(),
            file: info.filename.clone(),
            line: line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
            first_line: u32::try_from(info.first_line).unwrap_or(0),
        })
    }

    /// Every thread's Python frames, read now (see walk.rs).
    pub fn threads(&self) -> Vec<walk::WalkedThread> {
        walk::threads(&self.interp.layout, self.interp.runtime, &self.mem)
    }

    /// Before 3.11 every eval-loop call runs exactly one Python frame; from
    /// 3.11 on, one call runs frames up to an entry frame.
    pub fn has_entry_frames(&self) -> bool {
        (self.interp.major, self.interp.minor) >= (3, 11)
    }
}
