//! Splicing Python frames into a native stack (`--native`).
//!
//! Each call of the eval loop (`_PyEval_EvalFrameDefault`) on the native
//! stack runs a group of Python frames: exactly one before 3.11, and from
//! 3.11 on the frames up to and including an entry frame. The groups are
//! matched to the eval-loop frames from the innermost out, and each eval
//! frame is replaced by its group. The interpreter's own frames between a
//! Python frame and the next Python frame or C extension are plumbing and
//! are dropped; everything else (C extensions, libc, the process entry) stays.

use super::frame::FrameId;
use crate::process::elf_file::FileId;

#[derive(Clone, Copy, Debug)]
pub struct NativeFrame {
    pub id: FrameId,
    pub file: Option<FileId>,
    /// A frame of the eval loop.
    pub eval: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct PyFrame {
    pub id: FrameId,
    /// The first frame its eval-loop call ran.
    pub entry: bool,
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

    let evals: Vec<usize> = native
        .iter()
        .enumerate()
        .filter(|(_, f)| f.eval)
        .map(|(i, _)| i)
        .collect();
    if evals.is_empty() {
        // The unwind never reached an eval frame (it stopped early): the
        // Python frames are still the truth about where the thread is.
        out.extend(py.iter().rev().map(|f| f.id));
        out.extend(native.iter().map(|f| f.id));
        return;
    }
    // group_of[k]: the groups the k-th eval frame (outermost first) stands for.
    let mut group_of: Vec<Vec<&[PyFrame]>> = vec![Vec::new(); evals.len()];
    for (g, group) in groups.iter().enumerate() {
        // Innermost group to innermost eval frame; surplus outer groups all
        // go to the outermost eval frame.
        let k = evals.len().saturating_sub(1 + g);
        group_of[k].push(group);
    }

    let (first, last) = (evals[0], evals[evals.len() - 1]);
    let mut k = 0;
    for (i, f) in native.iter().enumerate() {
        if f.eval {
            if group_of[k].is_empty() {
                out.push(f.id);
            } else {
                for group in group_of[k].iter().rev() {
                    out.extend(group.iter().rev().map(|p| p.id));
                }
            }
            k += 1;
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
        }
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
        let py = [
            PyFrame {
                id: 13,
                entry: false,
            },
            PyFrame {
                id: 12,
                entry: true,
            },
            PyFrame {
                id: 11,
                entry: true,
            },
        ];
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
        let py = [PyFrame {
            id: 11,
            entry: true,
        }];
        let mut out = vec![];
        merge(&native, &py, PY, true, &mut out);
        assert_eq!(out, vec![100, 11, 101, 102]);
    }

    #[test]
    fn no_eval_frame_keeps_everything() {
        let native = [n(200, EXT, false)];
        let py = [PyFrame {
            id: 11,
            entry: true,
        }];
        let mut out = vec![];
        merge(&native, &py, PY, true, &mut out);
        assert_eq!(out, vec![11, 200]);
    }
}
