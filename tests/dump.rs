//! `pystrobe dump`: every thread of a running 4-thread Python process, under
//! every interpreter, as text and JSON, with and without --native and
//! --nonblocking; and the bad inputs. Needs root (ptrace of other users'
//! processes, /proc/PID/mem) and the interpreters; no BPF.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// Runs `pystrobe dump ARGS --json` and parses it.
fn dump_json(pid: u32, extra: &[&str]) -> Value {
    let mut args = vec![
        "dump".to_string(),
        "-p".to_string(),
        pid.to_string(),
        "--json".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = run(&args);
    r.success_without_summary();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.stdout))
}

/// CPU time of all of a process's threads (utime + stime, clock ticks).
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<u64> = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    fields.iter().sum()
}

#[test]
fn dump_lists_every_thread_with_its_stack() {
    let Some((_lock, pythons)) = python_test() else {
        return;
    };
    for_each_python("dump_lists_every_thread_with_its_stack", &pythons, |py| {
        let wd = Workdir::new();
        let (proc, _script, tids) = start_threads_py(py, &wd);
        let tids: BTreeMap<u64, String> = tids.into_iter().map(|(name, tid)| (tid, name)).collect();
        let pid = proc.pid();
        // The main thread has printed; let it reach its wait.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let func = |name: &str| name.replace("worker-", "") + "_fn";

        let mut modes: Vec<&[&str]> = vec![&[], &["--native"]];
        if py.major_minor() >= (3, 11) {
            // Python threads map to OS threads without a stop from 3.11 on.
            modes.push(&["--nonblocking"]);
        }
        for mode in modes {
            let d = dump_json(pid, mode);
            let report = format!("{mode:?}:\n{d:#}");
            assert_eq!(d["pid"].as_u64(), Some(u64::from(pid)));
            let (major, minor) = py.major_minor();
            assert_eq!(d["python"], format!("{major}.{minor}"), "{report}");
            let threads = d["threads"].as_array().unwrap();
            assert_eq!(threads.len(), 4, "{report}");
            for t in threads {
                let tid = t["tid"].as_u64().unwrap();
                let frames = t["frames"].as_array().unwrap();
                let python: Vec<&str> = frames
                    .iter()
                    .filter(|f| f["kind"] == "python")
                    // `<unknown>` (a code object that could not be read,
                    // in a stack torn by --nonblocking) has no function.
                    .map(|f| f["function"].as_str().or(f["name"].as_str()).unwrap())
                    .collect();
                assert_eq!(t["python"], true, "{report}");
                if tid == u64::from(pid) {
                    // The main thread waits in threading.Event().wait().
                    let wait = py.frame_name("Event.wait");
                    assert!(python.contains(&wait), "main thread: {python:?}\n{report}");
                    assert_eq!(python.last(), Some(&"<module>"), "{report}");
                    continue;
                }
                let name = tids
                    .get(&tid)
                    .unwrap_or_else(|| panic!("unknown thread {tid}: {report}"));
                if mode == ["--nonblocking"] {
                    // Read while it runs, a stack may be torn; but the thread
                    // is found and has Python frames.
                    assert!(!python.is_empty(), "{name}: {report}");
                    continue;
                }
                // Innermost: spin's generator or spin itself, under the worker's function.
                let innermost = python.first().copied().unwrap_or_default();
                assert!(
                    innermost.contains("genexpr") || innermost == "spin",
                    "{name}: innermost {innermost:?} in {python:?}\n{report}"
                );
                assert!(
                    python.contains(&func(name).as_str()),
                    "{name}: {python:?}\n{report}"
                );
                if py.major_minor() >= (3, 14) {
                    assert_eq!(t["name"], name.as_str(), "{report}");
                }
                if mode == ["--native"] {
                    // Native frames down to the thread's start in libc.
                    let native = frames.iter().filter(|f| f["kind"] == "native").count();
                    assert!(native >= 3, "{name}: {native} native frames\n{report}");
                }
            }
        }

        // The text form says the same, a block per thread.
        let r = run(["dump", "-p", &pid.to_string()]);
        r.success_without_summary();
        assert_eq!(r.stdout.matches("\nThread ").count(), 4, "{}", r.stdout);
        for name in tids.values() {
            assert!(r.stdout.contains(&func(name)), "{}", r.stdout);
        }
        // The process was let go: it still runs, and runs on.
        let before = process_ticks(pid);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            process_ticks(pid) > before,
            "the process no longer runs after the dump: {}",
            std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
        );
    });
}

#[test]
fn dump_bad_input() {
    let Some(_lock) = bpf_test() else { return };
    for pid in [dead_pid(), pid_max() + 1] {
        let r = run(["dump", "-p", &pid.to_string()]);
        let line = r.error();
        assert!(
            line.contains(&format!("no process with PID {pid}")),
            "{line}"
        );
    }
    // Not root: one line naming the one capability dump needs.
    let wd = Workdir::new();
    std::fs::set_permissions(
        wd.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let exe = wd.copy_exe(std::path::Path::new(PYSTROBE), "pystrobe");
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["dump", "-p", "1"]);
    let line = Pystrobe::start_cmd(&mut cmd).wait(RUN_TIMEOUT).error();
    assert!(line.contains("capability CAP_SYS_PTRACE"), "{line}");
    // kthreadd: a kernel thread, nothing to dump.
    let r = run(["dump", "-p", "2"]);
    let line = r.error();
    assert!(line.contains("kernel thread"), "{line}");
    let r = run(["dump", "-p", "1", "--native", "--nonblocking"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
}
