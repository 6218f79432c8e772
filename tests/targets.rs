//! Choosing what to profile: descendants (-s) across a reloading server's
//! restarts, launched commands run as the sudo user, --python and --match
//! among several processes, a process in other PID and mount namespaces,
//! thread frames, a reused PID, and a churn of short-lived processes.
//!
//! Real interpreters (scripts/pythons) running the scripts in
//! tests/workloads, sampled by the real BPF program. Needs root, BPF and the
//! interpreters; under CI=true a test fails when any is missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const RELOADER_PY: &str = include_str!("workloads/reloader.py");
const LAUNCHED_PY: &str = include_str!("workloads/launched.py");
const NAMED_PY: &str = include_str!("workloads/named.py");
const SHORT_PY: &str = include_str!("workloads/short.py");

/// Samples per process whose innermost Python frame is `func` in `file`.
fn samples_in(stacks: &[Stack], func: &str, file: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for st in stacks {
        if py_frames(st)
            .iter()
            .any(|(_, f)| f.name == func && f.file == file)
        {
            *out.entry(root_pid(st)).or_default() += st.1;
        }
    }
    out
}

/// The PIDs in the profile's process frames.
fn pids_in(stacks: &[Stack]) -> BTreeSet<u32> {
    stacks.iter().map(root_pid).collect()
}

/// Waits until `path` has at least `n` lines; returns them.
fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not reach {n} lines within 20 s: {lines:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The seed workflow: a dev server's autoreloader keeps a parent and serves
/// from a child that it kills and starts anew on every code change. One
/// `record -p PARENT -s` covers every child, the one running when recording
/// starts and each started after it, and ends by itself when they are gone.
#[test]
fn autoreloader_children_are_followed_across_reloads() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "reloader.py", RELOADER_PY.as_bytes());
    let trigger = wd.join("trigger");
    let pidfile = wd.join("children");
    fs::write(&trigger, "0").unwrap();
    let out = wd.join("out.txt");
    const RELOADS: usize = 3;

    let mut cmd = py.command(&script, &[s(&trigger), &RELOADS.to_string(), s(&pidfile)]);
    cmd.env("LAST_CHILD_S", "0.6");
    let mut parent = Proc::spawn(&mut cmd);
    wait_for_lines(&pidfile, 1);

    // No -d: the recording ends when the parent and every child are gone.
    let p = start_recording(&[
        "-p",
        &parent.pid().to_string(),
        "-s",
        "-r",
        "200",
        "-f",
        "folded",
        "-o",
        s(&out),
    ]);
    for reload in 1..=RELOADS {
        std::thread::sleep(Duration::from_millis(600));
        fs::write(&trigger, reload.to_string()).unwrap();
        // The next change must not come before this reload happened.
        wait_for_lines(&pidfile, reload + 1);
    }
    assert!(parent.wait_exit(Duration::from_secs(20)).success());
    let r = p.wait(Duration::from_secs(20));
    r.success();
    let stacks = read_folded(&out);

    let children: Vec<u32> = wait_for_lines(&pidfile, RELOADS + 1)
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(children.len(), RELOADS + 1);
    let served = samples_in(&stacks, "serve_request", &script.path);
    for (i, child) in children.iter().enumerate() {
        // ~0.6 s at 200 Hz: ~120 samples, less the interpreter's start-up.
        let n = served.get(child).copied().unwrap_or(0);
        assert!(
            n >= 40,
            "child {i} (PID {child}) has {n} samples in serve_request, expected at least 40; \
             samples in serve_request by PID: {served:?}\n{}\n{}",
            r.stderr.trim(),
            top(&stacks, 12)
        );
    }
    // Only the children serve; the parent is in the profile too, asleep.
    let servers: BTreeSet<u32> = served.keys().copied().collect();
    assert_eq!(servers, children.iter().copied().collect());
}

/// Under sudo a launched command runs as the invoking user, with their
/// groups and home, and the output file is theirs; -s follows the command's
/// children, and without -s they are not profiled.
#[test]
fn launched_command_runs_as_the_sudo_user() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    // The unprivileged user must reach the script and write its report.
    fs::set_permissions(wd.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let script = py.stage(&wd, "launched.py", LAUNCHED_PY.as_bytes());
    const NOBODY: u32 = 65534;

    for follow in [true, false] {
        let report = wd.join(&format!("report-{follow}.json"));
        let out = wd.join(&format!("out-{follow}.txt"));
        let mut cmd = Command::new(PYSTROBE);
        cmd.args(["record", "-r", "500", "-f", "folded", "-o", s(&out)]);
        if follow {
            cmd.arg("-s");
        }
        cmd.arg("--").args(py.argv(&script, &[s(&report)]));
        cmd.env("SUDO_UID", NOBODY.to_string())
            .env("SUDO_GID", NOBODY.to_string())
            .env("SUDO_USER", "nobody");
        clean_python_env(&mut cmd);
        let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
        r.success();

        let report = fs::read_to_string(&report).expect("the command wrote its report");
        let field = |name: &str| -> String {
            let at = report.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
            report[at..]
                .split([',', '}'])
                .next()
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(field("uid"), NOBODY.to_string(), "{report}");
        assert_eq!(field("gid"), NOBODY.to_string(), "{report}");
        assert_eq!(field("user"), "\"nobody\"", "{report}");
        // Root's supplementary groups are not kept.
        assert!(
            !field("groups").contains('0') || field("groups") == "[65534]",
            "{report}"
        );
        let meta = fs::symlink_metadata(&out).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (NOBODY, NOBODY),
            "the output belongs to the invoking user"
        );

        let child: u32 = field("child").parse().unwrap();
        let stacks = read_folded(&out);
        let parent_work = samples_in(&stacks, "parent_work", &script.path);
        let child_work = samples_in(&stacks, "child_work", &script.path);
        assert_eq!(parent_work.len(), 1, "{}", top(&stacks, 10));
        assert!(parent_work.values().sum::<u64>() >= 100, "{parent_work:?}");
        if follow {
            // 0.6 s at 500 Hz: ~300 samples.
            let n = child_work.get(&child).copied().unwrap_or(0);
            assert!(
                n >= 100,
                "-s: the child {child} has {n} samples in child_work:\n{}",
                top(&stacks, 10)
            );
        } else {
            assert!(
                !pids_in(&stacks).contains(&child),
                "without -s the child {child} was profiled:\n{}",
                top(&stacks, 10)
            );
        }
    }
}

/// Processes for the selection tests: Python ones working in a named
/// function, and a native one, with a marker on some command lines.
struct Mix {
    _wd: Workdir,
    script: Staged,
    procs: Vec<(String, Proc)>,
    busy: std::path::PathBuf,
    marker: String,
    py: Python,
}

impl Mix {
    fn new(py: &Python) -> Mix {
        let wd = Workdir::new();
        let script = py.stage(&wd, "named.py", NAMED_PY.as_bytes());
        // The marker is in the native program's file name, hence its kernel
        // name, which the kernel matches at exec.
        let marker = format!("mk{}", std::process::id() % 100000);
        let busy = wd.compile(&format!("{marker}busy"), BUSY_C, &["-O1"]);
        Mix {
            _wd: wd,
            script,
            procs: Vec::new(),
            busy,
            marker,
            py: py.clone(),
        }
    }

    /// Starts named.py working in `func`, with `extra` arguments.
    fn python(&mut self, func: &str, extra: &[&str]) -> u32 {
        let mut args = vec![func];
        args.extend_from_slice(extra);
        let p = Proc::spawn(&mut self.py.command(&self.script, &args));
        let pid = p.pid();
        self.procs.push((func.to_string(), p));
        pid
    }

    fn native(&mut self) -> u32 {
        let p = Proc::spawn(&mut Command::new(&self.busy));
        let pid = p.pid();
        self.procs.push(("native".to_string(), p));
        pid
    }
}

/// `--python`: the Python processes running when recording starts and those
/// started during it; no other process.
#[test]
fn python_selects_python_processes_as_they_appear() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let mut mix = Mix::new(&py);
    let before = mix.python("alpha_fn", &[]);
    let native = mix.native();
    let wd = Workdir::new();
    let out = wd.join("out.txt");
    let p = start_recording(&["--python", "-r", "200", "-f", "folded", "-o", s(&out)]);
    std::thread::sleep(Duration::from_millis(300));
    let after = mix.python("beta_fn", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let (r, stacks) = stop(p, &out);

    let pids = pids_in(&stacks);
    assert!(
        !pids.contains(&native),
        "--python profiled the native process {native}"
    );
    for (pid, func) in [(before, "alpha_fn"), (after, "beta_fn")] {
        let n = samples_in(&stacks, func, &mix.script.path)
            .get(&pid)
            .copied()
            .unwrap_or(0);
        assert!(
            n >= 50,
            "{func} ({pid}): {n} samples\n{}\n{}",
            r.stderr.trim(),
            top(&stacks, 10)
        );
    }
    // Every process in the profile is a Python one.
    for pid in &pids {
        assert!(
            stacks
                .iter()
                .filter(|st| root_pid(st) == *pid)
                .any(has_python),
            "process {pid} has no Python frames:\n{}",
            top(&stacks, 10)
        );
    }
}

/// `--match`: by command line (checked by pystrobe) and by process name
/// (checked in the kernel at exec), before and during the recording; with
/// --python, only the Python ones among them. A pattern that matches nothing
/// says so and the recording goes on.
#[test]
fn match_selects_by_name_and_command_line() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let mut mix = Mix::new(&py);
    let marker = mix.marker.clone();
    let tagged_arg = format!("--role={marker}");
    let py_tagged = mix.python("alpha_fn", &[&tagged_arg]);
    let py_plain = mix.python("beta_fn", &[]);
    let native_tagged = mix.native();
    let wd = Workdir::new();

    for python_too in [false, true] {
        let out = wd.join(&format!("out-{python_too}.txt"));
        let mut args = vec![
            "--match",
            &marker,
            "-r",
            "200",
            "-f",
            "folded",
            "-o",
            s(&out),
        ];
        if python_too {
            args.push("--python");
        }
        let p = start_recording(&args);
        std::thread::sleep(Duration::from_millis(300));
        let py_tagged_later = mix.python("gamma_fn", &[&tagged_arg]);
        let native_tagged_later = mix.native();
        std::thread::sleep(Duration::from_millis(1500));
        let (r, stacks) = stop(p, &out);
        let pids = pids_in(&stacks);
        let report = format!("{}\n{}", r.stderr.trim(), top(&stacks, 12));

        assert!(
            !pids.contains(&py_plain),
            "{py_plain} has no marker:\n{report}"
        );
        for pid in [py_tagged, py_tagged_later] {
            assert!(pids.contains(&pid), "{pid} is a tagged Python:\n{report}");
        }
        for pid in [native_tagged, native_tagged_later] {
            assert_eq!(
                pids.contains(&pid),
                !python_too,
                "{pid} is a tagged native process (--python: {python_too}):\n{report}"
            );
        }
        if !python_too {
            // Selected at exec by the kernel: sampled from its start.
            let n: u64 = stacks
                .iter()
                .filter(|st| root_pid(st) == native_tagged_later)
                .map(|st| st.1)
                .sum();
            assert!(n >= 100, "{native_tagged_later}: {n} samples\n{report}");
        }
        for (pid, func) in [(py_tagged, "alpha_fn"), (py_tagged_later, "gamma_fn")] {
            let n = samples_in(&stacks, func, &mix.script.path)
                .get(&pid)
                .copied()
                .unwrap_or(0);
            assert!(n >= 50, "{func} ({pid}): {n} samples\n{report}");
        }
    }

    // Nothing matches: a note, then the recording runs its course.
    let out = wd.join("none.txt");
    let r = Pystrobe::start([
        "record",
        "--match",
        "pystrobe-no-such-process-name",
        "-d",
        "1",
        "-f",
        "folded",
        "-o",
        s(&out),
    ])
    .wait(RUN_TIMEOUT);
    r.success();
    assert!(
        r.stderr
            .contains("no processes matching `pystrobe-no-such-process-name` yet"),
        "{}",
        r.stderr
    );
    assert!(r.elapsed >= Duration::from_secs(1), "{:?}", r.elapsed);
    assert!(out.exists());
}

/// A Python process in a container-like setting: its own PID and mount
/// namespaces (unshare --pid --fork --mount-proc) inside a chroot whose
/// files differ from the host's. Python frames and native symbols resolve
/// from the container's files; the label has the host PID and the PID
/// inside.
#[test]
fn process_in_other_namespaces_is_resolved_and_labelled() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    // Trixie's unshare: bullseye's cannot mount /proc inside a chroot.
    let Some(py) = pythons.iter().find(|p| p.name == "trixie-3.13") else {
        panic!("no trixie-3.13 interpreter in scripts/pythons --list");
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "named.py", NAMED_PY.as_bytes());
    // The chroot's root is no mount point, so the inner unshare leaves
    // propagation alone; the outer one keeps its /proc mount from
    // propagating to the host, whose root may be a shared mount.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "chroot"])
        .arg(&py.root)
        .args(["unshare", "--pid", "--fork", "--mount-proc"])
        .args(["--propagation", "unchanged", "--kill-child"])
        .args([py.exe.as_str(), script.path.as_str(), "delta_fn"]);
    clean_python_env(&mut cmd);
    let unshare = Proc::spawn(&mut cmd);
    // The interpreter is unshare's child, PID 1 in its namespace.
    let deadline = Instant::now() + Duration::from_secs(10);
    let python_pid: u32 = loop {
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.pid()))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            let pid: u32 = pid.parse().unwrap();
            let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.to_string_lossy().contains("python") {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "no interpreter under unshare");
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = wd.join("out.txt");
    let r = Pystrobe::start([
        "record",
        "-p",
        &python_pid.to_string(),
        "--native",
        "-r",
        "500",
        "-d",
        "1",
        "-f",
        "folded",
        "-o",
        s(&out),
    ])
    .wait(RUN_TIMEOUT);
    r.success();
    drop(unshare);
    let stacks = read_folded(&out);
    let report = format!("{}\n{}", r.stderr.trim(), top(&stacks, 8));

    for st in &stacks {
        let label = process_label(&st.0[0]);
        assert_eq!(label.pid, python_pid, "{report}");
        assert_eq!(label.ns_pid, Some(1), "{report}");
    }
    let n = samples_in(&stacks, "delta_fn", &script.path)
        .get(&python_pid)
        .copied()
        .unwrap_or(0);
    assert!(n >= 200, "{n} samples in delta_fn (of ~500)\n{report}");
    // The chroot's own interpreter and libc were symbolized: the eval loop's
    // callers by name, down to the C library's start.
    let mixed = count_where(&stacks, |st| {
        st.0.iter().any(|f| f == "Py_RunMain") && st.0.iter().any(|f| f.contains("delta_fn"))
    });
    assert!(
        mixed * 10 >= n * 9,
        "{mixed} of {n} have Py_RunMain:\n{report}"
    );
}

/// -t adds a `name (tid)` frame per thread under the process: the threads'
/// own IDs, and their Python names where the interpreter gives them to the
/// OS (3.14 and later).
#[test]
fn threads_get_a_frame_each() {
    let Some((_bpf, pythons)) = python_test() else {
        return;
    };
    for_each_python("threads_get_a_frame_each", &pythons, |py| {
        let wd = Workdir::new();
        let (proc, _script, tids) = start_threads_py(py, &wd);
        let out = wd.join("out.txt");
        let r = Pystrobe::start([
            "record",
            "-p",
            &proc.pid().to_string(),
            "-t",
            "-r",
            "300",
            "-d",
            "1.5",
            "-f",
            "folded",
            "-o",
            s(&out),
        ])
        .wait(RUN_TIMEOUT);
        r.success();
        let stacks = read_folded(&out);
        let report = format!("{}\n{}", r.stderr.trim(), top(&stacks, 10));
        let names_threads = py.major_minor() >= (3, 14);
        for (name, func) in [
            ("worker-alpha", "alpha_fn"),
            ("worker-beta", "beta_fn"),
            ("worker-gamma", "gamma_fn"),
        ] {
            let tid = tids[name];
            let in_func: Vec<&Stack> = stacks
                .iter()
                .filter(|st| py_frames(st).iter().any(|(_, f)| f.name == func))
                .collect();
            assert!(!in_func.is_empty(), "no samples in {func}:\n{report}");
            for st in in_func {
                let thread = &st.0[1];
                assert!(
                    thread.ends_with(&format!(" ({tid})")),
                    "{func} runs in thread {tid}, but its frame is {thread:?}:\n{report}"
                );
                if names_threads {
                    assert!(thread.starts_with(name), "{thread:?} is not {name}");
                }
            }
        }
    });
}

/// A PID reused during a recording by another process with the same name:
/// two processes in the profile, each with only its own stacks.
#[test]
fn reused_pid_is_another_process() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "named.py", NAMED_PY.as_bytes());
    let out = wd.join("out.txt");
    let p = start_recording(&["-a", "-r", "300", "-f", "folded", "-o", s(&out)]);

    let first = Proc::spawn(&mut py.command(&script, &["alpha_fn"]));
    let pid = first.pid();
    std::thread::sleep(Duration::from_millis(700));
    drop(first);
    // The next PID the kernel hands out is ns_last_pid + 1: ask for ours
    // again (another process may take it first; then try again).
    let mut second = None;
    for _ in 0..20 {
        fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let p = Proc::spawn(&mut py.command(&script, &["beta_fn"]));
        if p.pid() == pid {
            second = Some(p);
            break;
        }
    }
    let second = second.expect("could not get the PID reused in 20 tries");
    std::thread::sleep(Duration::from_millis(700));
    drop(second);
    let (r, stacks) = stop(p, &out);
    let report = format!("{}\n{}", r.stderr.trim(), top(&stacks, 10));

    let mut by_generation: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for st in stacks.iter().filter(|st| root_pid(st) == pid) {
        let label = process_label(&st.0[0]);
        for (_, f) in py_frames(st) {
            if f.name.ends_with("_fn") {
                by_generation
                    .entry(label.generation)
                    .or_default()
                    .insert(f.name.to_string());
            }
        }
    }
    let expect: BTreeMap<u32, BTreeSet<String>> = [
        (1, BTreeSet::from(["alpha_fn".to_string()])),
        (2, BTreeSet::from(["beta_fn".to_string()])),
    ]
    .into();
    assert_eq!(by_generation, expect, "{report}");
}

/// 200 short Python processes (~50 ms each) started during a whole-host
/// recording: each is in the profile under its own name and PID with its
/// Python frames, and pystrobe lets go of each one's state once it exited.
#[test]
fn churn_of_short_processes_is_named_and_released() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    let wd = Workdir::new();
    let script = py.stage(&wd, "short.py", SHORT_PY.as_bytes());
    let out = wd.join("out.txt");
    let mut cmd = Command::new(PYSTROBE);
    cmd.args(["record", "-a", "-r", "1000", "-f", "folded", "-o", s(&out)])
        .env("PYSTROBE_DEBUG", "1");
    let mut p = Pystrobe::start_cmd(&mut cmd);
    p.wait_until_sampling();

    const N: usize = 200;
    let mut pids = Vec::with_capacity(N);
    // Two at a time, like a busy task queue on two CPUs.
    for _ in 0..N / 2 {
        let mut a = Proc::spawn(&mut py.command(&script, &[]));
        let mut b = Proc::spawn(&mut py.command(&script, &[]));
        for proc in [&mut a, &mut b] {
            pids.push(proc.pid());
            assert!(proc.wait_exit(Duration::from_secs(20)).success());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let (r, stacks) = stop(p, &out);
    let report = r.stderr.trim().to_string();

    let comm = std::path::Path::new(&py.exe)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let in_task = samples_in(&stacks, "short_task", &script.path);
    let mut unnamed = Vec::new();
    for &pid in &pids {
        let mine: Vec<&Stack> = stacks.iter().filter(|st| root_pid(st) == pid).collect();
        for st in &mine {
            // Between fork and exec the child still bears its parent's
            // name (this test's thread); from the exec on, the program's.
            let label = process_label(&st.0[0]);
            assert!(
                label.comm == comm || (!has_python(st) && label.comm != "<unknown>"),
                "{:?} in process {pid}:\n{report}",
                st.0
            );
        }
        assert!(
            mine.iter().any(|st| process_label(&st.0[0]).comm == comm),
            "process {pid} is not in the profile as {comm}:\n{report}"
        );
        if in_task.get(&pid).copied().unwrap_or(0) == 0 {
            unnamed.push((pid, mine.len()));
        }
    }
    let first: Vec<Stack> = unnamed
        .first()
        .map(|&(pid, _)| {
            stacks
                .iter()
                .filter(|st| root_pid(st) == pid)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // A process whose samples are turned into stacks only after it exited
    // (the drain runs every 20 ms) keeps its Python frames, but their code
    // objects can no longer be read: `<unknown>`. Rare; never a wrong name.
    assert!(
        unnamed.len() <= N / 100,
        "{} of {N} processes have no samples in short_task (pid, stacks): {unnamed:?}\n{report}\n\
         the first one's stacks:\n{}",
        unnamed.len(),
        top(&first, 12)
    );
    // "processes held H of S seen": what is kept at the end, against what
    // was seen; the exited ones are released.
    let debug = report
        .lines()
        .find(|l| l.contains("processes held"))
        .expect("PYSTROBE_DEBUG line");
    let held: usize = debug
        .split("processes held ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let live_now = fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    assert!(
        held <= live_now,
        "{held} processes still held, more than the {live_now} running:\n{debug}"
    );
    let rss = debug
        .split("peak RSS ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    eprintln!(
        "churn: {N} processes, {} without short_task; pystrobe peak RSS {rss}; {debug}",
        unnamed.len()
    );
}

/// Bad input: -s with nothing to follow is a usage error (2).
#[test]
fn subprocesses_without_a_target_is_a_usage_error() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let out = wd.join("out.svg");
    for args in [
        vec!["record", "-s", "-o", s(&out)],
        vec!["record", "-a", "-s", "-o", s(&out)],
    ] {
        let r = run(&args);
        let line = r.error_with(2);
        assert!(line.contains("-s/--subprocesses"), "{line}");
        assert!(!out.exists());
    }
}
