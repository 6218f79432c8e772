//! Helpers for pystrobe's integration tests: the BPF gate, C workloads
//! compiled per test, busy processes that are killed on drop, running the
//! pystrobe binary with a time limit, and parsing what it writes.
//!
//! The tests load a real BPF program and profile real processes, so they need
//! root and a kernel with BTF. Without them a test prints why and returns,
//! except under `CI=true`, where it fails: CI must never pass by skipping.

#![allow(dead_code)] // every test binary uses only part of this module

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary under test.
pub const PYSTROBE: &str = env!("CARGO_BIN_EXE_pystrobe");

/// Limit for any pystrobe run that is expected to end by itself: a hang fails
/// the test instead of stalling the suite.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Held by every test that loads BPF. Sampling tests compare sample counts
/// with CPU time on a 2-CPU machine, so their busy workloads must never run
/// at the same time as another test's.
static BPF_LOCK: Mutex<()> = Mutex::new(());

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Writes straight to the process's stderr, past the test harness's output
/// capture, so that a skip is visible in a normal `cargo test` run.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// True when this machine can run the BPF tests (root and kernel BTF). When
/// it cannot: panics under `CI=true`, else prints why and returns false.
pub fn require_bpf() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("not running as root");
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        missing.push("/sys/kernel/btf/vmlinux is missing");
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    if in_ci() {
        panic!("CI=true and this test needs root and BPF: {why}");
    }
    note(&format!(
        "skipping: needs root and BPF ({why}); run `sudo -E cargo test --release`"
    ));
    false
}

/// The gate every BPF test starts with: `let Some(_bpf) = common::bpf_test() else { return };`
/// Holds the global lock, so BPF tests run one at a time.
pub fn bpf_test() -> Option<MutexGuard<'static, ()>> {
    if !require_bpf() {
        return None;
    }
    // A test that failed while holding the lock poisons it; the others go on.
    Some(BPF_LOCK.lock().unwrap_or_else(PoisonError::into_inner))
}

// ---------------------------------------------------------------------------
// Workloads

/// A per-test temporary directory for workloads and outputs, removed on drop.
pub struct Workdir {
    dir: TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix("pystrobe-test-")
            .tempdir()
            .expect("creating a temporary directory");
        assert!(
            !dir.path().to_string_lossy().contains(char::is_whitespace),
            "the temporary directory {} has whitespace in its path, which argv() cannot pass",
            dir.path().display()
        );
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Compiles `source` with gcc and `flags` into an executable `name`.
    pub fn compile(&self, name: &str, source: &str, flags: &[&str]) -> PathBuf {
        let src = self.join(&format!("{name}.c"));
        fs::write(&src, source).expect("writing C source");
        let exe = self.join(name);
        let out = Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("cannot run gcc (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "gcc {flags:?} {name}.c failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    }

    /// Copies an executable under another name (so that it runs with another `comm`).
    pub fn copy_exe(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.join(name);
        fs::copy(from, &to).expect("copying executable");
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        to
    }

    /// pystrobe's temporary output files (`.pystrobe-*.tmp`) left in the directory.
    pub fn leftover_temp_files(&self) -> Vec<String> {
        leftover_temp_files(self.path())
    }
}

pub fn leftover_temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("listing directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pystrobe-") && n.ends_with(".tmp"))
        .collect()
}

/// main → a → b → leaf, spinning in leaf. Each call is followed by work, so
/// none is a tail call; noinline/noclone keep the symbols as written.
/// `chain [SECONDS [ITERATIONS]]`: runs for SECONDS (forever when 0 or absent).
pub const CHAIN_C: &str = include_str!("../../scripts/kernel-matrix.d/chain.c");

/// Flags for the chain workload: optimised, no frame pointers, so that only
/// .eh_frame unwinding can rebuild the stack.
pub const CHAIN_FLAGS: &[&str] = &["-O2", "-fomit-frame-pointer"];

/// Many 1-byte write()s to /dev/null: most of its time is in the kernel.
pub const WRITER_C: &str = r#"
#include <fcntl.h>
#include <unistd.h>

int main(void) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        return 1;
    char c = 'x';
    for (;;)
        if (write(fd, &c, 1) != 1)
            return 2;
}
"#;

/// A plain busy loop.
pub const BUSY_C: &str = r#"
static volatile unsigned long sink;

__attribute__((noinline, noclone)) void spin(void) {
    for (unsigned long i = 0; i < 100000000UL; i++)
        sink += i;
}

int main(void) {
    for (;;)
        spin();
}
"#;

// ---------------------------------------------------------------------------
// Processes

/// A workload process, killed (SIGKILL) and reaped on drop, so that a failing
/// test never leaves busy processes behind.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Starts a workload in a session of its own (see [`set_priority`]),
    /// with stdin and stdout from /dev/null unless `cmd` says otherwise.
    pub fn spawn(cmd: &mut Command) -> Proc {
        own_session(cmd);
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start workload {cmd:?}: {e}"));
        Proc { child }
    }

    /// Starts `exe args...` at the highest priority, and waits until it has
    /// run on a CPU for a moment, so that it is past its start-up and in its
    /// main loop.
    pub fn busy(exe: &Path, args: &[&str]) -> Proc {
        let p = Proc::spawn(Command::new(exe).args(args).stdout(Stdio::null()));
        p.renice(-20);
        p.wait_on_cpu(Duration::from_millis(50));
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sets the priority, see [`set_priority`].
    pub fn renice(&self, nice: i32) {
        assert!(
            set_priority(self.pid(), nice),
            "setpriority({}, {nice}) failed",
            self.pid()
        );
    }

    /// The child's stdout, if it was piped.
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Nanoseconds this process has spent on a CPU (all threads).
    pub fn cpu_ns(&self) -> u64 {
        cpu_ns(self.pid())
    }

    /// Waits until the process has had `at_least` of CPU time.
    pub fn wait_on_cpu(&self, at_least: Duration) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cpu_ns() < at_least.as_nanos() as u64 {
            assert!(
                Instant::now() < deadline,
                "workload {} did not get {at_least:?} of CPU in 20 s",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process has exited (and been reaped).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the command's process a session leader, so that it gets an
/// autogroup of its own for [`set_priority`] to weigh.
pub fn own_session(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Sets a process's nice value, and that of its autogroup when the kernel
/// has them (sched_autogroup_enabled: nice then only ranks tasks within one
/// session, and each session weighs the same). The machine may be shared
/// with other work: at -20, our workloads and pystrobe get the CPUs that the
/// tests count samples of. Needs root to go below 0.
/// Returns false if the process is gone.
pub fn set_priority(pid: u32, nice: i32) -> bool {
    // SAFETY: plain system call.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) };
    if rc != 0 {
        return false;
    }
    let autogroup = format!("/proc/{pid}/autogroup");
    if Path::new(&autogroup).exists() {
        // Fails (EINVAL) without CONFIG_SCHED_AUTOGROUP's runtime switch; nice alone then does it.
        let _ = fs::write(&autogroup, nice.to_string());
    }
    true
}

/// Time on CPU from /proc/PID/schedstat (first field, ns); 0 once it is gone.
pub fn cpu_ns(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A PID that belongs to no process: one that just exited, and was reaped.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("running true");
    let pid = child.id();
    child.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    pid
}

pub fn pid_max() -> u32 {
    fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("reading pid_max")
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Running pystrobe

/// What a finished pystrobe run left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Output {
    /// Asserts exit 0 and returns the summary.
    pub fn success(&self) -> Summary {
        self.success_without_summary();
        Summary::parse(&self.stderr)
    }

    /// Asserts exit 0 and no panic, for commands without a recording summary.
    pub fn success_without_summary(&self) {
        assert_eq!(
            self.status.code(),
            Some(0),
            "pystrobe failed ({}):\n{}",
            self.status,
            self.stderr
        );
        assert_no_panic(&self.stderr);
    }

    /// Asserts the documented error shape: exit 1, one line on stderr
    /// starting with `pystrobe: error: `, no panic. Returns the line.
    pub fn error(&self) -> String {
        self.error_with(1)
    }

    /// As `error`, with the exit status `code` (documented in --help).
    pub fn error_with(&self, code: i32) -> String {
        assert_no_panic(&self.stderr);
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit code {code}, got {}; stderr:\n{}",
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line error, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("pystrobe: error: "),
            "error line has the wrong shape: {}",
            lines[0]
        );
        lines[0].to_string()
    }
}

pub fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "pystrobe panicked:\n{stderr}");
}

fn reader<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A running pystrobe, killed on drop if the test did not wait for it.
pub struct Pystrobe {
    child: Option<Child>,
    started: Instant,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Pystrobe {
    pub fn start<I, S>(args: I) -> Pystrobe
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::start_cmd(Command::new(PYSTROBE).args(args))
    }

    /// Starts a prepared command (a wrapper such as setpriv, or another cwd).
    /// pystrobe runs at the same priority as the workloads, in a session of
    /// its own, so that a busy machine does not starve it of the CPU time it
    /// needs to drain its ring buffer.
    pub fn start_cmd(cmd: &mut Command) -> Pystrobe {
        own_session(cmd);
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        if is_root() {
            set_priority(child.id(), -20);
        }
        let stdout = reader(child.stdout.take().unwrap());
        let stderr = reader(child.stderr.take().unwrap());
        Pystrobe {
            child: Some(child),
            started,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits until pystrobe has installed its SIGINT and SIGTERM handlers
    /// (bits in SigCgt of /proc/PID/status): a signal sent before that would
    /// kill it with the default action, which would test nothing.
    pub fn wait_for_signal_handlers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let wanted = (1u64 << (libc::SIGINT - 1)) | (1u64 << (libc::SIGTERM - 1));
        loop {
            let status =
                fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
            let caught = status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if caught & wanted == wanted {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("pystrobe exited ({status}) before it was ready for signals");
            }
            assert!(
                Instant::now() < deadline,
                "pystrobe did not install its signal handlers within 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until pystrobe is ready for signals and has its perf events
    /// open (the BPF program is loaded by then): sampling has begun.
    pub fn wait_until_sampling(&mut self) {
        self.wait_for_signal_handlers();
        let deadline = Instant::now() + Duration::from_secs(30);
        let fds = format!("/proc/{}/fd", self.pid());
        loop {
            let perf_events = fs::read_dir(&fds)
                .map(|dir| {
                    dir.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                        .filter(|l| l.to_string_lossy().contains("[perf_event]"))
                        .count()
                })
                .unwrap_or(0);
            if perf_events > 0 {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("pystrobe exited ({status}) before sampling began");
            }
            assert!(
                Instant::now() < deadline,
                "pystrobe opened no perf event within 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: plain system call on our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits for pystrobe to exit by itself; kills it and fails after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
                panic!("pystrobe did not exit within {timeout:?}; stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        self.child = None;
        Output {
            status,
            elapsed,
            stdout: self.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap_or_default(),
        }
    }
}

impl Drop for Pystrobe {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A command line split at whitespace: `argv(&format!("record -p {pid} -o {}", out.display()))`.
/// Workdir paths have no whitespace.
pub fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// Runs pystrobe to completion (at most [`RUN_TIMEOUT`]).
/// A path as the `&str` an argument list wants.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Pystrobe::start(args).wait(RUN_TIMEOUT)
}

// ---------------------------------------------------------------------------
// Parsing what pystrobe writes

/// The closing summary line on stderr:
/// `pystrobe: wrote ... to PATH: N samples (M lost) from P processes over S s; ...`
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub samples: u64,
    pub lost: u64,
    pub processes: u64,
    pub seconds: f64,
}

impl Summary {
    pub fn parse(stderr: &str) -> Summary {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("pystrobe: wrote "))
            .unwrap_or_else(|| panic!("no summary line on stderr:\n{stderr}"));
        let fail = || -> ! { panic!("cannot parse the summary line: {line}") };
        // The output path comes first and may contain anything: parse from the counts on.
        let at = line.rfind(" samples (").unwrap_or_else(|| fail());
        let samples = line[..at]
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| fail());
        let words: Vec<&str> = line[at + " samples (".len()..].split_whitespace().collect();
        // words: M lost) from P processes over S s; ...
        if words.len() < 7 || words[1] != "lost)" || words[2] != "from" || words[5] != "over" {
            fail();
        }
        Summary {
            samples,
            lost: words[0].parse().unwrap_or_else(|_| fail()),
            processes: words[3].parse().unwrap_or_else(|_| fail()),
            seconds: words[6]
                .trim_end_matches(['s', ';'])
                .parse()
                .unwrap_or_else(|_| fail()),
        }
    }
}

/// One folded line: frames (process first) and the count.
pub type Stack = (Vec<String>, u64);

/// Parses `frame;frame;...;frame COUNT` lines; panics on a malformed line.
pub fn parse_folded(text: &str) -> Vec<Stack> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (stack, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("folded line without a count: {line:?}"));
            let count: u64 = count
                .parse()
                .unwrap_or_else(|_| panic!("folded line with a bad count: {line:?}"));
            let frames: Vec<String> = stack.split(';').map(str::to_string).collect();
            assert!(
                frames.iter().all(|f| !f.is_empty()),
                "folded line with an empty frame: {line:?}"
            );
            (frames, count)
        })
        .collect()
}

pub fn read_folded(path: &Path) -> Vec<Stack> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read output {}: {e}", path.display()));
    parse_folded(&text)
}

/// A process frame: `comm (pid)`, with ` #N` after the PID when the PID
/// was reused during the recording and `, ns N` for the PID inside another
/// PID namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLabel {
    pub comm: String,
    pub pid: u32,
    /// 1 for the first process with this name and PID, 2 for the next...
    pub generation: u32,
    pub ns_pid: Option<u32>,
}

pub fn process_label(frame: &str) -> ProcessLabel {
    let parsed = frame.rsplit_once(" (").and_then(|(comm, rest)| {
        let inner = rest.strip_suffix(')')?;
        let (ids, ns_pid) = match inner.split_once(", ns ") {
            Some((ids, ns)) => (ids, Some(ns.parse().ok()?)),
            None => (inner, None),
        };
        let (pid, generation) = match ids.split_once(" #") {
            Some((pid, g)) => (pid, g.parse().ok()?),
            None => (ids, 1),
        };
        Some(ProcessLabel {
            comm: comm.to_string(),
            pid: pid.parse().ok()?,
            generation,
            ns_pid,
        })
    });
    parsed.unwrap_or_else(|| panic!("first frame is not a process label `comm (pid)`: {frame:?}"))
}

/// Splits a process frame into its name and host PID.
pub fn process_frame(frame: &str) -> (String, u32) {
    let l = process_label(frame);
    (l.comm, l.pid)
}

pub fn root_pid(stack: &Stack) -> u32 {
    process_frame(&stack.0[0]).1
}

pub fn is_kernel(frame: &str) -> bool {
    frame.ends_with("_[k]")
}

pub fn is_truncated(stack: &Stack) -> bool {
    stack.0.get(1).is_some_and(|f| f == "[truncated]")
}

/// The native user frames, outermost first: after the process frame (and a
/// `[truncated]` marker), up to the first kernel frame.
pub fn user_frames(stack: &Stack) -> Vec<&str> {
    stack.0[1..]
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "[truncated]")
        .take_while(|f| !is_kernel(f))
        .collect()
}

/// The kernel frames, outermost first.
pub fn kernel_frames(stack: &Stack) -> Vec<&str> {
    stack.0[1..]
        .iter()
        .map(String::as_str)
        .skip_while(|f| !is_kernel(f))
        .collect()
}

/// Sum of counts of the stacks that satisfy `pred`.
pub fn count_where(stacks: &[Stack], pred: impl Fn(&Stack) -> bool) -> u64 {
    stacks.iter().filter(|s| pred(s)).map(|s| s.1).sum()
}

pub fn total(stacks: &[Stack]) -> u64 {
    stacks.iter().map(|s| s.1).sum()
}

/// Samples per process frame `comm (pid)`, for failure messages.
pub fn per_process(stacks: &[Stack]) -> Vec<(String, u64)> {
    let mut m: std::collections::BTreeMap<&str, u64> = Default::default();
    for (frames, n) in stacks {
        *m.entry(frames[0].as_str()).or_default() += n;
    }
    let mut v: Vec<(String, u64)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v
}

/// The first `n` stacks by count, one per line, for failure messages.
pub fn top(stacks: &[Stack], n: usize) -> String {
    let mut v: Vec<&Stack> = stacks.iter().collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.1));
    v.iter()
        .take(n)
        .map(|(f, c)| format!("  {} {c}", f.join(";")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The chain criterion for one stack: complete, the outermost user frame is
/// `_start` or `main`, and the user frames end with main, a, b, leaf.
pub fn is_complete_chain(stack: &Stack) -> bool {
    if is_truncated(stack) {
        return false;
    }
    let user = user_frames(stack);
    matches!(user.first(), Some(&"_start") | Some(&"main"))
        && user.ends_with(&["main", "a", "b", "leaf"])
}

/// Frame names in an inferno flamegraph: its `<title>` texts are
/// `name (N samples, P%)`. Panics unless `svg` is well-formed XML with an
/// `svg` root element.
pub fn svg_frame_names(svg: &str) -> Vec<String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(svg, opts)
        .unwrap_or_else(|e| panic!("the flamegraph is not well-formed XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "root element is not <svg>");
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "title")
        .filter_map(|n| n.text())
        .filter_map(|t| t.rsplit_once(" (").map(|(name, _)| name.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Python interpreters (tests/python.rs)

/// One line of `scripts/pythons --list`: an interpreter the Python tests profile.
#[derive(Debug, Clone)]
pub struct Python {
    /// `bullseye-3.9`, `host-3.11-static`, ...
    pub name: String,
    /// Full version, `3.13.5`.
    pub version: String,
    /// `/` for a host interpreter, else the chroot it runs in.
    pub root: PathBuf,
    /// The executable, as a path inside `root`.
    pub exe: String,
}

impl Python {
    pub fn is_chroot(&self) -> bool {
        self.root != Path::new("/")
    }

    /// (major, minor) from the version (`3.15.0a1` gives (3, 15)).
    pub fn major_minor(&self) -> (u32, u32) {
        let mut parts = self.version.split('.');
        let mut num = || -> u32 {
            let p = parts.next().unwrap_or("");
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("bad Python version {:?}", self.version))
        };
        (num(), num())
    }

    /// Frames are named by qualified name (`Worker.hot`) from 3.11 on, by the
    /// plain function name (`hot`) before.
    pub fn has_qualnames(&self) -> bool {
        self.major_minor() >= (3, 11)
    }

    /// The name a frame of `qualname` has under this interpreter: the part
    /// after the last dot before 3.11.
    pub fn frame_name<'a>(&self, qualname: &'a str) -> &'a str {
        if self.has_qualnames() {
            qualname
        } else {
            qualname.rsplit('.').next().unwrap()
        }
    }

    /// Puts `contents` where this interpreter can read it, under a unique
    /// name ending in `name`: the chroot's /tmp, or `wd` for a host
    /// interpreter. The returned guard knows the path as the interpreter's
    /// process sees it, and removes a file in a chroot on drop.
    pub fn stage(&self, wd: &Workdir, name: &str, contents: &[u8]) -> Staged {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "pystrobe_{}_{}_{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let (host_path, path, remove) = if self.is_chroot() {
            let inside = format!("/tmp/{unique}");
            (self.root.join(&inside[1..]), inside, true)
        } else {
            let p = wd.join(&unique);
            let s = p.to_str().expect("temporary paths are UTF-8").to_string();
            (p, s, false)
        };
        fs::write(&host_path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", host_path.display()));
        fs::set_permissions(&host_path, fs::Permissions::from_mode(0o755)).unwrap();
        Staged {
            host_path,
            path,
            remove,
        }
    }

    /// The command line that runs `script` with `args` under this
    /// interpreter: `chroot ROOT EXE SCRIPT ARGS...` or `EXE SCRIPT ARGS...`.
    pub fn argv(&self, script: &Staged, args: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        if self.is_chroot() {
            v.push("chroot".to_string());
            v.push(self.root.to_str().expect("UTF-8 root").to_string());
        }
        v.push(self.exe.clone());
        v.push(script.path.clone());
        v.extend(args.iter().map(|a| a.to_string()));
        v
    }

    /// [`Python::argv`] as a Command, with a clean Python environment.
    pub fn command(&self, script: &Staged, args: &[&str]) -> Command {
        let argv = self.argv(script, args);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        clean_python_env(&mut cmd);
        cmd
    }
}

/// Removes environment variables that would change which Python a test runs.
pub fn clean_python_env(cmd: &mut Command) {
    for var in [
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONEXECUTABLE",
    ] {
        cmd.env_remove(var);
    }
}

/// A file placed for an interpreter by [`Python::stage`].
pub struct Staged {
    /// Where it is on this machine.
    pub host_path: PathBuf,
    /// Its path as the interpreter's process sees it (inside the chroot).
    pub path: String,
    remove: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.remove {
            let _ = fs::remove_file(&self.host_path);
        }
    }
}

/// The interpreters of `scripts/pythons --list`. When there are none or the
/// script fails: panics under `CI=true`, else prints why and returns None.
pub fn pythons() -> Option<Vec<Python>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pythons");
    let problem = match Command::new(&script).arg("--list").output() {
        Err(e) => format!("cannot run {} --list: {e}", script.display()),
        Ok(out) if !out.status.success() => format!(
            "{} --list failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let list: Vec<Python> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    assert_eq!(f.len(), 4, "bad line in scripts/pythons --list: {l:?}");
                    Python {
                        name: f[0].to_string(),
                        version: f[1].to_string(),
                        root: PathBuf::from(f[2]),
                        exe: f[3].to_string(),
                    }
                })
                .collect();
            if !list.is_empty() {
                return Some(list);
            }
            format!(
                "{} --list names no interpreter; run `sudo scripts/pythons` to make them",
                script.display()
            )
        }
    };
    if in_ci() {
        panic!("CI=true and the Python tests have no interpreters: {problem}");
    }
    note(&format!("skipping: {problem}"));
    None
}

/// Debian's static /usr/bin/python3.11 from the manifest; `None` (the test
/// skips) when it is missing, which fails under CI=true.
pub fn host_static(pythons: &[Python]) -> Option<Python> {
    let found = pythons
        .iter()
        .find(|p| p.name == "host-3.11-static")
        .cloned();
    if found.is_none() {
        let names: Vec<&str> = pythons.iter().map(|p| p.name.as_str()).collect();
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true and scripts/pythons --list has no host-3.11-static: {names:?}"
        );
        eprintln!("skipping: no host-3.11-static interpreter ({names:?})");
    }
    found
}

/// `scripts/consumers --list` as a map; `None` (skip) when they are not
/// installed, which fails under CI=true.
pub fn consumers() -> Option<BTreeMap<String, PathBuf>> {
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

/// The gate of a test that needs one interpreter, Debian's python3.11:
/// BPF (with the global lock) and the interpreter.
pub fn host_python_test() -> Option<(MutexGuard<'static, ()>, Python)> {
    let (bpf, pythons) = python_test()?;
    let py = host_static(&pythons)?;
    Some((bpf, py))
}

/// tests/workloads/threads.py: three named threads busy in their own
/// functions while the main thread waits.
pub const THREADS_PY: &str = include_str!("../workloads/threads.py");

/// Starts threads.py under `py` and waits for its report: the native
/// thread ID of each named worker thread.
pub fn start_threads_py(py: &Python, wd: &Workdir) -> (Proc, Staged, BTreeMap<String, u64>) {
    let script = py.stage(wd, "threads.py", THREADS_PY.as_bytes());
    let mut cmd = py.command(&script, &[]);
    cmd.stdout(Stdio::piped());
    let mut proc = Proc::spawn(&mut cmd);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(proc.stdout().expect("piped stdout")),
        &mut line,
    )
    .expect("threads.py reports its threads");
    // {"worker-alpha": 1234, ...}
    let tids = line
        .trim()
        .trim_matches(['{', '}'])
        .split(", ")
        .filter_map(|kv| {
            let (k, v) = kv.split_once(": ")?;
            Some((k.trim_matches('"').to_string(), v.parse().ok()?))
        })
        .collect();
    (proc, script, tids)
}

/// Starts `pystrobe record ARGS...` and waits until it samples.
pub fn start_recording(args: &[&str]) -> Pystrobe {
    let mut cmd = Command::new(PYSTROBE);
    cmd.arg("record").args(args);
    let mut p = Pystrobe::start_cmd(&mut cmd);
    p.wait_until_sampling();
    p
}

/// Stops a recording with SIGINT and returns its output and the stacks it
/// wrote to `out` (folded).
pub fn stop(p: Pystrobe, out: &Path) -> (Output, Vec<Stack>) {
    p.signal(libc::SIGINT);
    let r = p.wait(Duration::from_secs(30));
    r.success();
    let stacks = read_folded(out);
    (r, stacks)
}

/// The gate of a Python test: BPF (with the global lock) and the
/// interpreters. `let Some((_bpf, pythons)) = common::python_test() else { return };`
pub fn python_test() -> Option<(MutexGuard<'static, ()>, Vec<Python>)> {
    let bpf = bpf_test()?;
    let pythons = pythons()?;
    Some((bpf, pythons))
}

/// Runs `check` for every interpreter, even after one fails, then fails
/// with a report of every interpreter that failed (their panic messages).
/// Prints each interpreter's wall time.
pub fn for_each_python(test: &str, pythons: &[Python], mut check: impl FnMut(&Python)) {
    let mut failures = Vec::new();
    for py in pythons {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(py)));
        let secs = started.elapsed().as_secs_f64();
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        note(&format!(
            "{test}: {} ({}): {verdict} in {secs:.1} s",
            py.name, py.version
        ));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(panic without a message)".to_string());
            failures.push(format!(
                "=== {} (Python {}, {}{}):\n{msg}",
                py.name,
                py.version,
                if py.is_chroot() { "chroot " } else { "" },
                py.root.join(py.exe.trim_start_matches('/')).display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{test}: {} of {} interpreters failed:\n\n{}",
        failures.len(),
        pythons.len(),
        failures.join("\n\n")
    );
}

/// Starts a workload at the highest priority from its first instruction on
/// (children it forks inherit it), in a session of its own.
pub fn spawn_high_priority(cmd: &mut Command) -> Proc {
    use std::os::unix::process::CommandExt;
    // SAFETY: setpriority is a plain system call, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, -20);
            Ok(())
        });
    }
    let p = Proc::spawn(cmd);
    // And its autogroup (the process may be gone already: a short workload).
    set_priority(p.pid(), -20);
    p
}

impl Proc {
    /// Waits until the process has exited; fails after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "workload {} did not exit within {timeout:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A Python frame as pystrobe names it: `qualname (file:line)`, or
/// `qualname (file)` without a line, or `<unknown>` for an unreadable code
/// object (then `file` is empty and `line` None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyFrame<'a> {
    pub name: &'a str,
    pub file: &'a str,
    pub line: Option<u32>,
}

/// Parses a frame (not the process frame) as a Python frame. Native frames
/// (`symbol`, `lib.so+0x1f`), kernel frames and markers give None.
pub fn py_frame(frame: &str) -> Option<PyFrame<'_>> {
    if frame == "<unknown>" {
        return Some(PyFrame {
            name: frame,
            file: "",
            line: None,
        });
    }
    if is_kernel(frame) || frame.starts_with('[') {
        return None;
    }
    let (name, rest) = frame.strip_suffix(')')?.rsplit_once(" (")?;
    if name.is_empty() || rest.is_empty() {
        return None;
    }
    let (file, line) = match rest.rsplit_once(':') {
        Some((file, line)) if !file.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            (file, Some(line.parse().ok()?))
        }
        _ => (rest, None),
    };
    Some(PyFrame { name, file, line })
}

pub const PY_TRUNCATED: &str = "[python stack truncated]";

/// The stack's Python frames, outermost first, with their indexes in the stack.
pub fn py_frames(stack: &Stack) -> Vec<(usize, PyFrame<'_>)> {
    stack
        .0
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, f)| py_frame(f).map(|p| (i, p)))
        .collect()
}

/// Whether the stack has any Python frame (or the truncation marker).
pub fn has_python(stack: &Stack) -> bool {
    stack.0[1..]
        .iter()
        .any(|f| f == PY_TRUNCATED || py_frame(f).is_some())
}

/// The innermost Python frame of a stack.
pub fn innermost_py(stack: &Stack) -> Option<PyFrame<'_>> {
    stack.0[1..].iter().rev().find_map(|f| py_frame(f))
}

/// 1-based numbers of the lines of `script` that contain `marker`.
pub fn marked_lines(script: &str, marker: &str) -> Vec<u32> {
    let lines: Vec<u32> = script
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert!(
        !lines.is_empty(),
        "no line of the script is marked {marker}"
    );
    lines
}

/// The warning lines on stderr (`pystrobe: warning: ...`).
pub fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("pystrobe: warning: "))
        .collect()
}
