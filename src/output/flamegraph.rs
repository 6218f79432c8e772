//! Interactive SVG flamegraph, drawn by inferno (which escapes frame names for XML).

use std::io::Write;

use anyhow::{Context, Result};
use inferno::flamegraph::{self, Options};

pub fn write(lines: &[(String, u64)], meta: &super::Meta, out: &mut dyn Write) -> Result<()> {
    let mut opts = Options::default();
    opts.title = meta.title.clone();
    opts.subtitle = Some(meta.subtitle.clone());
    opts.count_name = "samples".to_string();
    opts.name_type = "Function:".to_string();
    if lines.is_empty() {
        // inferno refuses an empty profile; an empty SVG still says "no samples".
        writeln!(
            out,
            r#"<?xml version="1.0" standalone="no"?><svg version="1.1" width="1200" height="60" xmlns="http://www.w3.org/2000/svg"><text x="600" y="30" text-anchor="middle">No samples were collected</text></svg>"#
        )?;
        return Ok(());
    }
    let folded: Vec<String> = lines.iter().map(|(s, c)| format!("{s} {c}")).collect();
    flamegraph::from_lines(&mut opts, folded.iter().map(String::as_str), out)
        .context("drawing the flamegraph")
}
