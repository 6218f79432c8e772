//! Which processes to sample, and keeping that set right while processes
//! fork, exec and exit.
//!
//! The kernel applies the filter and follows forks and execs by itself
//! (bpf/track.h), so a new child is sampled from its first instruction.
//! This side sets the filter up (descendants and matches that already run),
//! refines what the kernel cannot judge (command lines, which programs are
//! Python), and keeps the set of live targets that decides when a
//! recording of `-p` processes is over.

pub mod procfs;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::TargetArgs;
use crate::sampler::{ProcEvent, ProcEventKind, Sampler, Tracking};

/// How long after an exec a process that does not look like Python yet is
/// looked at again for --python: an embedding program maps libpython only
/// once the dynamic loader has run.
const PYTHON_RECHECK: Duration = Duration::from_millis(200);

/// How often the live targets are checked in /proc.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// What the command line asked to profile.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub pids: Vec<u32>,
    pub all: bool,
    pub subprocesses: bool,
    pub python: bool,
    pub pattern: Option<String>,
    pub launch: bool,
}

impl Selection {
    pub fn from_args(args: &TargetArgs) -> Selection {
        Selection {
            pids: args.pids.clone(),
            all: args.all,
            subprocesses: args.subprocesses,
            python: args.python,
            pattern: args.pattern.clone(),
            launch: !args.command.is_empty(),
        }
    }

    /// Selected by name or interpreter (--match, --python) rather than PID.
    pub fn by_name(&self) -> bool {
        self.python || self.pattern.is_some()
    }

    /// Whether the in-kernel filter is used: everything but a plain `-a`.
    pub fn filtered(&self) -> bool {
        !self.all || self.by_name()
    }

    pub fn tracking(&self) -> Tracking {
        // The kernel judges a new program by its name alone, so it selects
        // only where the name is enough; with both --python and --match it
        // is not (`python3 manage.py` vs a native `manage-worker`), and
        // pystrobe decides when the exec wakes it.
        let comm = match (&self.pattern, self.python) {
            (Some(p), false) => Some((p.as_bytes().to_vec(), false)),
            (None, true) => Some((b"python".to_vec(), true)),
            _ => None,
        };
        Tracking {
            // A forked child has its parent's name, command line and
            // interpreter: under --match/--python it matches too.
            follow_forks: self.subprocesses || self.by_name(),
            keep_on_exec: self.subprocesses,
            select_on_exec: self.by_name(),
            comm,
            // Whole-host: every new program is looked at as it starts.
            report_execs: self.by_name() || !self.filtered(),
            report_all_exits: !self.filtered(),
        }
    }

    /// Whether process `pid` is one --match and --python select (both, when
    /// both are given).
    pub fn matches(&self, pid: u32) -> bool {
        if let Some(p) = &self.pattern {
            let name = procfs::comm(pid).unwrap_or_default();
            if !name.contains(p.as_str()) && !procfs::cmdline(pid).contains(p.as_str()) {
                return false;
            }
        }
        !self.python || looks_like_python(pid)
    }

    /// What the selection is, for messages.
    pub fn describe(&self) -> String {
        match (&self.pattern, self.python) {
            (Some(p), true) => format!("Python processes matching `{p}`"),
            (Some(p), false) => format!("processes matching `{p}`"),
            (None, true) => "Python processes".to_string(),
            (None, false) => "the selected processes".to_string(),
        }
    }
}

/// A process that runs CPython: its executable or a mapped file is named
/// like an interpreter (python3.11, libpython3.11.so).
fn looks_like_python(pid: u32) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .any(crate::python::discover::looks_like_python)
}

/// The live set of targets.
pub struct Targets {
    sel: Selection,
    /// Targets believed alive: the -p processes and, with -s, their
    /// descendants. When it empties, a -p recording is over.
    live: HashSet<u32>,
    /// (pid, start_ns) of processes that exited, for the stack builder to
    /// release once their samples are in.
    pub exited: Vec<(u32, u64)>,
    /// Processes exec'd lately that may yet turn out to be Python.
    recheck: Vec<(u32, Instant)>,
    /// Processes added since the start, for the summary.
    pub added: u64,
    last_check: Instant,
}

impl Targets {
    /// Completes the filter once tracking runs: a fork from now on is seen
    /// by the kernel, and the processes that already run are added here.
    pub fn start(sel: Selection, sampler: &Sampler) -> Result<Targets> {
        let mut t = Targets {
            live: sel.pids.iter().copied().collect(),
            sel,
            exited: Vec::new(),
            recheck: Vec::new(),
            added: 0,
            last_check: Instant::now(),
        };
        if t.sel.by_name() {
            for (pid, _) in procfs::all_processes() {
                if pid != std::process::id() && t.sel.matches(pid) {
                    t.add(pid, sampler)?;
                }
            }
        }
        if t.sel.subprocesses && !t.sel.launch {
            let roots: Vec<u32> = t.live.iter().copied().collect();
            for pid in procfs::descendants(&procfs::all_processes(), &roots) {
                t.add(pid, sampler)?;
            }
        }
        // A -p process that exited before tracking began sends no exit event.
        t.live.retain(|&p| procfs::alive(p));
        Ok(t)
    }

    fn add(&mut self, pid: u32, sampler: &Sampler) -> Result<()> {
        sampler.add_pid(pid)?;
        self.live.insert(pid);
        self.added += 1;
        Ok(())
    }

    /// Follows one event from the kernel. Returns whether the process is a
    /// target that just started (forked or exec'd), worth preparing before
    /// its first sample.
    pub fn on_event(&mut self, e: &ProcEvent, sampler: &Sampler) -> bool {
        match e.kind {
            ProcEventKind::Fork { .. } => {
                self.live.insert(e.pid);
                self.added += 1;
                true
            }
            ProcEventKind::Exec => {
                if !self.sel.by_name() || (self.sel.subprocesses && self.live.contains(&e.pid)) {
                    return true;
                }
                // The kernel judged by the new name alone; the command line
                // and the mapped files decide.
                if self.sel.matches(e.pid) {
                    let _ = self.add(e.pid, sampler);
                    true
                } else {
                    self.live.remove(&e.pid);
                    let _ = sampler.remove_pid(e.pid);
                    if self.sel.python {
                        self.recheck.push((e.pid, Instant::now() + PYTHON_RECHECK));
                    }
                    false
                }
            }
            ProcEventKind::Exit => {
                self.live.remove(&e.pid);
                self.exited.push((e.pid, e.start_ns));
                false
            }
        }
    }

    /// Looks again at processes that may have become Python since their exec.
    pub fn tick(&mut self, sampler: &Sampler) {
        if self.recheck.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut keep = Vec::new();
        for (pid, until) in std::mem::take(&mut self.recheck) {
            if self.sel.matches(pid) {
                let _ = self.add(pid, sampler);
            } else if now < until && procfs::alive(pid) {
                keep.push((pid, until));
            }
        }
        self.recheck = keep;
    }

    /// Whether no target is left: the end of a -p recording.
    pub fn none_alive(&mut self) -> bool {
        // Exit events are the rule; this catches, now and then, a target
        // that exited in a way they missed (before tracking began, say).
        if self.last_check.elapsed() >= LIVENESS_CHECK {
            self.last_check = Instant::now();
            self.live.retain(|&p| procfs::alive(p));
        }
        self.live.is_empty()
    }

    /// Targets now running.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The targets believed alive.
    pub fn live_pids(&self) -> Vec<u32> {
        self.live.iter().copied().collect()
    }
}
