//! The one frame model every stage and output shares.

use std::collections::HashMap;

/// Index of a frame in the [`FrameTable`].
pub type FrameId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// The root of a stack: a process.
    Process,
    /// A thread, under its process (--threads).
    Thread,
    /// Native code in user space.
    Native,
    /// Kernel code.
    Kernel,
    /// A Python function.
    Python,
    /// A marker: the stack could not be followed further.
    Truncated,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub kind: FrameKind,
    /// The display name, already made safe for every output: no control
    /// characters and no `;` (the folded format's separator).
    pub name: String,
    /// Where a Python frame is in its source, for formats that keep
    /// functions, files and lines apart (pprof, speedscope).
    pub source: Option<Source>,
}

/// A Python frame's function and position, each field sanitized like names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// The qualified name (`Class.method`; the plain name before 3.11).
    pub function: String,
    /// The file as the code object names it (a full path, usually).
    pub file: String,
    /// The line being run; 0 when unknown or not shown (--nolineno).
    pub line: u32,
    /// The function's first line.
    pub first_line: u32,
}

/// Interns frames so that a stack is a short list of integers.
#[derive(Default)]
pub struct FrameTable {
    frames: Vec<Frame>,
    ids: HashMap<Frame, FrameId>,
}

impl FrameTable {
    pub fn intern(&mut self, kind: FrameKind, name: &str) -> FrameId {
        self.intern_frame(Frame {
            kind,
            name: sanitize(name),
            source: None,
        })
    }

    /// A Python frame shown as `name`, at `source`.
    pub fn intern_python(&mut self, name: &str, source: Source) -> FrameId {
        self.intern_frame(Frame {
            kind: FrameKind::Python,
            name: sanitize(name),
            source: Some(Source {
                function: sanitize(&source.function),
                file: sanitize(&source.file),
                ..source
            }),
        })
    }

    fn intern_frame(&mut self, frame: Frame) -> FrameId {
        if let Some(&id) = self.ids.get(&frame) {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(frame.clone());
        self.ids.insert(frame, id);
        id
    }

    pub fn get(&self, id: FrameId) -> &Frame {
        &self.frames[id as usize]
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Names come from other processes' memory and files: hostile data. Control
/// characters become `?` and the folded separator `;` becomes `:`; length is
/// capped so one frame cannot blow up an output file.
pub fn sanitize(name: &str) -> String {
    const MAX: usize = 512;
    let mut out: String = name
        .chars()
        .take(MAX)
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if name.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_and_sanitizing() {
        let mut t = FrameTable::default();
        let a = t.intern(FrameKind::Native, "main");
        assert_eq!(t.intern(FrameKind::Native, "main"), a);
        assert_ne!(t.intern(FrameKind::Kernel, "main"), a);
        let b = t.intern(FrameKind::Native, "a;b\nc\u{7}");
        assert_eq!(t.get(b).name, "a:b?c?");
        assert_eq!(sanitize(&"x".repeat(600)).chars().count(), 513);
    }
}
