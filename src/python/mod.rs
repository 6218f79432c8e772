//! CPython support: finding the interpreter in a process, the per-version
//! layouts, and naming the frames the BPF program recorded.

pub mod code;
pub mod discover;
pub mod layout;
pub mod layouts;
pub mod linetable;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use code::{CodeInfo, CodeReader};
use discover::{Discovery, Interpreter};
use linetable::LineTableKind;

use crate::process::memory::ProcessMemory;

/// How often a Python process whose runtime is not initialized yet is
/// looked at again.
const RETRY: Duration = Duration::from_millis(20);

/// What is known about the Python side of a process.
pub enum PythonState {
    /// Not looked at yet, or to be looked at again after the instant.
    Pending(Option<Instant>),
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
}

impl PythonState {
    /// Looks for the interpreter if it is time to. Returns the state and,
    /// the first time it is seen, a warning for an unusable interpreter.
    pub fn update(&mut self, pid: u32, files: &[crate::process::MappedFile]) -> Option<String> {
        let PythonState::Pending(when) = self else {
            return None;
        };
        if when.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let Ok(mem) = ProcessMemory::open(pid) else {
            *self = PythonState::NotPython;
            return None;
        };
        match discover::discover(files, &mem) {
            Discovery::Found(interp) => {
                *self = PythonState::Ready(Box::new(PythonProcess {
                    interp,
                    mem,
                    codes: HashMap::new(),
                }));
                None
            }
            Discovery::NotPython => {
                *self = PythonState::NotPython;
                None
            }
            Discovery::NotYet => {
                *self = PythonState::Pending(Some(Instant::now() + RETRY));
                None
            }
            Discovery::Unsupported(why) => {
                *self = PythonState::Unsupported;
                Some(why)
            }
        }
    }
}

impl PythonProcess {
    /// `qualname (file:line)` for a frame, or `None` if the code object
    /// cannot be read.
    pub fn frame_name(&mut self, code: u64, first_line: u32, instr: u64) -> Option<String> {
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
        Some(match line {
            Some(line) => format!("{} ({}:{line})", info.name, info.filename),
            None => format!("{} ({})", info.name, info.filename),
        })
    }

    /// Before 3.11 every eval-loop call runs exactly one Python frame; from
    /// 3.11 on, one call runs frames up to an entry frame.
    pub fn has_entry_frames(&self) -> bool {
        (self.interp.major, self.interp.minor) >= (3, 11)
    }
}
