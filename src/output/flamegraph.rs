//! Interactive SVG flamegraph, drawn by inferno (which escapes frame names
//! for XML). Frames are coloured by kind, so the eye finds the Python code
//! among the native and kernel frames of a --native or whole-host profile:
//! Python green, native code warm red to yellow, kernel blue, processes and
//! threads grey. Each name gets a fixed shade of its kind's hue.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result};
use inferno::flamegraph::color::{Color, PaletteMap};
use inferno::flamegraph::{self, Options};

use crate::profile::Profile;
use crate::stack::{FrameKind, FrameTable};

pub fn write(
    profile: &Profile,
    frames: &FrameTable,
    meta: &super::Meta,
    out: &mut dyn Write,
) -> Result<()> {
    let lines = profile.folded_lines(frames);
    if lines.is_empty() {
        // inferno refuses an empty profile; an empty SVG still says "no samples".
        writeln!(
            out,
            r#"<?xml version="1.0" standalone="no"?><svg version="1.1" width="1200" height="60" xmlns="http://www.w3.org/2000/svg"><text x="600" y="30" text-anchor="middle">No samples were collected</text></svg>"#
        )?;
        return Ok(());
    }
    let mut palette = palette(profile, frames);
    let mut opts = Options::default();
    opts.title = meta.title.clone();
    opts.subtitle = Some(format!(
        "{} — green: Python, red-yellow: native, blue: kernel",
        meta.subtitle
    ));
    opts.count_name = "samples".to_string();
    opts.name_type = "Function:".to_string();
    opts.palette_map = Some(&mut palette);
    let folded: Vec<String> = lines.iter().map(|(s, c)| format!("{s} {c}")).collect();
    flamegraph::from_lines(&mut opts, folded.iter().map(String::as_str), out)
        .context("drawing the flamegraph")
}

/// A colour for every frame name in the profile, by its kind (the first
/// kind seen when one name has several).
fn palette(profile: &Profile, frames: &FrameTable) -> PaletteMap {
    let mut kinds: HashMap<&str, FrameKind> = HashMap::new();
    for (stack, _) in profile.iter() {
        for &id in stack {
            let f = frames.get(id);
            kinds.entry(f.name.as_str()).or_insert(f.kind);
        }
    }
    let mut map = PaletteMap::default();
    for (name, kind) in kinds {
        map.insert(name, colour(kind, name));
    }
    map
}

/// The kind's hue, shaded by the name (FNV-1a: stable across runs).
pub fn colour(kind: FrameKind, name: &str) -> Color {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let v = |range: u8, shift: u32| ((h >> shift) % u64::from(range)) as u8;
    let (r, g, b) = match kind {
        FrameKind::Python => (40 + v(60, 0), 160 + v(60, 8), 60 + v(50, 16)),
        FrameKind::Native | FrameKind::Truncated => (205 + v(50, 0), 60 + v(140, 8), v(55, 16)),
        FrameKind::Kernel => (60 + v(50, 0), 140 + v(60, 8), 210 + v(45, 16)),
        FrameKind::Process | FrameKind::Thread => (165 + v(30, 0), 160 + v(25, 8), 190 + v(30, 16)),
    };
    Color { r, g, b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_their_hue() {
        for name in [
            "a",
            "compress (demo.py:12)",
            "_PyEval_EvalFrameDefault",
            "x".repeat(300).as_str(),
        ] {
            let p = colour(FrameKind::Python, name);
            assert!(p.g > p.r && p.g > p.b, "{p:?}");
            let n = colour(FrameKind::Native, name);
            assert!(n.r > n.g && n.r > n.b, "{n:?}");
            let k = colour(FrameKind::Kernel, name);
            assert!(k.b > k.r && k.b > k.g, "{k:?}");
        }
        assert_eq!(
            colour(FrameKind::Python, "f"),
            colour(FrameKind::Python, "f")
        );
    }
}
