//! End-to-end tests of `pystrobe record`: real BPF sampling of real C
//! workloads, compiled per test with gcc. Needs root and kernel BTF; under
//! CI=true a test fails when they are missing (see `common::require_bpf`).
//! BPF tests hold a global lock, so their busy workloads never overlap.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Asserts that nothing was written at `out` and that no temporary file was
/// left next to it: an error never leaves a half-written output.
fn assert_no_output(wd: &Workdir, out: &Path) {
    assert!(
        fs::symlink_metadata(out).is_err(),
        "{} exists after an error",
        out.display()
    );
    assert_eq!(
        wd.leftover_temp_files(),
        Vec::<String>::new(),
        "temporary files left behind"
    );
}

/// The chain criterion over all samples of `pid`: at least `min_samples`,
/// and at least 95 % of them complete main → a → b → leaf stacks.
fn assert_chain(stacks: &[Stack], pid: u32, min_samples: u64) {
    let mine: Vec<Stack> = stacks
        .iter()
        .filter(|s| root_pid(s) == pid)
        .cloned()
        .collect();
    let n = total(&mine);
    assert!(
        n >= min_samples,
        "only {n} samples of the chain process {pid} (expected at least {min_samples}); per process: {:?}",
        per_process(stacks)
    );
    let good = count_where(&mine, is_complete_chain);
    let share = good as f64 / n as f64;
    assert!(
        share >= 0.95,
        "only {good} of {n} samples ({:.1} %) have a complete main;a;b;leaf stack; most common stacks:\n{}",
        share * 100.0,
        top(&mine, 12)
    );
}

// ---------------------------------------------------------------------------
// Native unwinding

#[test]
fn unwinds_native_chain_without_frame_pointers() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let exe = wd.compile("chain", CHAIN_C, CHAIN_FLAGS);
    let chain = Proc::busy(&exe, &[]);
    let out = wd.join("out.txt");
    let pid = chain.pid().to_string();

    let r = run(argv(&format!(
        "record -p {pid} -d 3 -r 200 -f folded -o {}",
        out.display()
    )));
    let summary = r.success();
    let stacks = read_folded(&out);
    assert_eq!(summary.samples, total(&stacks), "summary and file disagree");
    for stack in &stacks {
        let (comm, p) = process_frame(&stack.0[0]);
        assert_eq!((comm.as_str(), p), ("chain", chain.pid()), "foreign sample");
    }
    // 600 samples if it had a CPU to itself; the machine may be shared.
    assert_chain(&stacks, chain.pid(), 150);
}

#[test]
fn launch_mode_records_until_the_command_exits() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let exe = wd.compile("chain_bounded", CHAIN_C, CHAIN_FLAGS);
    let out = wd.join("out.txt");

    // No -d: only the command's exit (after 2 s) can end the recording.
    let r = run(argv(&format!(
        "record -r 200 -f folded -o {} -- {} 2",
        out.display(),
        exe.display()
    )));
    r.success();
    let secs = r.elapsed.as_secs_f64();
    assert!(
        (1.9..6.0).contains(&secs),
        "the command runs for 2 s, but recording took {secs:.2} s"
    );
    let stacks = read_folded(&out);
    let pids: std::collections::BTreeSet<u32> = stacks.iter().map(root_pid).collect();
    assert_eq!(
        pids.len(),
        1,
        "expected only the launched process: {:?}",
        per_process(&stacks)
    );
    let pid = *pids.iter().next().unwrap();
    assert_eq!(process_frame(&stacks[0].0[0]).0, "chain_bounded");
    assert_chain(&stacks, pid, 100);
}

#[test]
fn recording_stops_when_the_targets_exit() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let exe = wd.compile("chain", CHAIN_C, CHAIN_FLAGS);
    // The target is the child of a shell that reaps it as soon as it exits,
    // like most processes (this test's own children would stay zombies).
    let mut shell = Proc::spawn(
        Command::new("sh")
            .args(["-c", "\"$0\" 1.5 & echo $!; wait", s(&exe)])
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(shell.stdout().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line.trim().to_string();
    let target = pid.parse().expect("the shell prints the target's PID");
    set_priority(target, -20);
    let out = wd.join("out.txt");

    // No -d: only the target's exit can end the recording.
    let r = run(["record", "-p", &pid, "-f", "folded", "-o", s(&out)]);
    r.success();
    assert!(
        r.elapsed < Duration::from_secs(6),
        "the target exits after 1.5 s, but recording took {:?}",
        r.elapsed
    );
    assert!(shell.exited(), "the target and its shell should be gone");
    let stacks = read_folded(&out);
    assert!(total(&stacks) > 0, "no samples of the target");
    assert!(stacks.iter().all(|s| root_pid(s) == target));
}

// ---------------------------------------------------------------------------
// Which processes are sampled

#[test]
fn pid_filter_records_only_that_process() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let busy = wd.compile("busy", BUSY_C, &["-O2"]);
    let one = Proc::busy(&wd.copy_exe(&busy, "busy_one"), &[]);
    let _two = Proc::busy(&wd.copy_exe(&busy, "busy_two"), &[]);
    let out = wd.join("out.txt");
    let pid = one.pid().to_string();

    let r = run(argv(&format!(
        "record -p {pid} -d 2 -r 200 -f folded -o {}",
        out.display()
    )));
    let summary = r.success();
    assert_eq!(summary.processes, 1, "{}", r.stderr);
    let stacks = read_folded(&out);
    assert!(
        total(&stacks) >= 100,
        "too few samples: {:?}",
        per_process(&stacks)
    );
    for stack in &stacks {
        assert_eq!(
            process_frame(&stack.0[0]),
            ("busy_one".to_string(), one.pid()),
            "a sample of another process under -p {pid}"
        );
    }
}

#[test]
fn all_mode_records_every_process_but_itself() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let busy = wd.compile("busy", BUSY_C, &["-O2"]);
    let one = Proc::busy(&wd.copy_exe(&busy, "busy_one"), &[]);
    let two = Proc::busy(&wd.copy_exe(&busy, "busy_two"), &[]);
    // A third process, of another kind: a shell loop. Three busy processes
    // share the two CPUs.
    let third = Proc::spawn(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdout(Stdio::null()),
    );
    third.renice(-20);
    third.wait_on_cpu(Duration::from_millis(20));
    let out = wd.join("out.txt");

    let p = Pystrobe::start(argv(&format!(
        "record -a -d 2 -r 200 -f folded -o {}",
        out.display()
    )));
    let own_pid = p.pid();
    let summary = p.wait(RUN_TIMEOUT).success();
    let stacks = read_folded(&out);
    let per = per_process(&stacks);
    let pids: std::collections::BTreeSet<u32> = stacks.iter().map(root_pid).collect();
    for (what, pid) in [
        ("busy_one", one.pid()),
        ("busy_two", two.pid()),
        ("sh", third.pid()),
    ] {
        assert!(
            pids.contains(&pid),
            "-a has no samples of {what} ({pid}); per process: {per:?}"
        );
    }
    assert!(
        !pids.contains(&own_pid),
        "pystrobe sampled itself ({own_pid}): {per:?}"
    );
    assert!(
        !pids.contains(&0),
        "the idle task was sampled without --idle: {per:?}"
    );
    assert!(summary.processes >= 3, "per process: {per:?}");
}

// ---------------------------------------------------------------------------
// Kernel frames

#[test]
fn kernel_frames_under_syscalls() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let exe = wd.compile("writer", WRITER_C, &["-O2"]);
    let writer = Proc::busy(&exe, &[]);
    let out = wd.join("out.txt");
    let pid = writer.pid().to_string();

    let r = run(argv(&format!(
        "record -p {pid} -d 2 -r 500 -f folded -o {}",
        out.display()
    )));
    r.success();
    let stacks: Vec<Stack> = read_folded(&out)
        .into_iter()
        .filter(|s| root_pid(s) == writer.pid())
        .collect();
    let n = total(&stacks);
    assert!(n >= 200, "only {n} samples of the writer");

    // Kernel frames only ever follow the user frames.
    for stack in &stacks {
        let user = user_frames(stack).len();
        let kernel = kernel_frames(stack).len();
        assert_eq!(
            1 + usize::from(is_truncated(stack)) + user + kernel,
            stack.0.len(),
            "user frame after a kernel frame: {}",
            stack.0.join(";")
        );
    }

    let in_kernel = count_where(&stacks, |s| !kernel_frames(s).is_empty());
    assert!(
        in_kernel as f64 >= 0.3 * n as f64,
        "only {in_kernel} of {n} samples have kernel frames; top stacks:\n{}",
        top(&stacks, 10)
    );

    let write_path = |s: &Stack| {
        kernel_frames(s).iter().any(|f| {
            matches!(
                *f,
                "ksys_write_[k]" | "vfs_write_[k]" | "__x64_sys_write_[k]" | "write_null_[k]"
            )
        })
    };
    let in_write = count_where(&stacks, write_path);
    assert!(
        in_write as f64 >= 0.1 * n as f64,
        "only {in_write} of {n} samples are in the kernel's write path; top stacks:\n{}",
        top(&stacks, 10)
    );

    // Above the kernel's write path: main, then libc's write wrapper, whatever its name.
    let well_formed = count_where(&stacks, |s| {
        if !write_path(s) || is_truncated(s) {
            return false;
        }
        let user = user_frames(s);
        user.contains(&"main")
            && user
                .last()
                .is_some_and(|f| f.to_ascii_lowercase().contains("write"))
    });
    assert!(
        well_formed as f64 >= 0.9 * in_write as f64,
        "only {well_formed} of {in_write} write-path samples have main and a write wrapper as user frames:\n{}",
        top(&stacks, 10)
    );
}

// ---------------------------------------------------------------------------
// Stopping

/// Records the chain workload until `sig`, ~2 s in, and checks the output.
fn stop_with_signal(sig: libc::c_int, format: &str, file: &str) {
    let wd = Workdir::new();
    let exe = wd.compile("chain", CHAIN_C, CHAIN_FLAGS);
    let chain = Proc::busy(&exe, &[]);
    let out = wd.join(file);
    let pid = chain.pid().to_string();

    let mut args = vec!["record", "-p", &pid, "-o", s(&out)];
    if format != "flamegraph" {
        args.extend(["-f", format]);
    }
    let mut p = Pystrobe::start(args);
    p.wait_until_sampling();
    std::thread::sleep(Duration::from_secs(2));
    assert!(!out.exists(), "output written before recording ended");
    p.signal(sig);
    let r = p.wait(Duration::from_secs(20));
    let summary = r.success();
    assert!(summary.samples > 0, "{}", r.stderr);
    assert_eq!(
        wd.leftover_temp_files(),
        Vec::<String>::new(),
        "temporary files left behind"
    );

    let text = fs::read_to_string(&out).expect("no output after the signal");
    let process = format!("chain ({pid})");
    if format == "flamegraph" {
        let names = svg_frame_names(&text);
        for want in [process.as_str(), "main", "a", "b", "leaf"] {
            assert!(
                names.iter().any(|n| n == want),
                "no frame {want} in the flamegraph; frames: {names:?}"
            );
        }
    } else {
        let stacks = parse_folded(&text);
        assert!(total(&stacks) > 0);
        assert_chain(&stacks, chain.pid(), 50);
    }
}

#[test]
fn sigint_writes_a_complete_flamegraph() {
    let Some(_bpf) = bpf_test() else { return };
    stop_with_signal(libc::SIGINT, "flamegraph", "x.svg");
}

#[test]
fn sigint_writes_complete_folded_stacks() {
    let Some(_bpf) = bpf_test() else { return };
    stop_with_signal(libc::SIGINT, "folded", "x.txt");
}

#[test]
fn sigterm_writes_a_complete_flamegraph() {
    let Some(_bpf) = bpf_test() else { return };
    stop_with_signal(libc::SIGTERM, "flamegraph", "x.svg");
}

#[test]
fn duration_ends_the_recording() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let exe = wd.compile("chain", CHAIN_C, CHAIN_FLAGS);
    let chain = Proc::busy(&exe, &[]);
    let out = wd.join("out.svg");
    let pid = chain.pid().to_string();

    let r = run(["record", "-p", &pid, "-d", "3", "-o", s(&out)]);
    let summary = r.success();
    let secs = r.elapsed.as_secs_f64();
    assert!(
        (2.5..=5.0).contains(&secs),
        "-d 3 took {secs:.2} s of wall time"
    );
    assert!(
        (2.9..=3.5).contains(&summary.seconds),
        "summary says {} s for -d 3",
        summary.seconds
    );
    let names = svg_frame_names(&fs::read_to_string(&out).unwrap());
    assert!(names.iter().any(|n| n == "leaf"), "frames: {names:?}");
}

// ---------------------------------------------------------------------------
// Sampling rate

#[test]
fn samples_at_1000_hz_on_both_cpus_without_loss() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let busy = wd.compile("busy", BUSY_C, &["-O2"]);
    let one = Proc::busy(&wd.copy_exe(&busy, "busy_one"), &[]);
    let two = Proc::busy(&wd.copy_exe(&busy, "busy_two"), &[]);
    // Proc::busy runs them at the highest priority: both CPUs are theirs for
    // the whole 10 s, even on a machine that runs something else.
    let out = wd.join("out.txt");
    let (p1, p2) = (one.pid().to_string(), two.pid().to_string());

    let cpu_before = one.cpu_ns() + two.cpu_ns();
    let r = run(argv(&format!(
        "record -p {p1} -p {p2} -r 1000 -d 10 -f folded -o {}",
        out.display()
    )));
    let cpu = (one.cpu_ns() + two.cpu_ns() - cpu_before) as f64 / 1e9;
    let summary = r.success();
    assert_eq!(summary.lost, 0, "samples were lost: {}", r.stderr);
    assert!(r.stderr.contains("(0 lost)"), "{}", r.stderr);

    let stacks = read_folded(&out);
    let n = count_where(&stacks, |s| [one.pid(), two.pid()].contains(&root_pid(s))) as f64;
    let expected = 1000.0 * 10.0 * 2.0;
    assert!(
        (n - expected).abs() <= 0.05 * expected,
        "{n} samples of the two busy processes, expected {expected} ± 5 %; \
         they had about {cpu:.2} s of CPU time in that while (20 s at 1000 Hz \
         gives {expected}): {}",
        r.stderr.trim()
    );
}

// ---------------------------------------------------------------------------
// Bad input

#[test]
fn no_target_is_an_error() {
    // Needs no privileges: this is checked before anything else.
    let wd = Workdir::new();
    let out = wd.join("out.svg");
    let r = run(["record", "-d", "1", "-o", s(&out)]);
    assert_no_panic(&r.stderr);
    assert!(!r.status.success(), "no target, yet exit 0:\n{}", r.stderr);
    assert!(r.stderr.contains("error"), "no message: {:?}", r.stderr);
    assert_no_output(&wd, &out);
}

#[test]
fn usage_errors_exit_2() {
    // clap rejects these before anything runs: no privileges needed.
    for args in [
        &["record", "-p", "notapid"][..],
        &["record", "-a", "-p", "1"],
        &["record", "-a", "-r", "0"],
        &["record", "-a", "-d", "-1"],
        &["record", "-a", "-f", "bogus"],
        &["record", "-p", "1", "--", "true"],
        &["frobnicate"],
    ] {
        let r = run(args);
        assert_no_panic(&r.stderr);
        assert_eq!(
            r.status.code(),
            Some(2),
            "pystrobe {args:?}: expected a usage error:\n{}",
            r.stderr
        );
        assert!(!r.stderr.is_empty());
    }
}

#[test]
fn unknown_pid_is_a_one_line_error() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let out = wd.join("out.svg");
    for pid in [pid_max(), pid_max() + 1000, dead_pid()] {
        let r = run(["record", "-p", &pid.to_string(), "-d", "1", "-o", s(&out)]);
        let line = r.error();
        assert!(
            line.contains(&format!("no process with PID {pid}")),
            "-p {pid}: {line}"
        );
        assert_no_output(&wd, &out);
    }
}

#[test]
fn missing_output_directory_is_an_error() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let out = wd.join("missing/out.svg");
    let me = std::process::id().to_string();
    let r = run(["record", "-p", &me, "-d", "1", "-o", s(&out)]);
    let line = r.error();
    assert!(
        line.contains("does not exist") && line.contains(s(&wd.join("missing"))),
        "{line}"
    );
    assert!(!wd.join("missing").exists());
    assert_no_output(&wd, &out);
}

#[test]
fn refuses_to_write_through_a_symlink() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let me = std::process::id().to_string();

    // A link to an existing file: the file keeps its contents.
    let target = wd.join("precious");
    fs::write(&target, "do not overwrite\n").unwrap();
    let link = wd.join("out.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = run(argv(&format!(
        "record -p {me} -d 1 -f folded -o {}",
        link.display()
    )));
    let line = r.error();
    assert!(line.contains("symlink"), "{line}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "do not overwrite\n");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        target,
        "the link was replaced"
    );
    assert!(wd.leftover_temp_files().is_empty(), "temporary files left");

    // A dangling link: its target is not created.
    let nowhere = wd.join("nowhere");
    let dangling = wd.join("out.svg");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    let r = run(["record", "-p", &me, "-d", "1", "-o", s(&dangling)]);
    let line = r.error();
    assert!(line.contains("symlink"), "{line}");
    assert!(!nowhere.exists(), "pystrobe wrote through a dangling link");
    assert_eq!(fs::read_link(&dangling).unwrap(), nowhere);
    assert!(wd.leftover_temp_files().is_empty(), "temporary files left");
}

#[test]
fn command_not_found_is_an_error() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let out = wd.join("out.txt");
    let missing = wd.join("no-such-program");
    for cmd in [s(&missing), "pystrobe-test-no-such-command"] {
        let r = run([
            "record",
            "-d",
            "5",
            "-f",
            "folded",
            "-o",
            s(&out),
            "--",
            cmd,
        ]);
        // 127, as a shell says "command not found".
        let line = r.error_with(127);
        assert!(line.contains("cannot run"), "{line}");
        assert!(
            r.elapsed < Duration::from_secs(4),
            "the error came only after {:?}",
            r.elapsed
        );
        assert_no_output(&wd, &out);
    }
}

#[test]
fn unprivileged_user_gets_a_clear_error() {
    let wd = Workdir::new();
    // The unprivileged user must reach the binary and the directory.
    fs::set_permissions(wd.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let exe = wd.copy_exe(Path::new(PYSTROBE), "pystrobe");
    let out = wd.join("out.svg");
    let args = ["record", "-p", "1", "-d", "1", "-o", s(&out)];

    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args).current_dir(wd.path());
    let r = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT);
    let line = r.error();
    assert!(
        line.starts_with("pystrobe: error: pystrobe needs root"),
        "{line}"
    );
    assert_no_output(&wd, &out);
}
