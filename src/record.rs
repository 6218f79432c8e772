//! `pystrobe record`: sample until told to stop, then write the profile.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::RecordArgs;
use crate::error::Coded;
use crate::launch;
use crate::output::{self, Format, Meta, file::OutputFile};
use crate::privileges;
use crate::profile::Profile;
use crate::sampler::features::Variant;
use crate::sampler::record::RawSample;
use crate::sampler::{DRAIN_INTERVAL, Sampler, SamplerConfig};
use crate::stack::builder::BuildOptions;
use crate::stack::{FrameId, StackBuilder};
use crate::targets::{Selection, Targets, procfs};

/// Everything built from the records: the per-sample work of the ring-buffer callback.
struct Collector {
    builder: StackBuilder,
    profile: Profile,
    stack: Vec<FrameId>,
    malformed: u64,
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

/// Why recording ended.
enum Stop {
    Signal,
    Duration,
    CommandExited(std::process::ExitStatus),
    TargetsExited,
}

pub fn run(args: RecordArgs) -> Result<()> {
    let selection = Selection::from_args(&args);
    if args.subprocesses && args.pids.is_empty() && args.command.is_empty() && !selection.by_name()
    {
        return Err(Coded::new(
            2,
            "-s/--subprocesses follows the descendants of the targets: give -p PID, --match, \
             --python or a command as well (with -a every process is profiled already)"
                .to_string(),
        )
        .into());
    }
    if args.pids.is_empty() && !args.all && args.command.is_empty() && !selection.by_name() {
        bail!(
            "nothing to profile: give -p PID, -a for the whole host, --python, --match PATTERN, \
             or a command to launch (pystrobe record -- python3 app.py)"
        );
    }
    privileges::check()?;
    for &pid in &args.pids {
        if !procfs::alive(pid) {
            bail!("no process with PID {pid}");
        }
    }
    let outputs = outputs(&args)?;
    let user = launch::invoking_user();
    raise_fd_limit();

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    let cfg = SamplerConfig {
        rate_hz: args.rate,
        stack_bytes: args.stack_size,
        pids: selection.filtered().then(|| args.pids.clone()),
        include_idle: args.idle,
        python_native: args.native,
        tracking: selection.tracking(),
    };
    let mut storage = MaybeUninit::uninit();
    let mut sampler = Sampler::start(&mut storage, &cfg)?;
    if sampler.variant == Variant::Legacy {
        eprintln!(
            "pystrobe: note: this kernel lacks {}; using the fallback for Linux 5.10-5.16 \
             (Python stacks are cut at 48 frames)",
            sampler.features.missing_modern().join(", ")
        );
    }
    let targets = Targets::start(selection.clone(), &sampler)?;
    if selection.by_name() && targets.live_count() == 0 {
        eprintln!(
            "pystrobe: no {} yet; waiting for one to start (Ctrl-C to stop)",
            selection.describe().trim_start_matches("the ")
        );
    }
    let mut builder = StackBuilder::new(BuildOptions {
        native: args.native,
        threads: args.threads,
        naming: args.naming.naming(),
    });
    for pid in targets.live_pids() {
        builder.prepare_running(pid);
    }
    publish(&mut builder, &sampler);
    sampler.start_sampling(args.rate)?;
    let sampler = sampler;
    let started = Instant::now();
    let start_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let targets = RefCell::new(targets);

    let mut child = if args.command.is_empty() {
        None
    } else {
        Some(launch::spawn(
            &args.command,
            sampler.filter_fd(),
            user.as_ref(),
        )?)
    };

    let collector = RefCell::new(Collector {
        builder,
        profile: if outputs.iter().any(|o| o.format.needs_timeline()) {
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
            // recording also pays one-time costs (symbol tables, kallsyms) that
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

    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let live = std::io::stderr().is_terminal();
    let mut last_status = Instant::now();
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
        {
            let mut c = collector.borrow_mut();
            for (pid, start) in releasing.drain(..) {
                c.builder.release(pid, start);
            }
            releasing.append(&mut targets.borrow_mut().exited);
            c.builder.processes.sweep();
            targets.borrow_mut().tick(&sampler);
            for w in c.builder.warnings.drain(..) {
                eprintln!(
                    "{}pystrobe: warning: {w}",
                    if live { "\r\x1b[K" } else { "" }
                );
            }
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
        if !args.pids.is_empty() && targets.borrow_mut().none_alive() {
            break Stop::TargetsExited;
        }
        if live && last_status.elapsed() >= Duration::from_millis(250) {
            last_status = Instant::now();
            let c = collector.borrow();
            let lost = sampler.stats().map(|s| s.lost).unwrap_or(0);
            eprint!(
                "\r\x1b[Kpystrobe: {:.1} s, {} samples, {} lost, {} (Ctrl-C to stop)",
                started.elapsed().as_secs_f64(),
                c.profile.total,
                lost,
                plural(c.builder.processes.seen, "process", "processes")
            );
            let _ = std::io::stderr().flush();
        }
    };
    let elapsed = started.elapsed();
    // What was sampled up to now is still in the ring buffer.
    ring.consume().context("reading samples")?;
    drop(ring);
    if live {
        eprint!("\r\x1b[K");
    }

    let stats = sampler.stats().unwrap_or_default();
    if std::env::var_os("PYSTROBE_DEBUG").is_some() {
        let c = collector.borrow();
        eprintln!(
            "pystrobe: debug: {stats:?}, {:?}, processes held {} of {} seen, {} added to the filter, peak RSS {:.1} MiB",
            c.builder.stats,
            c.builder.processes.len(),
            c.builder.processes.seen,
            targets.borrow().added,
            peak_rss_kib() as f64 / 1024.0
        );
    }
    let bpf = sampler.bpf_run_time();
    let c = collector.into_inner();
    let meta = Meta {
        title: title(&args),
        subtitle: format!(
            "{} samples at {} Hz over {:.1} s",
            c.profile.total,
            args.rate,
            elapsed.as_secs_f64()
        ),
        rate_hz: args.rate,
        start_unix_ns,
        duration_ns: elapsed.as_nanos() as u64,
    };
    let owner = user.as_ref().map(|u| (u.uid, u.gid));
    let mut written = Vec::new();
    for o in outputs {
        written.push(format!(
            "{} to {}",
            o.format.description(),
            o.file.path().display()
        ));
        o.file.commit(0o644, owner, |w| {
            output::write(o.format, &c.profile, &c.builder.frames, &meta, w)
        })?;
    }

    if let Stop::CommandExited(status) = reason {
        if !status.success() {
            eprintln!("pystrobe: the command exited with {status}");
        }
    }
    if matches!(reason, Stop::Signal) {
        eprintln!("pystrobe: stopped by signal");
    }
    let built = c.builder.stats;
    let with_user = built.complete + built.truncated;
    let mut summary = format!(
        "pystrobe: wrote {}: {} samples ({} lost) from {} over {:.1} s",
        written.join(" and "),
        c.profile.total,
        stats.lost,
        plural(c.builder.processes.seen, "process", "processes"),
        elapsed.as_secs_f64()
    );
    if built.python > 0 {
        summary += &format!(
            "; Python frames in {:.1} %",
            100.0 * built.python as f64 / c.profile.total.max(1) as f64
        );
    }
    if with_user > 0 {
        summary += &format!(
            "; native stacks complete: {:.1} % of {with_user}",
            100.0 * built.complete as f64 / with_user as f64
        );
    }
    if bpf.run_count > 0 {
        summary += &format!(
            "; BPF {:.2} µs/sample",
            bpf.run_time_ns as f64 / 1000.0 / bpf.run_count as f64
        );
    }
    eprintln!("{summary}");
    if c.profile.total == 0 {
        eprintln!("pystrobe: warning: no samples were collected (were the targets idle?)");
    }
    for w in &c.builder.warnings {
        eprintln!("pystrobe: warning: {w}");
    }
    if c.malformed > 0 {
        eprintln!(
            "pystrobe: warning: {} malformed records were skipped",
            c.malformed
        );
    }
    Ok(())
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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What was profiled, for the flamegraph's title.
fn title(args: &RecordArgs) -> String {
    if !args.command.is_empty() {
        return format!("pystrobe: {}", args.command.join(" "));
    }
    let selection = Selection::from_args(args);
    if selection.by_name() {
        return crate::stack::frame::sanitize(&format!("pystrobe: {}", selection.describe()));
    }
    if args.all {
        return "pystrobe: all processes".to_string();
    }
    let procs: Vec<String> = args
        .pids
        .iter()
        .map(|&pid| format!("{} ({pid})", procfs::cmdline(pid)))
        .collect();
    crate::stack::frame::sanitize(&format!("pystrobe: {}", procs.join(", ")))
}

/// One output file and its format.
struct Output {
    file: OutputFile,
    format: Format,
}

/// The output files, each checked (and its temporary file made) before
/// recording starts: a bad path fails now, not after the recording.
fn outputs(args: &RecordArgs) -> Result<Vec<Output>> {
    let mut wanted: Vec<(PathBuf, Format)> = args
        .output
        .iter()
        .map(|p| {
            let format = args
                .format
                .or_else(|| Format::from_path(p))
                .unwrap_or(Format::Flamegraph);
            (p.clone(), format)
        })
        .collect();
    if wanted.is_empty() {
        let format = args.format.unwrap_or(Format::Flamegraph);
        wanted.push((default_output(format), format));
    }
    for (i, (p, _)) in wanted.iter().enumerate() {
        if wanted[..i].iter().any(|(q, _)| q == p) {
            return Err(Coded::new(2, format!("{} is given twice as -o", p.display())).into());
        }
    }
    wanted
        .into_iter()
        .map(|(p, format)| {
            Ok(Output {
                file: OutputFile::create(&p)?,
                format,
            })
        })
        .collect()
}

fn default_output(format: Format) -> PathBuf {
    let now = unsafe_local_time();
    PathBuf::from(format!("pystrobe-{now}.{}", format.extension()))
}

/// Local time as YYYYMMDD-HHMMSS.
fn unsafe_local_time() -> String {
    // SAFETY: time and localtime_r write only into the locals we pass.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
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
/// recordings need more descriptors than the usual soft limit of 1024.
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
