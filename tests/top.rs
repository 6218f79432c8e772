//! `pystrobe top` driven the way a person drives it, in tmux: it shows the
//! hot function of a workload, the sort keys reorder the table, L drops the
//! line numbers, q leaves, and the terminal is as it was (no alternate
//! screen, cursor visible, the shell answers) after Ctrl-C. Needs root, BPF, tmux and the
//! interpreters.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const FORMATS_PY: &str = include_str!("workloads/formats.py");

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let t = Tmux {
            socket: format!("pystrobe-test-{}", std::process::id()),
        };
        t.cmd(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "45",
            "bash --norc --noprofile",
        ]);
        t
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is installed");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "0"])
    }

    fn format(&self, f: &str) -> String {
        self.cmd(&["display-message", "-p", "-t", "0", f])
            .trim()
            .to_string()
    }

    /// Waits until the screen satisfies `ok`; returns it.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 20 s; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The table's rows, top first: (%Own, %Total, own s, total s, function).
fn table(screen: &str) -> Vec<(f64, f64, f64, f64, String)> {
    screen
        .lines()
        .skip_while(|l| !l.contains("Function"))
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let mut num =
                |suffix: char| -> Option<f64> { parts.next()?.strip_suffix(suffix)?.parse().ok() };
            let (own, total, own_s, total_s) = (num('%')?, num('%')?, num('s')?, num('s')?);
            // After the two times, each followed by "s" and two spaces.
            let name = l
                .split_once("s  ")?
                .1
                .split_once("s  ")?
                .1
                .trim()
                .to_string();
            Some((own, total, own_s, total_s, name))
        })
        .collect()
}

fn names(rows: &[(f64, f64, f64, f64, String)]) -> Vec<&str> {
    rows.iter().map(|r| r.4.as_str()).collect()
}

#[test]
fn top_in_tmux_shows_sorts_toggles_and_restores_the_terminal() {
    let Some((_bpf, py)) = host_python_test() else {
        return;
    };
    // tmux comes with the other test consumers (scripts/consumers).
    if consumers().is_none() {
        return;
    }
    let wd = Workdir::new();
    let script = py.stage(&wd, "formats.py", FORMATS_PY.as_bytes());
    // hot 6 ms, cold 1 ms per round, for a minute (killed before).
    let work = Proc::spawn(&mut py.command(&script, &["60", "6", "1"]));
    let tmux = Tmux::new();
    tmux.send(&[
        &format!("{PYSTROBE} top -p {} -r 200; echo TOP-EXIT=$?", work.pid()),
        "Enter",
    ]);

    // By own % (the default), then by each other column: every column
    // sorts, largest first.
    let s = tmux.wait_for("table with hot", |s| {
        table(s).iter().any(|r| r.4.starts_with("hot ("))
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "top runs on the alternate screen"
    );
    let rows = table(&s);
    assert!(
        names(&rows).iter().any(|f| f.contains(".py:")),
        "line numbers shown: {s}"
    );
    let column = |r: &(f64, f64, f64, f64, String), i: usize| [r.0, r.1, r.2, r.3][i];
    for (key, label) in [
        ("2", "%Total"),
        ("3", "OwnTime"),
        ("4", "TotalTime"),
        ("1", "%Own"),
    ] {
        tmux.send(&[key]);
        let s = tmux.wait_for(label, |s| s.contains(&format!("({label})")));
        let rows = table(&s);
        let i = key.parse::<usize>().unwrap() - 1;
        assert!(rows.len() >= 5, "{s}");
        for pair in rows.windows(2) {
            assert!(
                column(&pair[0], i) >= column(&pair[1], i),
                "sorted by {label}, yet {:?} is above {:?}:\n{s}",
                pair[0],
                pair[1]
            );
        }
    }
    // hot runs six times as long as cold.
    let s = tmux.wait_for("hot and cold", |s| {
        let n = names(&table(s)).join("\n");
        n.contains("hot (") && n.contains("cold (")
    });
    let rows = table(&s);
    let total_of = |f: &str| {
        rows.iter()
            .find(|r| r.4.starts_with(f))
            .map(|r| r.3)
            .unwrap()
    };
    assert!(total_of("hot (") > 2.0 * total_of("cold ("), "{s}");

    // L: no line numbers, one row per function.
    tmux.send(&["L"]);
    let s = tmux.wait_for("line numbers off", |s| s.contains("line numbers (off)"));
    let rows = table(&s);
    assert!(
        names(&rows).iter().all(|f| !f.contains(".py:")),
        "line numbers still shown:\n{s}"
    );
    let spins = names(&rows)
        .iter()
        .filter(|f| f.starts_with("spin ("))
        .count();
    assert_eq!(spins, 1, "{rows:?}");

    // Ctrl-C (a key, in raw mode): top ends, the terminal is back. (q is
    // the same path.)
    tmux.send(&["C-c"]);
    // The status line, not the command typed (which says TOP-EXIT=$?).
    let status = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("TOP-EXIT="))
            .map(str::to_string)
    };
    let s = tmux.wait_for("the shell after top", |s| status(s).is_some());
    assert_eq!(status(&s).as_deref(), Some("0"), "{s}");
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "left the alternate screen"
    );
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor visible again");
    // The shell echoes what is typed and runs it: the tty is not raw.
    tmux.send(&["echo typed-$((6*7))", "Enter"]);
    tmux.wait_for("the shell echoing", |s| s.contains("typed-42"));
    drop(work);
}
