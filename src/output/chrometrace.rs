//! Chrome's trace event format (JSON): a timeline per thread, each frame a
//! complete event ("X") spanning the consecutive samples whose stacks hold
//! it, so a viewer (Perfetto, chrome://tracing, DevTools) draws a flame
//! chart over time. A sample stands for one sampling period; a longer gap
//! between two samples of a thread (it slept) closes its stack. Complete
//! events rather than begin/end pairs: viewers sort events by time, and an
//! end and a begin at the same instant would lose their order.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};
use serde_json::json;

use super::Meta;
use crate::profile::{Profile, TimedSample};
use crate::stack::{FrameId, FrameKind, FrameTable};

pub fn write(
    profile: &Profile,
    frames: &FrameTable,
    meta: &Meta,
    out: &mut dyn Write,
) -> Result<()> {
    // Sorted by thread, then time; references, not a copy of the timeline.
    let mut samples: Vec<&TimedSample> = profile.timeline.iter().flatten().collect();
    samples.sort_by_key(|s| (s.pid, s.tid, s.time_ns));
    let origin = samples.iter().map(|s| s.time_ns).min().unwrap_or(0);
    let period = meta.period_ns();
    let us = |ns: u64| (ns.saturating_sub(origin)) as f64 / 1000.0;

    let mut w = EventWriter::new(out)?;
    // Names of processes and threads, from their frames.
    let mut processes: BTreeMap<u32, FrameId> = BTreeMap::new();
    let mut threads: BTreeMap<(u32, u32), FrameId> = BTreeMap::new();
    for s in &samples {
        let stack = profile.stack(s.stack);
        if let Some(&root) = stack.first() {
            processes.entry(s.pid).or_insert(root);
        }
        if let Some(&t) = stack
            .get(1)
            .filter(|&&t| frames.get(t).kind == FrameKind::Thread)
        {
            threads.entry((s.pid, s.tid)).or_insert(t);
        }
    }
    for (&pid, &root) in &processes {
        w.event(
            json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                       "args": {"name": frames.get(root).name}}),
        )?;
    }
    for (&(pid, tid), &t) in &threads {
        w.event(
            json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": frames.get(t).name}}),
        )?;
    }

    let mut i = 0;
    while i < samples.len() {
        let (pid, tid) = (samples[i].pid, samples[i].tid);
        // The open frames, outermost first, with when each began.
        let mut open: Vec<(FrameId, u64)> = Vec::new();
        let mut last = samples[i].time_ns;
        while i < samples.len() && (samples[i].pid, samples[i].tid) == (pid, tid) {
            let s = *samples[i];
            let stack: Vec<FrameId> = profile
                .stack(s.stack)
                .iter()
                .skip(1)
                .copied()
                .filter(|&f| frames.get(f).kind != FrameKind::Thread)
                .collect();
            // Asleep since the last sample: its stack ended a period after it.
            if s.time_ns > last + period + period / 2 {
                w.close(frames, &mut open, 0, last + period, pid, tid, &us)?;
            }
            let common = open
                .iter()
                .zip(&stack)
                .take_while(|((a, _), b)| a == *b)
                .count();
            w.close(frames, &mut open, common, s.time_ns, pid, tid, &us)?;
            open.extend(stack[common..].iter().map(|&f| (f, s.time_ns)));
            last = s.time_ns;
            i += 1;
        }
        w.close(frames, &mut open, 0, last + period, pid, tid, &us)?;
    }
    w.finish(meta)
}

fn category(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Python => "python",
        FrameKind::Kernel => "kernel",
        _ => "native",
    }
}

fn complete(
    frames: &FrameTable,
    f: FrameId,
    ts: f64,
    dur: f64,
    pid: u32,
    tid: u32,
) -> serde_json::Value {
    let frame = frames.get(f);
    let mut e = json!({"ph": "X", "name": frame.name, "cat": category(frame.kind),
                       "ts": ts, "dur": dur, "pid": pid, "tid": tid});
    if let Some(src) = &frame.source {
        e["args"] = json!({"function": src.function, "file": src.file, "line": src.line});
    }
    e
}

/// Streams events into `{"traceEvents": [...], ...}`.
struct EventWriter<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl<'a> EventWriter<'a> {
    fn new(out: &'a mut dyn Write) -> Result<Self> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        Ok(EventWriter { out, first: true })
    }

    fn event(&mut self, e: serde_json::Value) -> Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, &e).context("writing the trace")?;
        Ok(())
    }

    /// Ends the frames of `open` above depth `keep` at `end_ns`, innermost
    /// first.
    #[allow(clippy::too_many_arguments)]
    fn close(
        &mut self,
        frames: &FrameTable,
        open: &mut Vec<(FrameId, u64)>,
        keep: usize,
        end_ns: u64,
        pid: u32,
        tid: u32,
        us: &dyn Fn(u64) -> f64,
    ) -> Result<()> {
        while open.len() > keep {
            let Some((f, start)) = open.pop() else { break };
            let (ts, end) = (us(start), us(end_ns));
            self.event(complete(frames, f, ts, end - ts, pid, tid))?;
        }
        Ok(())
    }

    fn finish(self, meta: &Meta) -> Result<()> {
        self.out
            .write_all(b"\n],\"displayTimeUnit\":\"ms\",\"otherData\":")?;
        serde_json::to_writer(
            &mut *self.out,
            &json!({"title": meta.title, "subtitle": meta.subtitle,
                    "exporter": format!("pystrobe {}", env!("CARGO_PKG_VERSION"))}),
        )?;
        self.out.write_all(b"}\n")?;
        Ok(())
    }
}
