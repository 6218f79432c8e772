//! One sampling session, from the command line's targets to the stacks:
//! load the BPF program, choose and follow the targets, launch a command,
//! drain the ring buffers into stacks until told to stop. `record` writes
//! what it gathered to files; `top` shows it live.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{SamplingArgs, TargetArgs};
use crate::error::Coded;
use crate::launch::{self, User};
use crate::privileges;
use crate::profile::Profile;
use crate::sampler::features::Variant;
use crate::sampler::record::RawSample;
use crate::sampler::{BpfRunTime, DRAIN_INTERVAL, Sampler, SamplerConfig, SamplerStats};
use crate::stack::builder::BuildOptions;
use crate::stack::{FrameId, StackBuilder};
use crate::targets::{Selection, Targets, procfs};

/// Everything built from the records: the per-sample work of the ring-buffer callback.
pub struct Collector {
    pub builder: StackBuilder,
    pub profile: Profile,
    stack: Vec<FrameId>,
    pub malformed: u64,
}

impl Collector {
    fn on_record(&mut self, data: &[u8]) {
        match RawSample::parse(data) {
            Some(sample) => {
                self.builder.build(&sample, &mut self.stack);
                let h = sample.header;
                self.profile
                    .add_sample(&self.stack, h.time_ns, h.tgid, h.tid);
            }
            None => self.malformed += 1,
        }
    }
}

/// Why the session ended.
pub enum Stop {
    Signal,
    Duration,
    CommandExited(std::process::ExitStatus),
    TargetsExited,
    /// The observer asked (a key in `top`).
    Observer,
}

/// What a session leaves behind.
pub struct Finished {
    pub collector: Collector,
    pub reason: Stop,
    pub elapsed: Duration,
    /// When sampling started, Unix time in ns.
    pub start_unix_ns: u64,
    pub stats: SamplerStats,
    pub bpf: BpfRunTime,
    /// Processes added to the filter after the start.
    pub added: u64,
}

/// Watches a session: called after every drain (every 20 ms or sooner).
pub trait Observer {
    /// Returns false to end the session.
    fn tick(&mut self, c: &mut Collector, lost: u64, elapsed: Duration) -> bool;
    /// A warning for the user (an interpreter that cannot be read, say).
    fn warn(&mut self, warning: &str);
}

/// Checks the targets before anything is loaded: one clear line for a
/// missing target, -s with nothing to follow, a process that is gone, or
/// missing privileges.
pub fn check_targets(t: &TargetArgs) -> Result<Selection> {
    let selection = Selection::from_args(t);
    if t.subprocesses && t.pids.is_empty() && t.command.is_empty() && !selection.by_name() {
        return Err(Coded::new(
            2,
            "-s/--subprocesses follows the descendants of the targets: give -p PID, --match, \
             --python or a command as well (with -a every process is profiled already)"
                .to_string(),
        )
        .into());
    }
    if t.pids.is_empty() && !t.all && t.command.is_empty() && !selection.by_name() {
        bail!(
            "nothing to profile: give -p PID, -a for the whole host, --python, --match PATTERN, \
             or a command to launch (pystrobe record -- python3 app.py)"
        );
    }
    privileges::check()?;
    for &pid in &t.pids {
        if !procfs::alive(pid) {
            bail!("no process with PID {pid}");
        }
    }
    Ok(selection)
}

/// Samples until a signal, the duration, the end of the command or of the
/// -p targets, or the observer says stop.
pub fn run(
    t: &TargetArgs,
    s: &SamplingArgs,
    selection: Selection,
    timeline: bool,
    user: Option<&User>,
    observer: &mut dyn Observer,
) -> Result<Finished> {
    raise_fd_limit();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    let cfg = SamplerConfig {
        rate_hz: s.rate,
        stack_bytes: s.stack_size,
        pids: selection.filtered().then(|| t.pids.clone()),
        include_idle: s.idle,
        python_native: s.native,
        tracking: selection.tracking(),
    };
    let mut storage = MaybeUninit::uninit();
    let mut sampler = Sampler::start(&mut storage, &cfg)?;
    if sampler.variant == Variant::Legacy {
        observer.warn(&format!(
            "this kernel lacks {}; using the fallback for Linux 5.10-5.16 \
             (Python stacks are cut at 48 frames)",
            sampler.features.missing_modern().join(", ")
        ));
    }
    let targets = Targets::start(selection.clone(), &sampler)?;
    if selection.by_name() && targets.live_count() == 0 {
        observer.warn(&format!(
            "no {} yet; waiting for one to start (Ctrl-C to stop)",
            selection.describe().trim_start_matches("the ")
        ));
    }
    let mut builder = StackBuilder::new(BuildOptions {
        native: s.native,
        threads: s.threads,
        naming: s.naming.naming(),
    });
    for pid in targets.live_pids() {
        builder.prepare_running(pid);
    }
    publish(&mut builder, &sampler);
    sampler.start_sampling(s.rate)?;
    let sampler = sampler;
    let started = Instant::now();
    let start_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let targets = RefCell::new(targets);

    let mut child: Option<Child> = if t.command.is_empty() {
        None
    } else {
        Some(launch::spawn(&t.command, sampler.filter_fd(), user)?)
    };

    let collector = RefCell::new(Collector {
        builder,
        profile: if timeline {
            Profile::with_timeline()
        } else {
            Profile::default()
        },
        stack: Vec::with_capacity(128),
        malformed: 0,
    });
    let ring = sampler.ring_buffer(
        |data| {
            let mut c = collector.borrow_mut();
            c.on_record(data);
            // Published at once, not after the drain: the first drain of a
            // session also pays one-time costs (symbol tables, kallsyms) that
            // would otherwise leave a new interpreter unwalked for ~100 ms.
            publish(&mut c.builder, &sampler);
            0
        },
        |event| {
            if targets.borrow_mut().on_event(&event, &sampler) {
                let mut c = collector.borrow_mut();
                c.builder.prepare(event.pid, event.start_ns, event.mm);
                publish(&mut c.builder, &sampler);
            }
        },
    )?;
    // Exits read in one drain are released after the next: by then every
    // sample the process had is in (its last ones may still have been in
    // flight on another CPU when the exit was read).
    let mut releasing: Vec<(u32, u64)> = Vec::new();

    let deadline = s.duration.map(|d| started + Duration::from_secs_f64(d));
    let reason = loop {
        let mut nap = DRAIN_INTERVAL;
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(Instant::now()));
        }
        // Woken early by a new target (fork or exec), so that its maps and
        // interpreter are read while it is young.
        match ring.poll(nap) {
            // A signal (Ctrl-C): handled below, after the drain.
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            r => r.context("reading samples")?,
        }
        ring.consume().context("reading samples")?;
        let keep_going = {
            let mut c = collector.borrow_mut();
            for (pid, start) in releasing.drain(..) {
                c.builder.release(pid, start);
            }
            releasing.append(&mut targets.borrow_mut().exited);
            c.builder.processes.sweep();
            targets.borrow_mut().tick(&sampler);
            let warnings: Vec<String> = c.builder.warnings.drain(..).collect();
            for w in &warnings {
                observer.warn(w);
            }
            let lost = sampler.stats().map(|s| s.lost).unwrap_or(0);
            observer.tick(&mut c, lost, started.elapsed())
        };

        if !keep_going {
            break Stop::Observer;
        }
        if stop.load(Ordering::Relaxed) {
            break Stop::Signal;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Stop::Duration;
        }
        if let Some(status) = child.as_mut().map(Child::try_wait).transpose()?.flatten() {
            break Stop::CommandExited(status);
        }
        if !t.pids.is_empty() && targets.borrow_mut().none_alive() {
            break Stop::TargetsExited;
        }
    };
    let elapsed = started.elapsed();
    // What was sampled up to now is still in the ring buffer.
    ring.consume().context("reading samples")?;
    drop(ring);

    let stats = sampler.stats().unwrap_or_default();
    let added = targets.borrow().added;
    if std::env::var_os("PYSTROBE_DEBUG").is_some() {
        let c = collector.borrow();
        eprintln!(
            "pystrobe: debug: {stats:?}, {:?}, processes held {} of {} seen, {added} added to the \
             filter, peak RSS {:.1} MiB",
            c.builder.stats,
            c.builder.processes.len(),
            c.builder.processes.seen,
            peak_rss_kib() as f64 / 1024.0
        );
    }
    Ok(Finished {
        collector: collector.into_inner(),
        reason,
        elapsed,
        start_unix_ns,
        stats,
        bpf: sampler.bpf_run_time(),
        added,
    })
}

/// Tells the BPF program which interpreters to walk or stop walking.
fn publish(builder: &mut StackBuilder, sampler: &Sampler<'_>) {
    for p in builder.take_publications() {
        // A process that exited meanwhile is not worth an error.
        let _ = match &p.layout {
            Some(layout) => sampler.publish_python(p.pid, p.mm, p.runtime, layout),
            None => sampler.withdraw_python(p.pid),
        };
    }
}

/// pystrobe's peak resident memory so far, in KiB.
fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_maxrss
    }
}

/// Every distinct mapped file stays open for symbolization: whole-host
/// sessions need more descriptors than the usual soft limit of 1024.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
