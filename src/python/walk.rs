//! Walking every thread's Python frames from userspace, through
//! /proc/PID/mem: what `pystrobe dump` shows. The BPF program walks only the
//! thread it samples (bpf/python.h); this is the same walk over the same
//! layout, for all threads at once, with larger bounds since it is not in
//! the kernel. Everything read is hostile: every loop is bounded and a
//! failed read ends that thread's walk with `truncated`.

use super::layout::Layout;
use crate::process::memory::ProcessMemory;

const MAX_INTERPRETERS: usize = 64;
const MAX_THREADS: usize = 4096;
const MAX_FRAMES: usize = 1024;

/// One frame as the BPF program would have recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkedFrame {
    pub code: u64,
    pub instr: u64,
    pub first_line: u32,
    /// The first frame its eval-loop call runs (3.11+).
    pub entry: bool,
    /// 3.12+: the shim frame under an entry frame (see bpf/sample.h).
    pub shim: u64,
}

/// A thread state and its frames, innermost first.
#[derive(Clone, Debug, Default)]
pub struct WalkedThread {
    /// pthread_self() of the thread: its fs base on x86_64.
    pub thread_id: u64,
    /// Its kernel thread ID, where the interpreter records it (3.11+).
    pub native_id: Option<u32>,
    pub frames: Vec<WalkedFrame>,
    /// The chain could not be read to its end, or was longer than MAX_FRAMES.
    pub truncated: bool,
}

/// Every thread state of every interpreter of the runtime at `runtime`.
pub fn threads(l: &Layout, runtime: u64, mem: &ProcessMemory) -> Vec<WalkedThread> {
    let mut out = Vec::new();
    let mut interp = mem
        .read_u64(runtime + l.runtime_interpreters_head)
        .unwrap_or(0);
    for _ in 0..MAX_INTERPRETERS {
        if interp == 0 {
            break;
        }
        let mut ts = mem.read_u64(interp + l.interp_threads_head).unwrap_or(0);
        for _ in 0..MAX_THREADS {
            if ts == 0 || out.len() >= MAX_THREADS {
                break;
            }
            out.push(thread(l, ts, mem));
            ts = mem.read_u64(ts + l.tstate_next).unwrap_or(0);
        }
        interp = mem.read_u64(interp + l.interp_next).unwrap_or(0);
    }
    out
}

fn thread(l: &Layout, ts: u64, mem: &ProcessMemory) -> WalkedThread {
    let mut t = WalkedThread {
        thread_id: mem.read_u64(ts + l.tstate_thread_id).unwrap_or(0),
        native_id: l
            .tstate_native_thread_id
            .and_then(|off| mem.read_u64(ts + off).ok())
            .and_then(|id| u32::try_from(id).ok())
            .filter(|&id| id != 0),
        ..WalkedThread::default()
    };
    let mut frame = mem.read_u64(ts + l.tstate_frame).unwrap_or(0);
    if let (Some(off), true) = (l.cframe_current_frame, frame != 0) {
        frame = mem.read_u64(frame + off).unwrap_or(0);
    }
    for _ in 0..MAX_FRAMES + 64 {
        if frame == 0 {
            return t;
        }
        if let (Some(owner_off), Some(cstack)) = (l.frame_owner, l.owner_cstack) {
            let mut owner = [0u8; 1];
            if mem.read_exact(frame + owner_off, &mut owner).is_err() {
                t.truncated = true;
                return t;
            }
            if owner[0] >= cstack {
                // A shim pushed where C code entered the eval loop: the
                // Python frame above it is an entry frame.
                if let Some(above) = t.frames.last_mut() {
                    above.entry = true;
                    if above.shim == 0 {
                        above.shim = frame;
                    }
                }
                frame = mem.read_u64(frame + l.frame_previous).unwrap_or(0);
                continue;
            }
        }
        if t.frames.len() >= MAX_FRAMES {
            t.truncated = true;
            return t;
        }
        // Pointers are 8-byte aligned: clearing the low bits removes 3.14's
        // _PyStackRef tags (as the BPF program's code_mask does).
        let code = mem.read_u64(frame + l.frame_code).unwrap_or(0) & !7;
        let instr = if l.instr_is_pointer {
            mem.read_u64(frame + l.frame_instr).unwrap_or(0)
        } else {
            mem.read_i32(frame + l.frame_instr).unwrap_or(0) as i64 as u64
        };
        let entry = l.frame_is_entry.is_some_and(|off| {
            let mut b = [0u8; 1];
            mem.read_exact(frame + off, &mut b).is_ok() && b[0] != 0
        });
        let first_line = if code != 0 {
            mem.read_u32(code + l.code_firstlineno).unwrap_or(0)
        } else {
            0
        };
        t.frames.push(WalkedFrame {
            code,
            instr,
            first_line,
            entry,
            shim: 0,
        });
        frame = match mem.read_u64(frame + l.frame_previous) {
            Ok(f) => f,
            Err(_) => {
                t.truncated = true;
                return t;
            }
        };
    }
    t.truncated = true;
    t
}
