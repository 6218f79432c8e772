//! Output formats, each read by a real consumer and checked against the
//! folded stacks of the same recording (one recording, several -o):
//! - pprof: parsed by github.com/google/pprof/profile (what `go tool pprof`
//!   is made of), sample by sample;
//! - speedscope: validated against speedscope's published JSON schema, then
//!   profile by profile, sample by sample;
//! - chrometrace: parsed by Chrome DevTools' trace engine, which must not
//!   complain, thread by thread.
//!
//! The consumers come from `scripts/consumers` (installed by scripts/test and
//! CI). Needs root and BPF; under CI=true a test fails when any is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const FORMATS_PY: &str = include_str!("workloads/formats.py");

/// `scripts/consumers --list` as a map; `None` (skip) when they are not
/// installed, which fails under CI=true.
fn consumers() -> Option<BTreeMap<String, PathBuf>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/consumers");
    let out = Command::new(&script)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let list: BTreeMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect();
    if list.is_empty() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true and the format consumers are not installed: run scripts/consumers"
        );
        eprintln!("skipping: the format consumers are not installed (run scripts/consumers)");
        return None;
    }
    Some(list)
}

/// One recording of tests/workloads/formats.py with -t, written as folded
/// stacks and as `format` (by extension). Returns the folded lines merged
/// by stack, the other file, and the sampling period in ns.
struct Recording {
    _wd: Workdir,
    folded: BTreeMap<String, u64>,
    other: PathBuf,
    period_ns: u64,
    summary: String,
}

fn record(extension: &str) -> Option<(Recording, BTreeMap<String, PathBuf>)> {
    let (bpf, pythons) = python_test()?;
    let consumers = consumers()?;
    let py = host_static(&pythons)?;
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    let folded_path = wd.join("out.txt");
    let other = wd.join(&format!("out.{extension}"));
    const RATE: u64 = 500;
    let mut cmd = Command::new(PYSTROBE);
    cmd.args(["record", "-t", "--full-filenames", "-r", &RATE.to_string()])
        .args(["-o", s(&folded_path), "-o", s(&other), "--"])
        .args(py.argv(&script, &[]));
    clean_python_env(&mut cmd);
    let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
    r.success();
    drop(bpf);
    let mut folded = BTreeMap::new();
    for st in read_folded(&folded_path) {
        *folded.entry(st.0.join(";")).or_default() += st.1;
    }
    assert!(folded.values().sum::<u64>() >= 300, "{}", r.stderr);
    Some((
        Recording {
            _wd: wd,
            folded,
            other,
            period_ns: 1_000_000_000 / RATE,
            summary: r.stderr,
        },
        consumers,
    ))
}

/// A frame as the folded format names it, from its parts.
fn frame_name(function: &str, file: &str, line: i64) -> String {
    match (file.is_empty(), line) {
        (true, _) => function.to_string(),
        (false, 0) => format!("{function} ({file})"),
        (false, _) => format!("{function} ({file}:{line})"),
    }
}

fn run_json(cmd: &mut Command) -> Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn pprof_is_read_by_pprof_and_matches_folded_sample_by_sample() {
    let Some((rec, consumers)) = record("pb.gz") else {
        return;
    };
    let p = run_json(Command::new(&consumers["pprof-decode"]).arg(&rec.other));
    assert_eq!(p["SampleType"][0]["Type"], "samples");
    assert_eq!(p["SampleType"][1]["Type"], "cpu");
    assert_eq!(p["SampleType"][1]["Unit"], "nanoseconds");
    assert_eq!(p["PeriodType"]["Type"], "cpu");
    assert_eq!(p["Period"].as_u64(), Some(rec.period_ns));
    assert!(p["DurationNanos"].as_u64().unwrap() > 1_000_000_000);

    let mut from_pprof: BTreeMap<String, u64> = BTreeMap::new();
    for sample in p["Sample"].as_array().unwrap() {
        // Locations are innermost first; each has one line.
        let mut frames: Vec<String> = sample["Location"]
            .as_array()
            .unwrap()
            .iter()
            .map(|loc| {
                let line = &loc["Line"][0];
                frame_name(
                    line["Function"]["Name"].as_str().unwrap(),
                    line["Function"]["Filename"].as_str().unwrap(),
                    line["Line"].as_i64().unwrap(),
                )
            })
            .collect();
        frames.reverse();
        let count = sample["Value"][0].as_u64().unwrap();
        assert_eq!(
            sample["Value"][1].as_u64().unwrap(),
            count * rec.period_ns,
            "cpu nanoseconds = samples x period"
        );
        // The process frame is also a label, and its PID a numeric one.
        assert_eq!(sample["Label"]["process"][0].as_str().unwrap(), frames[0]);
        assert_eq!(
            sample["NumLabel"]["pid"][0].as_u64().unwrap(),
            u64::from(process_label(&frames[0]).pid)
        );
        *from_pprof.entry(frames.join(";")).or_default() += count;
    }
    assert_eq!(from_pprof, rec.folded, "{}", rec.summary);
}

#[test]
fn speedscope_matches_the_published_schema_and_folded_stacks() {
    let Some((rec, consumers)) = record("speedscope.json") else {
        return;
    };
    let check = Command::new(&consumers["jsonschema"])
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
        ])
        .arg(&rec.other)
        .arg(&consumers["speedscope-schema"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "speedscope's schema rejects the file: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let file: Value = serde_json::from_str(&fs::read_to_string(&rec.other).unwrap()).unwrap();
    let frames = file["shared"]["frames"].as_array().unwrap();
    let mut from_speedscope: BTreeMap<String, u64> = BTreeMap::new();
    for profile in file["profiles"].as_array().unwrap() {
        assert_eq!(profile["type"], "sampled");
        assert_eq!(profile["unit"], "nanoseconds");
        let process = profile["name"].as_str().unwrap();
        let weights = profile["weights"].as_array().unwrap();
        let mut end = 0;
        for (sample, w) in profile["samples"].as_array().unwrap().iter().zip(weights) {
            let mut names = vec![process.to_string()];
            for i in sample.as_array().unwrap() {
                let f = &frames[i.as_u64().unwrap() as usize];
                names.push(frame_name(
                    f["name"].as_str().unwrap(),
                    f["file"].as_str().unwrap_or(""),
                    f["line"].as_i64().unwrap_or(0),
                ));
            }
            let w = w.as_u64().unwrap();
            assert_eq!(w % rec.period_ns, 0, "weights are whole samples");
            end += w;
            *from_speedscope.entry(names.join(";")).or_default() += w / rec.period_ns;
        }
        assert_eq!(profile["endValue"].as_u64(), Some(end));
    }
    assert_eq!(from_speedscope, rec.folded, "{}", rec.summary);
}

#[test]
fn chrometrace_is_read_by_the_devtools_trace_engine() {
    let Some((rec, consumers)) = record("trace.json") else {
        return;
    };
    let t = run_json(
        Command::new(&consumers["node"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumers/trace_engine.mjs"))
            .arg(&consumers["trace-engine"])
            .arg(&rec.other),
    );
    assert_eq!(
        t["complaints"].as_array().unwrap().len(),
        0,
        "the trace engine complained: {}",
        t["complaints"]
    );

    // The threads of the folded stacks (second frame, `name (tid)`), with
    // their samples in hot and in cold.
    let mut expect: BTreeMap<u64, (String, u64, u64)> = BTreeMap::new();
    for (stack, count) in &rec.folded {
        let frames: Vec<&str> = stack.split(';').collect();
        let thread = frames[1];
        let tid: u64 = thread
            .rsplit_once(" (")
            .and_then(|(_, t)| t.strip_suffix(')'))
            .and_then(|t| t.parse().ok())
            .unwrap();
        let e = expect.entry(tid).or_insert((thread.to_string(), 0, 0));
        if frames.iter().any(|f| f.starts_with("hot (")) {
            e.1 += count;
        } else if frames.iter().any(|f| f.starts_with("cold (")) {
            e.2 += count;
        }
    }
    let threads = t["threads"].as_array().unwrap();
    let seen: BTreeSet<u64> = threads.iter().map(|t| t["tid"].as_u64().unwrap()).collect();
    assert_eq!(seen, expect.keys().copied().collect::<BTreeSet<_>>());
    for th in threads {
        let tid = th["tid"].as_u64().unwrap();
        let (name, hot, cold) = &expect[&tid];
        assert_eq!(th["name"].as_str(), Some(name.as_str()));
        let (mut hot_us, mut cold_us) = (0.0, 0.0);
        for e in th["entries"].as_array().unwrap() {
            let (n, dur) = (e[0].as_str().unwrap(), e[2].as_f64().unwrap());
            if n.starts_with("hot (") {
                hot_us += dur;
            } else if n.starts_with("cold (") {
                cold_us += dur;
            }
        }
        if hot + cold == 0 {
            assert_eq!(
                hot_us + cold_us,
                0.0,
                "thread {tid} has no hot/cold samples"
            );
            continue;
        }
        // The time the trace gives hot against cold is their share of
        // samples: each sample spans one period, or the gap to the next.
        let by_time = hot_us / (hot_us + cold_us);
        let by_samples = *hot as f64 / (*hot + *cold) as f64;
        assert!(
            (by_time - by_samples).abs() < 0.05,
            "thread {tid}: hot is {:.1} % of hot+cold by trace time, {:.1} % by samples",
            by_time * 100.0,
            by_samples * 100.0
        );
    }
}
