//! Kernel feature probing: on a kernel that has everything, pretend features
//! are missing (PYSTROBE_PRETEND_MISSING) and check that pystrobe takes the
//! fallback for Linux 5.10-5.16, or stops with a one-line error naming the
//! missing feature and the minimum kernel. The real old kernels are booted
//! by tests/kernels.rs.

mod common;

use std::process::Command;

use common::*;

/// What Linux 5.10 lacks that the main program uses.
const LIKE_5_10: &str = "task_btf,task_pt_regs,bpf_loop";

fn run_missing(missing: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(PYSTROBE);
    cmd.args(args).env("PYSTROBE_PRETEND_MISSING", missing);
    Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT)
}

fn share_with(stacks: &[Stack], pred: impl Fn(&Stack) -> bool) -> (u64, u64) {
    let all: u64 = stacks.iter().map(|s| s.1).sum();
    let hit: u64 = stacks.iter().filter(|s| pred(s)).map(|s| s.1).sum();
    (hit, all)
}

#[test]
fn fallback_program_unwinds_native_and_kernel_stacks() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let chain = wd.compile("chain_bounded", CHAIN_C, CHAIN_FLAGS);
    let out = wd.join("chain.txt");
    let r = run_missing(
        LIKE_5_10,
        &[
            "record",
            "-r",
            "300",
            "-f",
            "folded",
            "-o",
            s(&out),
            "--",
            s(&chain),
            "2",
        ],
    );
    r.success();
    assert!(
        r.stderr.contains("using the fallback for Linux 5.10-5.16")
            && r.stderr.contains("bpf_loop (5.17)"),
        "no note about the fallback: {}",
        r.stderr
    );
    let stacks = read_folded(&out);
    let (hit, all) = share_with(&stacks, |s| {
        s.0.windows(4).any(|w| w == ["main", "a", "b", "leaf"])
    });
    assert!(
        all >= 100 && hit * 100 >= all * 95,
        "main;a;b;leaf in {hit} of {all} samples: {stacks:?}"
    );

    // Samples taken in the kernel need the user registers saved at the top
    // of the kernel stack (no bpf_task_pt_regs): the user part above the
    // kernel frames must still be whole.
    let writer = wd.compile("writer", WRITER_C, CHAIN_FLAGS);
    let writer = Proc::busy(&writer, &[]);
    let out = wd.join("writer.txt");
    let pid = writer.pid().to_string();
    let r = run_missing(
        LIKE_5_10,
        &[
            "record",
            "-r",
            "300",
            "-d",
            "2",
            "-f",
            "folded",
            "-o",
            s(&out),
            "-p",
            &pid,
        ],
    );
    r.success();
    let stacks = read_folded(&out);
    let in_kernel: Vec<&Stack> = stacks
        .iter()
        .filter(|s| s.0.iter().any(|f| f.ends_with("_[k]")))
        .collect();
    let kernel_samples: u64 = in_kernel.iter().map(|s| s.1).sum();
    let whole: u64 = in_kernel
        .iter()
        .filter(|s| s.0.get(1).is_some_and(|f| f == "_start") && s.0.iter().any(|f| f == "main"))
        .map(|s| s.1)
        .sum();
    assert!(kernel_samples >= 50, "too few kernel samples: {stacks:?}");
    assert!(
        whole * 100 >= kernel_samples * 90,
        "user part whole in {whole} of {kernel_samples} kernel samples: {in_kernel:?}"
    );
}

#[test]
fn fallback_program_walks_python() {
    let Some(_bpf) = bpf_test() else { return };
    let python = "/usr/bin/python3.11";
    if !std::path::Path::new(python).exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true and no {python}"
        );
        eprintln!("skipping: no {python}");
        return;
    }
    let wd = Workdir::new();
    let script = wd.join("deep.py");
    // 60 frames deep: more than the fallback keeps (48).
    std::fs::write(
        &script,
        "import time\ndef spin(until):\n    while time.monotonic() < until:\n        pass\n\
         def deep(n, until):\n    return spin(until) if n == 0 else deep(n - 1, until)\n\
         def shallow(until):\n    spin(until)\n\
         t = time.monotonic()\nshallow(t + 1.0)\ndeep(60, t + 2.0)\n",
    )
    .unwrap();
    let out = wd.join("py.txt");
    let r = run_missing(
        LIKE_5_10,
        &[
            "record",
            "-r",
            "300",
            "-f",
            "folded",
            "-o",
            s(&out),
            "--",
            python,
            s(&script),
        ],
    );
    r.success();
    let stacks = read_folded(&out);
    let (shallow, _) = share_with(&stacks, |s| {
        s.0.iter().any(|f| f.starts_with("shallow ("))
            && s.0.last().is_some_and(|f| f.starts_with("spin ("))
    });
    let (deep_cut, _) = share_with(&stacks, |s| {
        s.0.get(1).is_some_and(|f| f == "[python stack truncated]")
            && s.0.last().is_some_and(|f| f.starts_with("spin ("))
    });
    assert!(
        shallow >= 100,
        "shallow;spin in {shallow} samples: {stacks:?}"
    );
    assert!(
        deep_cut >= 100,
        "truncated deep stacks in {deep_cut} samples: {stacks:?}"
    );
}

#[test]
fn missing_kernel_features_are_one_line_errors() {
    let Some(_bpf) = bpf_test() else { return };
    let wd = Workdir::new();
    let out = wd.join("out.txt");
    for (missing, expect) in [("ringbuf", "ring buffers"), ("btf", "BTF")] {
        let r = run_missing(
            missing,
            &["record", "-a", "-d", "1", "-f", "folded", "-o", s(&out)],
        );
        let line = r.error();
        assert!(
            line.contains(expect) && line.contains("Linux 5.10"),
            "{missing}: {line}"
        );
        assert!(!out.exists(), "{missing}: an output file was written");
        assert!(
            leftover_temp_files(wd.path()).is_empty(),
            "{missing}: temporary files left"
        );
    }
}
