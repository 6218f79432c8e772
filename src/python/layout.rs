//! Where CPython keeps what the profiler reads, for one interpreter.
//!
//! Per-version differences are data, not code: for 3.9 to 3.12 a table per
//! minor version (data/cpython-layouts.toml, compiled in); for 3.13 and later
//! the interpreter describes itself in `_Py_DebugOffsets` at the start of
//! `_PyRuntime`, and the same table says where in that struct each offset is.
//! Either way the result is one [`Layout`], read by one code path.

use serde::Deserialize;

use super::linetable::LineTableKind;

/// Offsets (bytes) and encodings of one CPython version; `None` where the
/// version has no such field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Layout {
    // Finding the current frame of a thread.
    pub runtime_interpreters_head: u64,
    pub interp_next: u64,
    pub interp_threads_head: u64,
    pub tstate_next: u64,
    pub tstate_interp: u64,
    pub tstate_thread_id: u64,
    pub tstate_native_thread_id: Option<u64>,
    /// The current frame (3.9, 3.10, 3.13+) or the `_PyCFrame` holding it (3.11, 3.12).
    pub tstate_frame: u64,
    pub cframe_current_frame: Option<u64>,
    // Frames.
    pub frame_previous: u64,
    pub frame_code: u64,
    /// `f_lasti` (an int) before 3.11, else `prev_instr` / `instr_ptr` (a pointer).
    pub frame_instr: u64,
    pub instr_is_pointer: bool,
    /// 3.11's `is_entry`.
    pub frame_is_entry: Option<u64>,
    /// 3.12+'s `owner`, and the first owner value that is not a Python frame
    /// (FRAME_OWNED_BY_CSTACK).
    pub frame_owner: Option<u64>,
    pub owner_cstack: Option<u8>,
    // Code objects.
    pub code_filename: u64,
    pub code_name: u64,
    pub code_qualname: Option<u64>,
    pub code_firstlineno: u64,
    pub code_linetable: u64,
    pub linetable: LineTableKind,
    /// Where the bytecode starts inside the code object (3.11+), for turning
    /// an instruction pointer into an offset.
    pub code_adaptive: Option<u64>,
    // Strings.
    pub unicode_state: u64,
    pub unicode_length: u64,
    /// Where the characters of a compact ASCII string start.
    pub unicode_ascii_data: u64,
    /// Where the characters of a compact non-ASCII string start.
    pub unicode_compact_data: u64,
    /// Bit positions in `state`.
    pub unicode_kind_shift: u32,
    pub unicode_compact_bit: u32,
    pub unicode_ascii_bit: u32,
    pub bytes_size: u64,
    pub bytes_data: u64,
}

impl Layout {
    /// Checks the offsets are small enough for the BPF side (u16) and that
    /// pointer fields lie inside plausible structs, so that a corrupt
    /// `_Py_DebugOffsets` is refused instead of walked.
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            (
                "runtime_interpreters_head",
                self.runtime_interpreters_head,
                0x10000,
            ),
            ("interp_next", self.interp_next, 0x10000),
            ("interp_threads_head", self.interp_threads_head, 0x10000),
            ("tstate_next", self.tstate_next, 0x1000),
            ("tstate_thread_id", self.tstate_thread_id, 0x1000),
            ("tstate_frame", self.tstate_frame, 0x1000),
            ("frame_previous", self.frame_previous, 0x200),
            ("frame_code", self.frame_code, 0x200),
            ("frame_instr", self.frame_instr, 0x200),
            ("code_firstlineno", self.code_firstlineno, 0x400),
            ("code_filename", self.code_filename, 0x400),
            ("code_name", self.code_name, 0x400),
            ("code_linetable", self.code_linetable, 0x400),
        ];
        for (name, value, max) in fields {
            if value >= max {
                return Err(format!("offset {name} = {value} is implausible"));
            }
        }
        Ok(())
    }
}
