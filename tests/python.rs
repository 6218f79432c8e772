//! Acceptance tests for Python profiling: real interpreters (Debian chroots
//! for 3.9, 3.13, 3.14 and 3.15, and the host's 3.11, from
//! `scripts/pythons --list`) running scripts written for each test, sampled
//! by the real BPF program.
//!
//! Each test loops over every interpreter and reports all that failed at the
//! end (see `common::for_each_python`), so one run shows every failing
//! version. Needs root, BPF and the interpreters; under CI=true a test fails
//! when any of them is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Runs `pystrobe record -f folded -o OUT FLAGS... -- ARGV...` to completion
/// and returns what it said and the stacks it wrote.
fn launch(out: &Path, flags: &[&str], argv: &[String]) -> (Output, Vec<Stack>) {
    let mut cmd = Command::new(PYSTROBE);
    cmd.args(["record", "-f", "folded", "-o", s(out)])
        .args(flags)
        .arg("--")
        .args(argv);
    clean_python_env(&mut cmd);
    let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
    r.success();
    let stacks = read_folded(out);
    (r, stacks)
}

/// Starts `pystrobe record -a -f folded -o OUT FLAGS...` and waits until it samples.
fn start_all(out: &Path, flags: &[&str]) -> Pystrobe {
    let mut args = vec!["-a", "-f", "folded", "-o", s(out)];
    args.extend_from_slice(flags);
    start_recording(&args)
}

/// The stacks that have Python frames.
fn python_stacks(stacks: &[Stack]) -> Vec<Stack> {
    stacks.iter().filter(|s| has_python(s)).cloned().collect()
}

/// Runs `exe -c pass`, which must succeed.
fn assert_runs(exe: &Path) {
    let out = Command::new(exe)
        .args(["-c", "pass"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{} -c pass failed ({}): {}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `comm` of a process running `exe`: its file name, cut to 15 bytes.
fn comm_of(exe: &str) -> String {
    let name = exe.rsplit('/').next().unwrap();
    name.chars().take(15).collect()
}

// ---------------------------------------------------------------------------
// 1. Shares of time between two functions

/// `Worker.hot` gets 70 % and `warm` 30 % of every 100 ms of wall time.
/// `shares.py SECONDS`.
const SHARES_PY: &str = r#"import sys
import time


class Worker:
    def hot(self, until):
        n = 0
        while time.monotonic() < until:  # HOT-LOOP
            n += 1  # HOT-LOOP
        return n


def warm(until):
    n = 0
    while time.monotonic() < until:  # WARM-LOOP
        n += 1  # WARM-LOOP
    return n


def main():
    worker = Worker()
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        start = time.monotonic()
        worker.hot(start + 0.070)
        warm(start + 0.100)


main()
"#;

#[test]
fn hot_and_warm_shares() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let hot_lines = marked_lines(SHARES_PY, "# HOT-LOOP");
    let warm_lines = marked_lines(SHARES_PY, "# WARM-LOOP");
    for_each_python("hot_and_warm_shares", &pythons, |py| {
        let wd = Workdir::new();
        let script = py.stage(&wd, "shares.py", SHARES_PY.as_bytes());
        let out = wd.join("out.txt");
        let (r, stacks) = launch(&out, &["-r", "500"], &py.argv(&script, &["3"]));
        let stacks = python_stacks(&stacks);
        let (hot_name, wrong_hot) = if py.has_qualnames() {
            ("Worker.hot", "hot")
        } else {
            ("hot", "Worker.hot")
        };
        let context = || {
            format!(
                "{}\nmost common Python stacks:\n{}",
                r.stderr.trim(),
                top(&stacks, 12)
            )
        };

        let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new(); // (samples, in loop)
        for stack in &stacks {
            let frames = py_frames(stack);
            let names: Vec<&str> = frames.iter().map(|(_, f)| f.name).collect();
            assert!(
                !names.contains(&wrong_hot),
                "frame named {wrong_hot:?} (expected {hot_name:?} on Python {}): {}",
                py.version,
                stack.0.join(";")
            );
            let Some(inner) = innermost_py(stack) else {
                continue;
            };
            let (lines, name) = if inner.name == hot_name {
                (&hot_lines, hot_name)
            } else if inner.name == "warm" {
                (&warm_lines, "warm")
            } else {
                continue;
            };
            assert_eq!(
                inner.file,
                script.path,
                "{name} in the wrong file: {}",
                stack.0.join(";")
            );
            // Python frames only, outermost first: <module>, main, then the function.
            assert_eq!(
                names,
                ["<module>", "main", name],
                "unexpected Python frames around {name}: {}\n{}",
                stack.0.join(";"),
                context()
            );
            assert_eq!(
                stack.0.len(),
                4,
                "not Python frames only: {}",
                stack.0.join(";")
            );
            let e = counts.entry(name).or_default();
            e.0 += stack.1;
            if inner.line.is_some_and(|l| lines.contains(&l)) {
                e.1 += stack.1;
            }
        }
        let (hot, hot_in_loop) = counts.get(hot_name).copied().unwrap_or_default();
        let (warm, warm_in_loop) = counts.get("warm").copied().unwrap_or_default();
        assert!(
            hot >= 100 && warm >= 40,
            "too few samples: {hot} with {hot_name} innermost, {warm} with warm innermost\n{}",
            context()
        );
        for (name, n, in_loop, lines) in [
            (hot_name, hot, hot_in_loop, &hot_lines),
            ("warm", warm, warm_in_loop, &warm_lines),
        ] {
            assert!(
                in_loop as f64 >= 0.9 * n as f64,
                "only {in_loop} of {n} samples of {name} are at its inner-loop lines {lines:?}\n{}",
                context()
            );
        }
        let share = hot as f64 / (hot + warm) as f64;
        eprintln!(
            "hot_and_warm_shares: {}: {hot_name} {hot} ({hot_in_loop} in loop), warm {warm} \
             ({warm_in_loop} in loop): {:.1} %",
            py.name,
            share * 100.0
        );
        assert!(
            (share - 0.70).abs() <= 0.05,
            "{hot_name} has {:.1} % of the hot+warm samples ({hot} vs {warm}), expected 70 ± 5 %\n{}",
            share * 100.0,
            context()
        );
    });
}

// ---------------------------------------------------------------------------
// 2. Deep recursion

/// `recurse` 300 deep, spinning at the bottom. `deep.py SECONDS`.
const DEEP_PY: &str = r#"import sys
import time

sys.setrecursionlimit(5000)


def recurse(depth, until):  # RECURSE-FIRST
    if depth == 0:
        n = 0
        while time.monotonic() < until:  # SPIN
            n += 1  # SPIN
        return n
    return recurse(depth - 1, until) + 1  # RECURSE-LAST


recurse(300, time.monotonic() + float(sys.argv[1]))
"#;

#[test]
fn deep_recursion_is_truncated_with_marker() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let first = marked_lines(DEEP_PY, "# RECURSE-FIRST")[0];
    let last = marked_lines(DEEP_PY, "# RECURSE-LAST")[0];
    let spin = marked_lines(DEEP_PY, "# SPIN");
    for_each_python("deep_recursion_is_truncated_with_marker", &pythons, |py| {
        let wd = Workdir::new();
        let script = py.stage(&wd, "deep.py", DEEP_PY.as_bytes());
        let out = wd.join("out.txt");
        let (r, stacks) = launch(&out, &["-r", "500"], &py.argv(&script, &["2.5"]));
        let stacks = python_stacks(&stacks);
        let n = total(&stacks);
        assert!(
            n >= 100,
            "only {n} Python samples:\n{}\n{}",
            r.stderr.trim(),
            top(&stacks, 5)
        );
        let truncated: Vec<&Stack> = stacks.iter().filter(|s| s.0[1] == PY_TRUNCATED).collect();
        let t: u64 = truncated.iter().map(|s| s.1).sum();
        eprintln!(
            "deep_recursion_is_truncated_with_marker: {}: {t} of {n} Python samples truncated",
            py.name
        );
        assert!(
            t as f64 >= 0.9 * n as f64,
            "only {t} of {n} Python samples have {PY_TRUNCATED} right after the process frame \
             (the stack is 302 Python frames deep); most common stacks:\n{}",
            top(&stacks, 8)
        );
        // The outermost frames are the ones dropped: the innermost frame,
        // where the time goes, is kept.
        let at_bottom: u64 = truncated
            .iter()
            .filter(|s| innermost_py(s).is_some_and(|f| f.line.is_some_and(|l| spin.contains(&l))))
            .map(|s| s.1)
            .sum();
        assert!(
            at_bottom as f64 >= 0.9 * t as f64,
            "only {at_bottom} of {t} truncated stacks end in the spin loop at lines {spin:?} \
             (were the innermost frames dropped?):\n{}",
            top(&stacks, 8)
        );
        for stack in truncated {
            for f in &stack.0[2..] {
                let ok = py_frame(f).is_some_and(|p| {
                    p.name == "recurse"
                        && p.file == script.path
                        && p.line.is_some_and(|l| (first..=last).contains(&l))
                });
                assert!(
                    ok,
                    "frame {f:?} in a truncated stack is not `recurse ({}:{first}..{last})`:\n{}",
                    script.path,
                    stack.0.join(";")
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------
// 3. Threads

/// Four threads, each spinning in a function of its own. `threads.py SECONDS`.
fn threads_py() -> String {
    let mut py = String::from("import sys\nimport threading\nimport time\n\n");
    for i in 1..=4 {
        py += &format!(
            "\ndef f{i}(until):  # F{i}-FIRST\n    n = 0\n    while time.monotonic() < until:\n        n += 1\n    return n  # F{i}-LAST\n\n"
        );
    }
    py += r#"
def main():
    until = time.monotonic() + float(sys.argv[1])
    threads = [threading.Thread(target=f, args=(until,)) for f in (f1, f2, f3, f4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


main()
"#;
    py
}

#[test]
fn threads_hold_their_own_functions() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let source = threads_py();
    // Each function's lines, def to return.
    let spans: Vec<(u32, u32)> = (1..=4)
        .map(|i| {
            (
                marked_lines(&source, &format!("# F{i}-FIRST"))[0],
                marked_lines(&source, &format!("# F{i}-LAST"))[0],
            )
        })
        .collect();
    let names = ["f1", "f2", "f3", "f4"];
    for_each_python("threads_hold_their_own_functions", &pythons, |py| {
        let wd = Workdir::new();
        let script = py.stage(&wd, "threads.py", source.as_bytes());
        let out = wd.join("out.txt");
        let (r, stacks) = launch(&out, &["-r", "500"], &py.argv(&script, &["2.5"]));
        let stacks = python_stacks(&stacks);
        let mut per_fn = [0u64; 4];
        for stack in &stacks {
            let frames = py_frames(stack);
            let held: Vec<usize> = frames
                .iter()
                .filter_map(|(_, f)| names.iter().position(|n| *n == f.name))
                .collect();
            if held.is_empty() {
                continue;
            }
            let line = stack.0.join(";");
            assert!(
                held.len() == 1,
                "a stack with more than one of f1..f4: {line}"
            );
            let i = held[0];
            let (_, inner) = *frames.last().unwrap();
            assert!(
                inner.name == names[i] && inner.file == script.path,
                "{}'s stack does not end in {} ({}): {line}",
                names[i],
                names[i],
                script.path
            );
            let (first, last) = spans[i];
            assert!(
                inner.line.is_some_and(|l| (first..=last).contains(&l)),
                "{} outside its lines {first}..{last}: {line}",
                names[i]
            );
            // The thread's own stack: threading's bootstrap, then the function.
            for (_, f) in &frames[..frames.len() - 1] {
                assert!(
                    f.file == "threading.py" || f.file.ends_with("/threading.py"),
                    "{} is called from a frame outside threading.py: {line}",
                    names[i]
                );
            }
            assert_eq!(
                frames.len() + 1,
                stack.0.len(),
                "not Python frames only: {line}"
            );
            per_fn[i] += stack.1;
        }
        eprintln!(
            "threads_hold_their_own_functions: {}: f1..f4 {per_fn:?}",
            py.name
        );
        for (i, n) in per_fn.iter().enumerate() {
            assert!(
                *n >= 10,
                "{} has {n} samples (per function: {per_fn:?}):\n{}\n{}",
                names[i],
                r.stderr.trim(),
                top(&stacks, 12)
            );
        }
    });
}

// ---------------------------------------------------------------------------
// 4. Native mode: C under Python

/// c_spin → inner_c, a busy loop; no libc calls.
const SPIN_C: &str = r#"
static volatile unsigned long sink;

__attribute__((noinline, noclone)) static unsigned long inner_c(unsigned long n) {
    unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++) {
        x += (i * i) ^ (x >> 3);
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

__attribute__((noinline, noclone)) unsigned long c_spin(unsigned long n) {
    unsigned long r = inner_c(n);
    sink += r;
    return r + 1;
}
"#;

/// `ctypes_spin.py LIBRARY SECONDS`: calls c_spin through ctypes from call_c,
/// after 0.3 s of Python alone (samples taken before pystrobe has found the
/// interpreter have no Python frames; that takes ~0.1 s).
const CTYPES_PY: &str = r#"import ctypes
import sys
import time


def call_c(lib, n):
    return lib.c_spin(n)  # CALL-C


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.c_spin.restype = ctypes.c_ulong
    lib.c_spin.argtypes = [ctypes.c_ulong]
    # Python only at first: pystrobe finds the interpreter before C runs.
    warm_up = time.monotonic() + 0.3
    while time.monotonic() < warm_up:
        pass
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        call_c(lib, 3000000)


main()
"#;

#[test]
fn native_mode_puts_c_under_python() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let build = Workdir::new();
    let lib = build.compile(
        "libspin.so",
        SPIN_C,
        &["-O2", "-shared", "-fPIC", "-nostdlib"],
    );
    let lib_bytes = fs::read(&lib).unwrap();
    let call_line = marked_lines(CTYPES_PY, "# CALL-C")[0];
    for_each_python("native_mode_puts_c_under_python", &pythons, |py| {
        let wd = Workdir::new();
        let script = py.stage(&wd, "ctypes_spin.py", CTYPES_PY.as_bytes());
        let so = py.stage(&wd, "libspin.so", &lib_bytes);
        let out = wd.join("out.txt");
        let (r, stacks) = launch(
            &out,
            &["-n", "-r", "500"],
            &py.argv(&script, &[&so.path, "2.5"]),
        );
        let context = || {
            format!(
                "{}\nmost common stacks:\n{}",
                r.stderr.trim(),
                top(&stacks, 10)
            )
        };

        let (mut in_c, mut in_c_without_python) = (0, 0);
        let (mut mixed, mut complete) = (0, 0);
        for stack in &stacks {
            let line = stack.0.join(";");
            let pyf = py_frames(stack);
            // No eval loop between two consecutive Python frames.
            for w in pyf.windows(2) {
                let between = &stack.0[w[0].0 + 1..w[1].0];
                assert!(
                    !between.iter().any(|f| f == "_PyEval_EvalFrameDefault"),
                    "_PyEval_EvalFrameDefault between two Python frames: {line}"
                );
            }
            if let Some(at) = stack.0.iter().position(|f| f == "c_spin") {
                in_c += stack.1;
                if pyf.is_empty() {
                    // Only before pystrobe found the interpreter; counted below.
                    in_c_without_python += stack.1;
                    continue;
                }
                let above = pyf.iter().rev().find(|(i, _)| *i < at).map(|(_, f)| *f);
                assert!(
                    above.is_some_and(|f| f.name == "call_c"
                        && f.file == script.path
                        && f.line == Some(call_line)),
                    "the nearest Python frame above c_spin is not `call_c ({}:{call_line})`: {line}",
                    script.path
                );
                if let Some(inner) = stack.0.iter().position(|f| f == "inner_c") {
                    assert_eq!(inner, at + 1, "inner_c not right under c_spin: {line}");
                }
            }
            let native = stack.0[1..]
                .iter()
                .any(|f| py_frame(f).is_none() && f != PY_TRUNCATED && !is_kernel(f));
            if !pyf.is_empty() && native {
                mixed += stack.1;
                if !is_truncated(stack) && stack.0[1] == "_start" {
                    complete += stack.1;
                }
            }
        }
        eprintln!(
            "native_mode_puts_c_under_python: {}: c_spin {in_c} ({in_c_without_python} without \
             Python frames); complete {complete} of {mixed}",
            py.name
        );
        assert!(in_c >= 100, "only {in_c} samples in c_spin\n{}", context());
        assert!(
            in_c_without_python as f64 <= 0.02 * in_c as f64,
            "{in_c_without_python} of {in_c} samples in c_spin have no Python frames, \
             though C runs only after 0.3 s of Python\n{}",
            context()
        );
        assert!(
            stacks.iter().any(|s| s.0.iter().any(|f| f == "inner_c")),
            "inner_c never appears\n{}",
            context()
        );
        assert!(
            complete as f64 >= 0.95 * mixed as f64,
            "only {complete} of {mixed} samples with Python and native frames are complete \
             (no [truncated], _start first)\n{}",
            context()
        );
    });
}

// ---------------------------------------------------------------------------
// 5. Interpreters pystrobe cannot use

/// Spins in Python. `busy.py SECONDS`.
const BUSY_PY: &str = r#"import sys
import time


def busy(until):
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


busy(time.monotonic() + float(sys.argv[1]))
"#;

/// Replaces the one occurrence of `from` in `data` by `to` (same length).
fn replace_once(data: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = data
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "{:?} occurs {} times in the interpreter, expected once",
        String::from_utf8_lossy(from),
        at.len()
    );
    data[at[0]..at[0] + to.len()].copy_from_slice(to);
}

/// The file offset of the `Py_Version` symbol's value, through the section headers.
fn py_version_offset(data: &[u8]) -> usize {
    use object::{Object, ObjectSection, ObjectSymbol};
    let file = object::File::parse(data).expect("parsing the interpreter as ELF");
    let sym = file
        .symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.name() == Ok("Py_Version"))
        .expect("the interpreter has no Py_Version symbol");
    let addr = sym.address();
    let section = file
        .sections()
        .find(|sec| sec.address() <= addr && addr + 4 <= sec.address() + sec.size())
        .unwrap_or_else(|| panic!("no section holds Py_Version at {addr:#x}"));
    let (offset, size) = section
        .file_range()
        .unwrap_or_else(|| panic!("Py_Version at {addr:#x} is in a section without file data"));
    let at = offset + (addr - section.address());
    assert!(at + 4 <= offset + size);
    at as usize
}

#[test]
fn unusable_interpreter_gives_native_stacks_and_one_warning() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let Some(host) = host_static(&pythons) else {
        return;
    };
    let wd = Workdir::new();
    let original = fs::read(&host.exe).unwrap();

    // (a) No _PyRuntime symbol nor .PyRuntime section by those names.
    let mut no_runtime = original.clone();
    replace_once(&mut no_runtime, b"\0_PyRuntime\0", b"\0_PyRuntimX\0");
    replace_once(&mut no_runtime, b"\0.PyRuntime\0", b"\0.PyRuntimX\0");

    // (b) Py_Version (PY_VERSION_HEX, 0x030b..) says 3.8.
    let mut old_version = original.clone();
    let at = py_version_offset(&original);
    let hex = u32::from_le_bytes(original[at..at + 4].try_into().unwrap());
    assert_eq!(hex >> 16, 0x030b, "Py_Version is {hex:#x}, not 3.11");
    old_version[at + 2] = 8;

    let mut variants: Vec<(&str, PathBuf)> = Vec::new();
    for (name, data) in [
        ("python3.11-noruntime", &no_runtime),
        ("python3.11-v38", &old_version),
    ] {
        let exe = wd.join(name);
        fs::write(&exe, data).unwrap();
        fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_runs(&exe);
        variants.push((name, exe));
    }
    let script = host.stage(&wd, "busy.py", BUSY_PY.as_bytes());

    let mut failures = Vec::new();
    for (name, exe) in &variants {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let out = wd.join(&format!("{name}.txt"));
            let argv = [s(exe).to_string(), script.path.clone(), "2".to_string()];
            let (r, stacks) = launch(&out, &["-r", "200"], &argv);
            let pids: BTreeSet<u32> = stacks.iter().map(root_pid).collect();
            assert_eq!(
                pids.len(),
                1,
                "launch mode, yet: {:?}",
                per_process(&stacks)
            );
            let pid = *pids.iter().next().unwrap();
            let mine: Vec<&str> = warnings(&r.stderr)
                .into_iter()
                .filter(|w| w.contains(&format!(" ({pid}): ")))
                .collect();
            assert_eq!(
                mine.len(),
                1,
                "expected one warning about process {pid}; stderr:\n{}",
                r.stderr
            );
            assert!(
                mine[0].ends_with("; showing native stacks only"),
                "{}",
                mine[0]
            );
            for stack in &stacks {
                assert!(
                    !has_python(stack),
                    "a Python frame for an unusable interpreter: {}",
                    stack.0.join(";")
                );
            }
            let n = total(&stacks);
            let native = count_where(&stacks, |st| {
                st.0.iter()
                    .any(|f| f == "_PyEval_EvalFrameDefault" || f == "Py_BytesMain")
            });
            assert!(
                n >= 100 && native as f64 >= 0.5 * n as f64,
                "only {native} of {n} samples have interpreter frames \
                 (_PyEval_EvalFrameDefault or Py_BytesMain):\n{}\n{}",
                r.stderr.trim(),
                top(&stacks, 8)
            );
            eprintln!("{name}: {}", mine[0]);
        }));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| format!("{e:?}"));
            failures.push(format!("=== {name}:\n{msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// 6. Short-lived processes

/// 0.4 s in short_lived_fn, then exits.
const SHORT_PY: &str = r#"import time


def short_lived_fn(until):
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


short_lived_fn(time.monotonic() + 0.4)
"#;

#[test]
fn short_lived_process_is_named() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let wd = Workdir::new();
    let out = wd.join("out.txt");
    let scripts: Vec<Staged> = pythons
        .iter()
        .map(|py| py.stage(&wd, "short.py", SHORT_PY.as_bytes()))
        .collect();

    // One recording; each interpreter starts once the previous one has
    // exited, the first ~1 s after sampling began.
    let p = start_all(&out, &["-r", "500", "-d", "60"]);
    std::thread::sleep(Duration::from_secs(1));
    let mut runs = Vec::new();
    for (py, script) in pythons.iter().zip(&scripts) {
        let mut proc = spawn_high_priority(&mut py.command(script, &[]));
        let status = proc.wait_exit(Duration::from_secs(20));
        runs.push((proc.pid(), status));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (r, stacks) = stop(p, &out);

    let mut results = pythons.iter().zip(&scripts).zip(&runs);
    for_each_python("short_lived_process_is_named", &pythons, |py| {
        let ((_, script), &(pid, status)) = results.next().unwrap();
        assert!(status.success(), "the script failed: {status}");
        let mine: Vec<Stack> = stacks
            .iter()
            .filter(|s| root_pid(s) == pid)
            .cloned()
            .collect();
        let named = count_where(&mine, |st| {
            py_frames(st)
                .iter()
                .any(|(_, f)| f.name == "short_lived_fn" && f.file == script.path)
        });
        // 0.4 s at 500 Hz: 200 samples; at least half of them once the
        // interpreter has been found (within ~0.2 s).
        assert!(
            named >= 100,
            "{named} samples in `short_lived_fn ({}:...)` for process {pid}, expected at least \
             100 of the 200 that 0.4 s at 500 Hz gives ({} samples of the process):\n{}\n{}",
            script.path,
            total(&mine),
            r.stderr.trim(),
            top(&mine, 8)
        );
        let comm = comm_of(&py.exe);
        for st in &mine {
            if has_python(st) {
                assert_eq!(
                    process_frame(&st.0[0]),
                    (comm.clone(), pid),
                    "Python samples under the wrong process frame: {}",
                    st.0.join(";")
                );
            }
        }
        eprintln!(
            "short_lived_process_is_named: {}: {named} of {} samples in short_lived_fn",
            py.name,
            total(&mine)
        );
    });
}

// ---------------------------------------------------------------------------
// 7. A thread started late, in a PID namespace

/// Checks it is PID 1 of its namespace, sleeps 1 s, then runs late_thread_fn
/// in a new thread for 0.5 s while the main thread sleeps.
const LATE_PY: &str = r#"import os
import sys
import threading
import time

if os.getpid() != 1:
    sys.exit(f"not the first process of a new PID namespace: PID {os.getpid()}")


def late_thread_fn(until):
    n = 0
    while time.monotonic() < until:  # LATE-LOOP
        n += 1  # LATE-LOOP
    return n


time.sleep(1)
t = threading.Thread(target=late_thread_fn, args=(time.monotonic() + 0.5,))
t.start()
time.sleep(0.6)
t.join()
"#;

#[test]
fn new_thread_in_pid_namespace() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let loop_lines = marked_lines(LATE_PY, "# LATE-LOOP");
    for_each_python("new_thread_in_pid_namespace", &pythons, |py| {
        let wd = Workdir::new();
        let script = py.stage(&wd, "late.py", LATE_PY.as_bytes());
        let out = wd.join("out.txt");
        let p = start_all(&out, &["-r", "1000", "-d", "30"]);
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child"])
            .args(py.argv(&script, &[]));
        clean_python_env(&mut cmd);
        let mut proc = spawn_high_priority(&mut cmd);
        let status = proc.wait_exit(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(200));
        let (r, stacks) = stop(p, &out);
        assert!(status.success(), "unshare ... python failed: {status}");

        // The interpreter is unshare's child: find it by the script's frames.
        let ours = |st: &Stack| py_frames(st).iter().any(|(_, f)| f.file == script.path);
        let pids: BTreeSet<u32> = stacks.iter().filter(|st| ours(st)).map(root_pid).collect();
        assert_eq!(
            pids.len(),
            1,
            "expected the script's frames in one process, got {pids:?}:\n{}",
            r.stderr.trim()
        );
        let pid = *pids.iter().next().unwrap();
        let mine: Vec<Stack> = stacks
            .iter()
            .filter(|st| root_pid(st) == pid)
            .cloned()
            .collect();
        let late: Vec<&Stack> = mine
            .iter()
            .filter(|st| innermost_py(st).is_some_and(|f| f.name == "late_thread_fn"))
            .collect();
        let n: u64 = late.iter().map(|st| st.1).sum();
        assert!(
            n >= 300,
            "late_thread_fn has {n} samples; 0.5 s at 1000 Hz could give 500 and at least 300 \
             are expected (the thread picked up within ~100 ms):\n{}\nstacks of the process:\n{}",
            r.stderr.trim(),
            top(&mine, 12)
        );
        eprintln!(
            "new_thread_in_pid_namespace: {}: {n} samples in late_thread_fn",
            py.name
        );
        for st in late {
            let line = st.0.join(";");
            let frames = py_frames(st);
            assert_eq!(
                frames.len() + 1,
                st.0.len(),
                "not Python frames only: {line}"
            );
            let (_, inner) = *frames.last().unwrap();
            assert!(
                inner.file == script.path && inner.line.is_some_and(|l| loop_lines.contains(&l)),
                "late_thread_fn not at its loop {loop_lines:?} in {}: {line}",
                script.path
            );
            for (_, f) in &frames[..frames.len() - 1] {
                assert!(
                    f.file == "threading.py" || f.file.ends_with("/threading.py"),
                    "late_thread_fn called from outside threading.py: {line}"
                );
            }
        }
    });
}

/// An interpreter is found by what it defines, not by its name: a copy of
/// the static python3.11 called `myservice` (as an application embedding
/// CPython might be) still gets its Python frames.
#[test]
fn renamed_interpreter_is_still_found() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    let Some(host) = host_static(&pythons) else {
        return;
    };
    let wd = Workdir::new();
    let exe = wd.join("myservice");
    fs::copy(&host.exe, &exe).unwrap();
    let script = host.stage(&wd, "busy.py", BUSY_PY.as_bytes());
    let out = wd.join("renamed.txt");
    let argv = [s(&exe).to_string(), script.path.clone(), "2".to_string()];
    let (r, stacks) = launch(&out, &["-r", "200"], &argv);
    assert!(
        warnings(&r.stderr).is_empty(),
        "unexpected warnings: {}",
        r.stderr
    );
    let total: u64 = stacks.iter().map(|s| s.1).sum();
    let busy: u64 = stacks
        .iter()
        .filter(|s| s.0.iter().any(|f| f.starts_with("busy (")))
        .map(|s| s.1)
        .sum();
    assert!(
        busy * 10 >= total * 8,
        "only {busy} of {total} samples show the Python function busy: {stacks:?}"
    );
}
