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

/// One frame of a flamegraph SVG.
#[derive(Clone, Debug)]
struct SvgFrame {
    name: String,
    samples: u64,
    rgb: (u8, u8, u8),
    /// Samples before this frame on its row (fg:x), and its row's y.
    x: u64,
    y: f64,
}

impl SvgFrame {
    /// Whether `other` is in this frame's subtree (above it, within it).
    fn holds(&self, other: &SvgFrame) -> bool {
        other.y < self.y && other.x >= self.x && other.x + other.samples <= self.x + self.samples
    }
}

/// A flamegraph's frames, from the SVG's `<g><title>NAME (N samples,
/// P%)</title><rect fill="rgb(..)" fg:x=.. y=..>`.
fn svg_frames(svg: &Path) -> Vec<SvgFrame> {
    let text = fs::read_to_string(svg).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &text,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut out = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let title = g.children().find(|n| n.has_tag_name("title"));
        let rect = g.children().find(|n| n.has_tag_name("rect"));
        let (Some(title), Some(rect)) = (title, rect) else {
            continue;
        };
        let title = title.text().unwrap_or_default();
        let Some((name, rest)) = title.rsplit_once(" (") else {
            continue;
        };
        let samples: u64 = rest
            .split(' ')
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap_or(0);
        let fill = rect.attribute("fill").unwrap_or_default();
        let rgb: Vec<u8> = fill
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        // inferno's own attributes (fg:x, fg:w) are in its namespace; x and y
        // are SVG's.
        let attr = |name: &str, inferno: bool| {
            rect.attributes()
                .find(|a| a.name() == name && a.namespace().is_some() == inferno)
                .and_then(|a| a.value().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if rgb.len() == 3 {
            out.push(SvgFrame {
                name: name.to_string(),
                samples,
                rgb: (rgb[0], rgb[1], rgb[2]),
                x: attr("x", true) as u64,
                y: attr("y", false),
            });
        }
    }
    out
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
    record_with(extension, &[], &[])
}

/// As `record`, with more pystrobe flags and workload arguments.
fn record_with(
    extension: &str,
    flags: &[&str],
    workload: &[&str],
) -> Option<(Recording, BTreeMap<String, PathBuf>)> {
    let (_bpf, pythons) = python_test()?;
    let consumers = consumers()?;
    let py = host_static(&pythons)?;
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    let rec = record_script(&py, &script, extension, flags, workload);
    Some((rec, consumers))
}

/// Runs the staged formats.py under pystrobe (the caller holds the BPF lock).
fn record_script(
    py: &Python,
    script: &Staged,
    extension: &str,
    flags: &[&str],
    workload: &[&str],
) -> Recording {
    let wd = Workdir::new();
    let folded_path = wd.join("out.txt");
    let other = wd.join(&format!("out.{extension}"));
    const RATE: u64 = 500;
    let mut cmd = Command::new(PYSTROBE);
    cmd.args(["record", "-t", "--full-filenames", "-r", &RATE.to_string()])
        .args(flags)
        .args(["-o", s(&folded_path), "-o", s(&other), "--"])
        .args(py.argv(script, workload));
    clean_python_env(&mut cmd);
    let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
    r.success();
    let mut folded = BTreeMap::new();
    for st in read_folded(&folded_path) {
        *folded.entry(st.0.join(";")).or_default() += st.1;
    }
    assert!(folded.values().sum::<u64>() >= 300, "{}", r.stderr);
    Recording {
        _wd: wd,
        folded,
        other,
        period_ns: 1_000_000_000 / RATE,
        summary: r.stderr,
    }
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
    let check = Command::new(&consumers["python"])
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

/// The flamegraph's frames are coloured by kind: Python green, native red to
/// yellow, kernel blue (a --native recording has all three).
#[test]
fn flamegraph_colours_python_native_and_kernel_apart() {
    let Some((rec, _)) = record_with("svg", &["--native"], &[]) else {
        return;
    };
    // Kinds from the folded stacks of the same recording. inferno drops the
    // `_[k]` of kernel frames from their titles.
    let mut python = BTreeSet::new();
    let mut kernel = BTreeSet::new();
    let mut native = BTreeSet::new();
    for stack in rec.folded.keys() {
        for (i, f) in stack.split(';').enumerate() {
            if i < 2 {
                continue; // process and thread frames
            }
            if py_frame(f).is_some() {
                python.insert(f.to_string());
            } else if let Some(k) = f.strip_suffix("_[k]") {
                kernel.insert(k.to_string());
            } else if !f.starts_with('[') {
                native.insert(f.to_string());
            }
        }
    }
    assert!(!python.is_empty() && !native.is_empty(), "{}", rec.summary);
    let (mut seen_py, mut seen_k, mut seen_n) = (0, 0, 0);
    for f in svg_frames(&rec.other) {
        let (name, (r, g, b)) = (f.name, f.rgb);
        let is = |set: &BTreeSet<String>| set.contains(&name);
        // A name in two kinds takes one colour: skip the ambiguous.
        match (is(&python), is(&kernel), is(&native)) {
            (true, false, false) => {
                seen_py += 1;
                assert!(g > r && g > b, "Python frame {name} is rgb({r},{g},{b})");
            }
            (false, true, false) => {
                seen_k += 1;
                assert!(b > r && b > g, "kernel frame {name} is rgb({r},{g},{b})");
            }
            (false, false, true) => {
                seen_n += 1;
                assert!(r > g && r > b, "native frame {name} is rgb({r},{g},{b})");
            }
            _ => {}
        }
    }
    assert!(
        seen_py > 0 && seen_n > 0,
        "{seen_py} Python, {seen_n} native frames checked"
    );
    eprintln!("colours checked: {seen_py} Python, {seen_n} native, {seen_k} kernel frames");
}

/// The flamegraph in headless Chromium: it renders, clicking a frame zooms
/// it to the full width, and Search highlights exactly the matching frames
/// with the share the folded stacks give. Screenshots of each step are kept
/// under target/tmp/flamegraph-browser/.
#[test]
fn flamegraph_in_chromium_renders_zooms_and_searches() {
    let Some((rec, consumers)) = record("svg") else {
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flamegraph-browser");
    let r = run_json(
        Command::new(&consumers["python"])
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumers/flamegraph_browser.py"),
            )
            .arg(&consumers["chromium"])
            .arg(&consumers["chromedriver"])
            .arg(&rec.other)
            .args(["cold (", "^hot "])
            .arg(&shots),
    );
    assert!(r["frames"].as_u64().unwrap() > 10, "{r}");
    assert!(
        r["title"].as_str().unwrap().starts_with("pystrobe: "),
        "{r}"
    );
    let full = r["frames_width_px"].as_f64().unwrap();
    let (before, after) = (
        r["before_width_px"].as_f64().unwrap(),
        r["after_width_px"].as_f64().unwrap(),
    );
    assert!(
        before < 0.6 * full,
        "cold was {before} px of {full} before the click"
    );
    assert!(
        after > 0.95 * full,
        "cold is {after} px of {full} after the click"
    );
    assert_eq!(r["unzoom_visible"], true);

    let highlighted = r["highlighted"].as_array().unwrap();
    assert!(!highlighted.is_empty(), "{r}");
    for h in highlighted {
        assert!(
            h.as_str().unwrap().starts_with("hot ("),
            "{h} does not match ^hot"
        );
    }
    // inferno's "Matched: P%" against the folded stacks' share of hot.
    let hot: u64 = rec
        .folded
        .iter()
        .filter(|(s, _)| s.split(';').any(|f| f.starts_with("hot (")))
        .map(|(_, c)| c)
        .sum();
    let total: u64 = rec.folded.values().sum();
    let matched: f64 = r["matched"]
        .as_str()
        .unwrap()
        .trim_start_matches("Matched: ")
        .trim_end_matches('%')
        .parse()
        .unwrap();
    let expect = 100.0 * hot as f64 / total as f64;
    assert!(
        (matched - expect).abs() < 0.11,
        "Matched: {matched}%, folded says {expect:.2}%"
    );
    for shot in ["1-rendered.png", "2-zoomed.png", "3-search.png"] {
        assert!(
            fs::metadata(shots.join(shot)).unwrap().len() > 1000,
            "{shot}"
        );
    }
    eprintln!("screenshots in {}", shots.display());
}

/// `pystrobe diff`: two recordings of one program whose hot and cold swap
/// shares. The diff has the second's shape; what grew (cold) is red, what
/// shrank (hot) blue, although the PIDs of the two recordings differ.
#[test]
fn diff_colours_what_grew_red_and_what_shrank_blue() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    // One script for both runs: its frames must be the same frames.
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    let before = record_script(&py, &script, "svg", &[], &["1.5", "3", "1"]);
    let after = record_script(&py, &script, "svg", &[], &["1.5", "1", "3"]);
    let (b, a, out) = (
        wd.join("before.txt"),
        wd.join("after.txt"),
        wd.join("diff.svg"),
    );
    for (path, rec) in [(&b, &before), (&a, &after)] {
        let text: String = rec
            .folded
            .iter()
            .map(|(s, c)| format!("{s} {c}\n"))
            .collect();
        fs::write(path, text).unwrap();
    }
    let r = run(["diff", s(&b), s(&a), "-o", s(&out)]);
    r.success_without_summary();
    // Colours show each frame's own samples against BEFORE: the leaves under
    // cold (spin...) are red, those under hot blue.
    let frames = svg_frames(&out);
    let widest = |prefix: &str| {
        frames
            .iter()
            .filter(|f| f.name.starts_with(prefix))
            .max_by_key(|f| f.samples)
            .unwrap_or_else(|| panic!("no {prefix} frame in the diff"))
            .clone()
    };
    let (hot, cold) = (widest("hot ("), widest("cold ("));
    let tone = |root: &SvgFrame| {
        let (mut red, mut blue) = (0, 0);
        for f in frames.iter().filter(|f| root.holds(f)) {
            let (r, b) = (i32::from(f.rgb.0), i32::from(f.rgb.2));
            if r > b + 20 {
                red += f.samples;
            } else if b > r + 20 {
                blue += f.samples;
            }
        }
        (red, blue)
    };
    let (hot_red, hot_blue) = tone(&hot);
    let (cold_red, cold_blue) = tone(&cold);
    assert!(
        hot_blue > 0 && hot_blue > hot_red,
        "hot shrank, yet its subtree has {hot_red} red and {hot_blue} blue samples"
    );
    assert!(
        cold_red > 0 && cold_red > cold_blue,
        "cold grew, yet its subtree has {cold_red} red and {cold_blue} blue samples"
    );
    // Process frames lost their PIDs, so the two runs line up.
    assert!(
        frames.iter().any(|f| f.name == "python3.11"),
        "{:?}",
        &frames[..3]
    );
}

/// Aggregation options: Python files shortened by default (relative to the
/// working directory, the standard library by module path), in full with
/// --full-filenames; -F shows every frame of a function at its first line,
/// and --nolineno leaves lines out.
#[test]
fn python_frame_naming_options() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    let relative = Path::new(&script.path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let def_line = |func: &str| -> u32 {
        let at = FORMATS_PY
            .lines()
            .position(|l| l.starts_with(&format!("def {func}(")))
            .unwrap();
        at as u32 + 1
    };
    for flags in [&[][..], &["--full-filenames"], &["-F"], &["--nolineno"]] {
        let out = wd.join("out.txt");
        let mut cmd = Command::new(PYSTROBE);
        cmd.args(["record", "-r", "500", "-f", "folded", "-o", s(&out)])
            .args(flags)
            .arg("--")
            .args(py.argv(&script, &["1"]))
            // The script is under the working directory: shown relative to it.
            .current_dir(wd.path());
        clean_python_env(&mut cmd);
        let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
        r.success();
        let stacks = read_folded(&out);
        let mut lines_of: BTreeMap<String, BTreeSet<Option<u32>>> = BTreeMap::new();
        let mut files: BTreeSet<String> = BTreeSet::new();
        for st in stacks.iter().filter(|st| has_python(st)) {
            for (_, f) in py_frames(st) {
                files.insert(f.file.to_string());
                if f.file.ends_with("formats.py") {
                    lines_of
                        .entry(f.name.to_string())
                        .or_default()
                        .insert(f.line);
                }
            }
        }
        let report = format!("{flags:?}: files {files:?}, lines {lines_of:?}");
        assert!(
            lines_of.contains_key("hot") && lines_of.contains_key("spin"),
            "{report}"
        );
        let full = flags.contains(&"--full-filenames");
        let script_file = if full {
            script.path.clone()
        } else {
            relative.clone()
        };
        assert!(files.contains(&script_file), "{report}");
        // The standard library's threading module, started by the worker.
        let threading = if full {
            "/usr/lib/python3.11/threading.py"
        } else {
            "threading.py"
        };
        assert!(files.contains(threading), "{report}");
        match flags.first().copied() {
            Some("-F") => {
                for func in ["hot", "cold", "spin"] {
                    assert_eq!(
                        lines_of[func],
                        BTreeSet::from([Some(def_line(func))]),
                        "{report}"
                    );
                }
            }
            Some("--nolineno") => {
                assert!(lines_of.values().flatten().all(Option::is_none), "{report}");
            }
            _ => {
                // spin runs its loop on two lines below its def.
                assert!(lines_of["spin"].len() >= 2, "{report}");
                assert!(
                    !lines_of["spin"].contains(&Some(def_line("spin"))),
                    "{report}"
                );
            }
        }
    }
}

/// Without -o, each format's file gets the conventional extension; the
/// flamegraph's title names what was profiled and its subtitle says how.
#[test]
fn default_file_names_and_flamegraph_titles() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    for (format, ext) in [
        ("flamegraph", ".svg"),
        ("folded", ".txt"),
        ("speedscope", ".speedscope.json"),
        ("chrometrace", ".trace.json"),
        ("pprof", ".pb.gz"),
    ] {
        let dir = Workdir::new();
        let mut cmd = Command::new(PYSTROBE);
        cmd.args(["record", "-r", "200", "-f", format, "--"])
            .args(py.argv(&script, &["0.3"]))
            .current_dir(dir.path());
        clean_python_env(&mut cmd);
        Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT).success();
        let files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 1, "{format}: {files:?}");
        assert!(
            files[0].starts_with("pystrobe-") && files[0].ends_with(ext),
            "{format}: {files:?}"
        );
        if format == "flamegraph" {
            let svg = fs::read_to_string(dir.path().join(&files[0])).unwrap();
            let title = format!("pystrobe: {} {}", py.exe, script.path);
            assert!(svg.contains(&title), "no title {title:?}");
            assert!(svg.contains(" samples at 200 Hz over "), "no subtitle");
        }
    }
}
