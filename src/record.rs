//! `pystrobe record`: sample until told to stop, then write the profile.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::RecordArgs;
use crate::error::Coded;
use crate::launch;
use crate::output::{self, Format, Meta, file::OutputFile};
use crate::session::{self, Collector, Observer, Stop};
use crate::targets::{Selection, procfs};

/// The status line on a terminal, and warnings printed over it.
struct StatusLine {
    live: bool,
    last: Instant,
}

impl Observer for StatusLine {
    fn tick(&mut self, c: &mut Collector, lost: u64, elapsed: Duration) -> bool {
        if self.live && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            eprint!(
                "\r\x1b[Kpystrobe: {:.1} s, {} samples, {lost} lost, {} (Ctrl-C to stop)",
                elapsed.as_secs_f64(),
                c.profile.total,
                plural(c.builder.processes.seen, "process", "processes")
            );
            let _ = std::io::stderr().flush();
        }
        true
    }

    fn warn(&mut self, warning: &str) {
        let clear = if self.live { "\r\x1b[K" } else { "" };
        eprintln!("{clear}pystrobe: warning: {warning}");
    }
}

pub fn run(args: RecordArgs) -> Result<()> {
    let selection = session::check_targets(&args.targets)?;
    let outputs = outputs(&args)?;
    let user = launch::invoking_user();
    let mut status = StatusLine {
        live: std::io::stderr().is_terminal(),
        last: Instant::now(),
    };
    let done = session::run(
        &args.targets,
        &args.sampling,
        selection,
        outputs.iter().any(|o| o.format.needs_timeline()),
        user.as_ref(),
        &mut status,
    )?;
    if status.live {
        eprint!("\r\x1b[K");
    }
    let (c, stats, bpf, elapsed, reason) = (
        done.collector,
        done.stats,
        done.bpf,
        done.elapsed,
        done.reason,
    );
    let meta = Meta {
        title: title(&args),
        subtitle: format!(
            "{} samples at {} Hz over {:.1} s",
            c.profile.total,
            args.sampling.rate,
            elapsed.as_secs_f64()
        ),
        rate_hz: args.sampling.rate,
        start_unix_ns: done.start_unix_ns,
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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What was profiled, for the flamegraph's title.
fn title(args: &RecordArgs) -> String {
    let t = &args.targets;
    if !t.command.is_empty() {
        return format!("pystrobe: {}", t.command.join(" "));
    }
    let selection = Selection::from_args(t);
    if selection.by_name() {
        return crate::stack::frame::sanitize(&format!("pystrobe: {}", selection.describe()));
    }
    if t.all {
        return "pystrobe: all processes".to_string();
    }
    let procs: Vec<String> = t
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
