//! pprof's profile.proto, gzipped: what `go tool pprof`, Grafana Pyroscope
//! and Parca read. One sample per distinct stack, valued in samples and in
//! CPU nanoseconds; one location per frame, whose function carries the
//! Python function's name, file and first line, and whose line the line run.
//! The process frame stays the outermost location (as in the flamegraph)
//! and is also a `process` label, with a numeric `pid` label.

mod proto;

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

use super::Meta;
use crate::profile::Profile;
use crate::stack::{FrameId, FrameTable};

/// The string table: each string once, "" at index 0.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings {
            table: Vec::new(),
            index: HashMap::new(),
        };
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

pub fn write(
    profile: &Profile,
    frames: &FrameTable,
    meta: &Meta,
    out: &mut dyn Write,
) -> Result<()> {
    let mut strings = Strings::new();
    let period = meta.period_ns() as i64;
    let samples_t = proto::ValueType {
        r#type: strings.get("samples"),
        unit: strings.get("count"),
    };
    let cpu_t = proto::ValueType {
        r#type: strings.get("cpu"),
        unit: strings.get("nanoseconds"),
    };
    let (process_key, pid_key) = (strings.get("process"), strings.get("pid"));
    let mut p = proto::Profile {
        sample_type: vec![samples_t, cpu_t.clone()],
        period_type: Some(cpu_t),
        period,
        time_nanos: meta.start_unix_ns as i64,
        duration_nanos: meta.duration_ns as i64,
        comment: vec![strings.get(&meta.title), strings.get(&meta.subtitle)],
        default_sample_type: 1,
        ..Default::default()
    };

    // Location ids are frame ids + 1 (ids must be nonzero); functions are
    // one per (name, file, first line).
    let mut locations: HashMap<FrameId, u64> = HashMap::new();
    let mut functions: HashMap<(i64, i64, i64), u64> = HashMap::new();
    for (stack, count) in profile.iter() {
        let mut ids = Vec::with_capacity(stack.len());
        for &f in stack.iter().rev() {
            let id = *locations.entry(f).or_insert_with(|| {
                let frame = frames.get(f);
                let (name, file, first, line) = match &frame.source {
                    Some(src) => (
                        strings.get(&src.function),
                        strings.get(&src.file),
                        i64::from(src.first_line),
                        i64::from(src.line),
                    ),
                    None => (strings.get(&frame.name), 0, 0, 0),
                };
                let next = functions.len() as u64 + 1;
                let function_id = *functions.entry((name, file, first)).or_insert_with(|| {
                    p.function.push(proto::Function {
                        id: next,
                        name,
                        system_name: name,
                        filename: file,
                        start_line: first,
                    });
                    next
                });
                let id = u64::from(f) + 1;
                p.location.push(proto::Location {
                    id,
                    line: vec![proto::Line { function_id, line }],
                });
                id
            });
            ids.push(id);
        }
        let mut label = Vec::new();
        if let Some(&root) = stack.first() {
            let name = &frames.get(root).name;
            label.push(proto::Label {
                key: process_key,
                str: strings.get(name),
                num: 0,
            });
            if let Some(pid) = pid_of(name) {
                label.push(proto::Label {
                    key: pid_key,
                    str: 0,
                    num: i64::from(pid),
                });
            }
        }
        let count = count as i64;
        p.sample.push(proto::Sample {
            location_id: ids,
            value: vec![count, count.saturating_mul(period)],
            label,
        });
    }
    p.string_table = strings.table;

    let mut gz = GzEncoder::new(out, Compression::default());
    gz.write_all(&p.encode_to_vec())
        .and_then(|()| gz.finish().map(drop))
        .context("writing the pprof profile")
}

/// The host PID in a process frame `name (pid ...)`.
fn pid_of(label: &str) -> Option<u32> {
    let inner = label.rsplit_once(" (")?.1;
    let digits: String = inner.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_from_labels() {
        assert_eq!(pid_of("python3 (1234)"), Some(1234));
        assert_eq!(pid_of("python3 (1234 #2, ns 7)"), Some(1234));
        assert_eq!(pid_of("a (b) (99)"), Some(99));
        assert_eq!(pid_of("[idle] (0)"), Some(0));
        assert_eq!(pid_of("x"), None);
    }
}
