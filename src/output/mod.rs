//! Writing a profile: one module per format, and the file they go to.

pub mod file;
pub mod flamegraph;
pub mod folded;

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;

use crate::profile::Profile;
use crate::stack::FrameTable;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Interactive flamegraph SVG (inferno): hover for counts, click to zoom, Ctrl-F to search.
    Flamegraph,
    /// One `frame;frame;frame count` line per stack, for inferno, flamegraph.pl and speedscope.
    #[value(alias = "raw")]
    Folded,
}

impl Format {
    /// The conventional file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Folded => "txt",
        }
    }
}

/// What the output says about the recording.
pub struct Meta {
    /// Shown as the flamegraph's title.
    pub title: String,
    /// Shown under the title.
    pub subtitle: String,
}

pub fn write(
    format: Format,
    profile: &Profile,
    frames: &FrameTable,
    meta: &Meta,
    out: &mut dyn Write,
) -> Result<()> {
    let lines = profile.folded_lines(frames);
    match format {
        Format::Folded => folded::write(&lines, out),
        Format::Flamegraph => flamegraph::write(&lines, meta, out),
    }
}
