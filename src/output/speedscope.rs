//! speedscope's file format (https://www.speedscope.app/file-format-schema.json):
//! frames shared by all profiles, and one "sampled" profile per process whose
//! samples are stacks of frame indices (outermost first) weighted by the CPU
//! time they stand for. The process frame is the profile's name, not a frame.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Meta;
use crate::profile::Profile;
use crate::stack::{FrameId, FrameTable};

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    shared: Shared<'a>,
    profiles: Vec<SampledProfile>,
    name: &'a str,
    #[serde(rename = "activeProfileIndex")]
    active_profile_index: usize,
    exporter: String,
}

#[derive(Serialize)]
struct Shared<'a> {
    frames: Vec<Frame<'a>>,
}

#[derive(Serialize)]
struct Frame<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

#[derive(Serialize)]
struct SampledProfile {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    unit: &'static str,
    #[serde(rename = "startValue")]
    start_value: u64,
    #[serde(rename = "endValue")]
    end_value: u64,
    samples: Vec<Vec<usize>>,
    weights: Vec<u64>,
}

pub fn write(
    profile: &Profile,
    frames: &FrameTable,
    meta: &Meta,
    out: &mut dyn Write,
) -> Result<()> {
    let period = meta.period_ns();
    let mut shared: Vec<Frame> = Vec::new();
    let mut index: HashMap<FrameId, usize> = HashMap::new();
    // Profiles by process frame, in name order.
    let mut by_process: BTreeMap<&str, SampledProfile> = BTreeMap::new();
    for (stack, count) in profile.iter() {
        let Some((&root, rest)) = stack.split_first() else {
            continue;
        };
        let root_name = frames.get(root).name.as_str();
        let p = by_process
            .entry(root_name)
            .or_insert_with(|| SampledProfile {
                kind: "sampled",
                name: root_name.to_string(),
                unit: "nanoseconds",
                start_value: 0,
                end_value: 0,
                samples: Vec::new(),
                weights: Vec::new(),
            });
        let sample: Vec<usize> = rest
            .iter()
            .map(|&id| {
                *index.entry(id).or_insert_with(|| {
                    let f = frames.get(id);
                    shared.push(match &f.source {
                        // speedscope shows file:line itself: the plain function name.
                        Some(src) => Frame {
                            name: &src.function,
                            file: Some(&src.file),
                            line: (src.line > 0).then_some(src.line),
                        },
                        None => Frame {
                            name: &f.name,
                            file: None,
                            line: None,
                        },
                    });
                    shared.len() - 1
                })
            })
            .collect();
        let weight = count.saturating_mul(period);
        p.samples.push(sample);
        p.weights.push(weight);
        p.end_value = p.end_value.saturating_add(weight);
    }
    let file = File {
        schema: "https://www.speedscope.app/file-format-schema.json",
        shared: Shared { frames: shared },
        profiles: by_process.into_values().collect(),
        name: &meta.title,
        active_profile_index: 0,
        exporter: format!("pystrobe {}", env!("CARGO_PKG_VERSION")),
    };
    serde_json::to_writer(&mut *out, &file).context("writing the speedscope profile")?;
    writeln!(out)?;
    Ok(())
}
