//! Writing a profile: one module per format, and the file they go to.

pub mod chrometrace;
pub mod file;
pub mod flamegraph;
pub mod folded;
pub mod pprof;
pub mod speedscope;

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;

use crate::profile::Profile;
use crate::stack::FrameTable;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Interactive flamegraph SVG (inferno): hover for counts, click to zoom, Ctrl-F to search.
    Flamegraph,
    /// One `frame;frame;frame count` line per stack, for inferno, flamegraph.pl and `pystrobe diff`.
    #[value(alias = "raw")]
    Folded,
    /// speedscope's JSON format (https://www.speedscope.app): one sampled profile per process.
    Speedscope,
    /// Chrome's trace event JSON, a timeline per thread: Perfetto (ui.perfetto.dev),
    /// chrome://tracing, DevTools.
    Chrometrace,
    /// gzipped profile.proto: go tool pprof, Grafana Pyroscope, Parca.
    Pprof,
}

impl Format {
    /// The conventional file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Folded => "txt",
            Format::Speedscope => "speedscope.json",
            Format::Chrometrace => "trace.json",
            Format::Pprof => "pb.gz",
        }
    }

    /// The format a file name asks for by its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        [
            (".speedscope.json", Format::Speedscope),
            (".trace.json", Format::Chrometrace),
            (".pb.gz", Format::Pprof),
            (".pprof", Format::Pprof),
            (".svg", Format::Flamegraph),
            (".txt", Format::Folded),
            (".folded", Format::Folded),
        ]
        .into_iter()
        .find_map(|(ext, f)| name.ends_with(ext).then_some(f))
    }

    /// What a file of this format is called in messages.
    pub fn description(self) -> &'static str {
        match self {
            Format::Flamegraph => "flamegraph",
            Format::Folded => "folded stacks",
            Format::Speedscope => "speedscope profile",
            Format::Chrometrace => "Chrome trace",
            Format::Pprof => "pprof profile",
        }
    }

    /// Whether the format shows when samples were taken, not only how many.
    pub fn needs_timeline(self) -> bool {
        self == Format::Chrometrace
    }
}

/// What the output says about the recording.
pub struct Meta {
    /// Shown as the flamegraph's title.
    pub title: String,
    /// Shown under the title.
    pub subtitle: String,
    /// Samples per second per CPU: one sample stands for 1/rate s of CPU.
    pub rate_hz: u64,
    /// When recording started (Unix time, ns) and how long it ran.
    pub start_unix_ns: u64,
    pub duration_ns: u64,
}

impl Meta {
    /// CPU time one sample stands for, in ns.
    pub fn period_ns(&self) -> u64 {
        1_000_000_000 / self.rate_hz.max(1)
    }
}

pub fn write(
    format: Format,
    profile: &Profile,
    frames: &FrameTable,
    meta: &Meta,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        Format::Folded => folded::write(&profile.folded_lines(frames), out),
        Format::Flamegraph => flamegraph::write(profile, frames, meta, out),
        Format::Speedscope => speedscope::write(profile, frames, meta, out),
        Format::Chrometrace => chrometrace::write(profile, frames, meta, out),
        Format::Pprof => pprof::write(profile, frames, meta, out),
    }
}
