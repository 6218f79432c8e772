//! Aggregation: how many samples each distinct stack received.

use std::collections::HashMap;

use crate::stack::{FrameId, FrameTable};

#[derive(Default)]
pub struct Profile {
    counts: HashMap<Box<[FrameId]>, u64>,
    pub total: u64,
}

impl Profile {
    pub fn add(&mut self, stack: &[FrameId], count: u64) {
        self.total += count;
        if let Some(c) = self.counts.get_mut(stack) {
            *c += count;
        } else {
            self.counts.insert(stack.into(), count);
        }
    }

    /// Distinct stacks held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[FrameId], u64)> {
        self.counts.iter().map(|(s, &c)| (&**s, c))
    }

    /// Stacks as `frame;frame;frame` strings with their counts, merged by
    /// name (two addresses in one function are one frame here) and sorted,
    /// which is the order inferno wants.
    pub fn folded_lines(&self, frames: &FrameTable) -> Vec<(String, u64)> {
        let mut merged: HashMap<String, u64> = HashMap::with_capacity(self.counts.len());
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
}
