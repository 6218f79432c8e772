//! Aggregation: how many samples each distinct stack received, and, for
//! formats that show time (chrometrace), when each sample was taken.

use std::collections::HashMap;

use crate::stack::{FrameId, FrameTable};

/// Index of a distinct stack in a [`Profile`].
pub type StackId = u32;

/// One sample on the timeline.
#[derive(Clone, Copy, Debug)]
pub struct TimedSample {
    /// CLOCK_MONOTONIC, ns.
    pub time_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub stack: StackId,
}

#[derive(Default)]
pub struct Profile {
    ids: HashMap<Box<[FrameId]>, StackId>,
    stacks: Vec<Box<[FrameId]>>,
    counts: Vec<u64>,
    pub total: u64,
    /// Every sample in order, when asked for (`with_timeline`): a few bytes
    /// per sample that only time-based formats need.
    pub timeline: Option<Vec<TimedSample>>,
}

impl Profile {
    pub fn with_timeline() -> Profile {
        Profile {
            timeline: Some(Vec::new()),
            ..Profile::default()
        }
    }

    /// Counts `count` samples of `stack`; returns its id.
    pub fn add(&mut self, stack: &[FrameId], count: u64) -> StackId {
        self.total += count;
        let id = match self.ids.get(stack) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as StackId;
                self.stacks.push(stack.into());
                self.counts.push(0);
                self.ids.insert(stack.into(), id);
                id
            }
        };
        self.counts[id as usize] += count;
        id
    }

    /// Counts one sample taken at `time_ns` on thread `tid` of `pid`.
    pub fn add_sample(&mut self, stack: &[FrameId], time_ns: u64, pid: u32, tid: u32) {
        let id = self.add(stack, 1);
        if let Some(t) = &mut self.timeline {
            t.push(TimedSample {
                time_ns,
                pid,
                tid,
                stack: id,
            });
        }
    }

    pub fn stack(&self, id: StackId) -> &[FrameId] {
        &self.stacks[id as usize]
    }

    /// Distinct stacks held.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[FrameId], u64)> {
        self.stacks
            .iter()
            .zip(&self.counts)
            .map(|(s, &c)| (&**s, c))
    }

    /// Stacks as `frame;frame;frame` strings with their counts, merged by
    /// name (two addresses in one function are one frame here) and sorted,
    /// which is the order inferno wants.
    pub fn folded_lines(&self, frames: &FrameTable) -> Vec<(String, u64)> {
        let mut merged: HashMap<String, u64> = HashMap::with_capacity(self.stacks.len());
        for (stack, count) in self.iter() {
            let mut line = String::new();
            for (i, &id) in stack.iter().enumerate() {
                if i > 0 {
                    line.push(';');
                }
                line.push_str(&frames.get(id).name);
            }
            *merged.entry(line).or_default() += count;
        }
        let mut lines: Vec<_> = merged.into_iter().collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::FrameKind;

    #[test]
    fn merges_by_name() {
        let mut t = FrameTable::default();
        let p = t.intern(FrameKind::Process, "app (1)");
        let a = t.intern(FrameKind::Native, "f");
        let b = t.intern(FrameKind::Kernel, "f");
        let mut prof = Profile::default();
        prof.add(&[p, a], 2);
        prof.add(&[p, a], 1);
        prof.add(&[p, b], 4);
        assert_eq!(prof.total, 7);
        assert_eq!(prof.len(), 2);
        // The same name in two kinds is one line: the name is what users see.
        assert_eq!(prof.folded_lines(&t), vec![("app (1);f".to_string(), 7)]);
    }

    #[test]
    fn timeline_refers_to_stacks() {
        let mut t = FrameTable::default();
        let p = t.intern(FrameKind::Process, "app (1)");
        let a = t.intern(FrameKind::Native, "f");
        let mut prof = Profile::with_timeline();
        prof.add_sample(&[p, a], 10, 1, 2);
        prof.add_sample(&[p], 20, 1, 3);
        prof.add_sample(&[p, a], 30, 1, 2);
        let tl = prof.timeline.as_ref().unwrap();
        assert_eq!(tl.len(), 3);
        assert_eq!(tl[0].stack, tl[2].stack);
        assert_eq!(prof.stack(tl[1].stack), &[p]);
        assert_eq!(Profile::default().timeline.map(|t| t.len()), None);
    }
}
