//! Splicing Python frames into a native stack (`--native`).
//!
//! Each call of the eval loop on the native stack runs a group of Python
//! frames: exactly one before 3.11, and from 3.11 on the frames up to and
//! including an entry frame. Each group replaces the native frame of its
//! eval-loop call, found in one of two ways:
//! - 3.12+: the entry frame's shim is a local variable of its eval-loop
//!   call, so the call is the native frame whose stack holds the shim's
//!   address. This works when the eval loop has no symbol (Debian's 3.14 and
//!   3.15 run Python code in stripped tail-call handler functions).
//! - before: eval-loop frames are recognized by name
//!   (`_PyEval_EvalFrameDefault`) and matched to groups from the innermost out.
//!
//! The interpreter's own frames between a
//! Python frame and the next Python frame or C extension are plumbing and
//! are dropped; everything else (C extensions, libc, the process entry) stays.

use super::frame::FrameId;
use crate::process::elf_file::FileId;

#[derive(Clone, Copy, Debug)]
pub struct NativeFrame {
    pub id: FrameId,
    pub file: Option<FileId>,
    /// A frame of the eval loop, by its name.
    pub eval: bool,
    /// The frame's own stack: from its stack pointer up to its caller's.
    pub stack: (u64, u64),
}

#[derive(Clone, Copy, Debug)]
pub struct PyFrame {
    pub id: FrameId,
    /// The first frame its eval-loop call ran.
    pub entry: bool,
    /// The address of the shim frame under it (3.12+ entry frames), or 0.
    pub shim: u64,
}

/// `native` is outermost first, `py` innermost first; the merged stack is
/// appended to `out`, outermost first.
pub fn merge(
    native: &[NativeFrame],
    py: &[PyFrame],
    interpreter: FileId,
    entry_frames: bool,
    out: &mut Vec<FrameId>,
) {
    // Groups of Python frames, innermost group first, each innermost first.
    let mut groups: Vec<&[PyFrame]> = Vec::new();
    let mut start = 0;
    for (i, f) in py.iter().enumerate() {
        if !entry_frames || f.entry {
            groups.push(&py[start..=i]);
            start = i + 1;
        }
    }
    if start < py.len() {
        groups.push(&py[start..]);
    }

    // group_of[i]: the groups native frame i stands for, innermost first.
    let mut group_of: Vec<Vec<&[PyFrame]>> = vec![Vec::new(); native.len()];
    let shims = groups.iter().any(|g| g.last().is_some_and(|f| f.shim != 0));
    let mut evals: Vec<usize> = Vec::new();
    if shims {
        let mut unplaced = Vec::new();
        for group in &groups {
            let shim = group.last().map_or(0, |f| f.shim);
            match native
                .iter()
                .position(|n| n.stack.0 <= shim && shim < n.stack.1)
            {
                Some(i) => {
                    group_of[i].push(group);
                    evals.push(i);
                }
                None => unplaced.push(*group),
            }
        }
        // Groups whose shim is not on the C stack we have (an unwind cut
        // short) belong outside the outermost placed one.
        if let Some(&outer) = evals.iter().min() {
            group_of[outer].extend(unplaced);
        }
        evals.sort_unstable();
        evals.dedup();
    } else {
        evals = native
            .iter()
            .enumerate()
            .filter(|(_, f)| f.eval)
            .map(|(i, _)| i)
            .collect();
        for (g, group) in groups.iter().enumerate() {
            // Innermost group to innermost eval frame; surplus outer groups
            // all go to the outermost eval frame.
            if let Some(&i) = evals.get(evals.len().saturating_sub(1 + g)) {
                group_of[i].push(group);
            }
        }
    }
    if evals.is_empty() {
        // The unwind never reached an eval frame (it stopped early): the
        // Python frames are still the truth about where the thread is.
        out.extend(py.iter().rev().map(|f| f.id));
        out.extend(native.iter().map(|f| f.id));
        return;
    }
    let (first, last) = (evals[0], evals[evals.len() - 1]);
    for (i, f) in native.iter().enumerate() {
        if evals.contains(&i) {
            if group_of[i].is_empty() {
                out.push(f.id);
            } else {
                for group in group_of[i].iter().rev() {
                    out.extend(group.iter().rev().map(|p| p.id));
                }
            }
            continue;
        }
        let plumbing = f.file == Some(interpreter)
            && i > first
            && (i < last || native[i..].iter().any(|n| n.file != Some(interpreter)));
        if !plumbing {
            out.push(f.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: FileId = 7;
    const EXT: FileId = 9;

    fn n(id: FrameId, file: FileId, eval: bool) -> NativeFrame {
        NativeFrame {
            id,
            file: Some(file),
            eval,
            stack: (0, 0),
        }
    }

    fn p(id: FrameId, entry: bool) -> PyFrame {
        PyFrame { id, entry, shim: 0 }
    }

    #[test]
    fn splices_groups_at_eval_frames() {
        // main(100) -> eval(1) -> call(101) -> eval(2) -> ext(200) -> leaf(201)
        let native = [
            n(100, PY, false),
            n(1, PY, true),
            n(101, PY, false),
            n(2, PY, true),
            n(200, EXT, false),
            n(201, EXT, false),
        ];
        // innermost first: f3 (inner call), f2 entry, f1 entry
        let py = [p(13, false), p(12, true), p(11, true)];
        let mut out = vec![];
        merge(&native, &py, PY, true, &mut out);
        assert_eq!(out, vec![100, 11, 12, 13, 200, 201]);

        // Before 3.11: one frame per eval call; surplus groups go outermost.
        let mut out = vec![];
        merge(&native, &py, PY, false, &mut out);
        assert_eq!(out, vec![100, 11, 12, 13, 200, 201]);
    }

    #[test]
    fn interpreter_work_at_the_leaf_is_kept() {
        let native = [
            n(100, PY, false),
            n(1, PY, true),
            n(101, PY, false),
            n(102, PY, false),
        ];
        let mut out = vec![];
        merge(&native, &[p(11, true)], PY, true, &mut out);
        assert_eq!(out, vec![100, 11, 101, 102]);
    }

    #[test]
    fn shims_place_groups_without_names() {
        // Unnamed handlers (300, 301) hold the shims; stacks grow down, so
        // outer frames have higher addresses.
        let s = |id, lo, hi| NativeFrame {
            id,
            file: Some(PY),
            eval: false,
            stack: (lo, hi),
        };
        let native = [
            s(100, 0x900, 0x1000),
            s(300, 0x700, 0x900),
            s(101, 0x600, 0x700),
            s(301, 0x400, 0x600),
            n(200, EXT, false),
        ];
        let py = [
            PyFrame {
                id: 13,
                entry: false,
                shim: 0,
            },
            PyFrame {
                id: 12,
                entry: true,
                shim: 0x480,
            },
            PyFrame {
                id: 11,
                entry: true,
                shim: 0x780,
            },
        ];
        let mut out = vec![];
        merge(&native, &py, PY, true, &mut out);
        assert_eq!(out, vec![100, 11, 12, 13, 200]);
    }

    #[test]
    fn no_eval_frame_keeps_everything() {
        let mut out = vec![];
        merge(&[n(200, EXT, false)], &[p(11, true)], PY, true, &mut out);
        assert_eq!(out, vec![11, 200]);
    }
}
