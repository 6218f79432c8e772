//! The kernel matrix (issue 7): `scripts/kernel-matrix` boots Debian's
//! kernels 5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie) and sid's newest
//! under qemu (software emulation) and runs this build of pystrobe in each
//! guest: load, attach, record a native and a Python workload, check the
//! stacks. The script prints a table, one row per kernel, and exits non-zero
//! when a kernel does not do what its table of expectations says.
//!
//! Takes a few minutes (the first run also downloads ~350 MB of kernel
//! packages, cached under /var/cache/pystrobe/kernels). Needs root. Skips,
//! with a message, when not root, when the matrix cannot run here (qemu or
//! the kernels cannot be had: the script exits 77), or when
//! `PYSTROBE_SKIP_KERNEL_MATRIX=1`; under `CI=true` each of these fails
//! instead. `PYSTROBE_KERNEL_MATRIX_ARGS` passes more arguments to the script
//! (`--only 6.12`, `--python sid-3.14`, ...).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The binary under test; the script copies it into the guests' reach.
const PYSTROBE: &str = env!("CARGO_BIN_EXE_pystrobe");

/// The script's exit status for "cannot run here".
const UNAVAILABLE: i32 = 77;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Writes to the process's stderr past the test harness's capture, so that
/// the table and skips show in a normal `cargo test` run.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Skips (returns) outside CI; fails under CI=true.
fn skip(why: &str) {
    if in_ci() {
        panic!("CI=true and the kernel matrix cannot run: {why}");
    }
    note(&format!("skipping kernel_matrix: {why}"));
}

#[test]
fn kernel_matrix() {
    if std::env::var("PYSTROBE_SKIP_KERNEL_MATRIX").is_ok_and(|v| v == "1") {
        skip("PYSTROBE_SKIP_KERNEL_MATRIX=1");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root (run `sudo -E cargo test --release`)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kernel-matrix");
    let extra = std::env::var("PYSTROBE_KERNEL_MATRIX_ARGS").unwrap_or_default();
    let mut cmd = Command::new(&script);
    cmd.arg("--pystrobe")
        .arg(PYSTROBE)
        .args(extra.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    note(&format!(
        "kernel_matrix: running {} --pystrobe {PYSTROBE} {extra}",
        script.display()
    ));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    // The table, shown as it comes (a guest takes ~20-50 s) and kept for the
    // failure message.
    let mut table = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the script's output");
        note(&line);
        table.push_str(&line);
        table.push('\n');
    }
    let status = child.wait().expect("waiting for scripts/kernel-matrix");
    note(&format!(
        "kernel_matrix: {status} after {:.0} s",
        start.elapsed().as_secs_f64()
    ));
    match status.code() {
        Some(0) => {}
        Some(UNAVAILABLE) => skip("scripts/kernel-matrix cannot run here (see its message above)"),
        _ => panic!(
            "scripts/kernel-matrix failed ({status}): a kernel did not do what the matrix \
             expects of it:\n{table}"
        ),
    }
}
