//! Command-line interface. Flag names follow py-spy's where they overlap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "pystrobe",
    version,
    about = "Sampling profiler for Python and native code, for one process or the whole host",
    long_about = "Sampling profiler for Python and native code, for one process or the whole host.\n\n\
        A BPF program samples every CPU; pystrobe rebuilds each sampled stack (native frames \
        unwound from .eh_frame, and kernel frames) and writes a flamegraph. It needs root, or \
        CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_ADMIN."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record samples and write a flamegraph (or another format) when done.
    ///
    /// Recording stops at the end of --duration, when the launched command or
    /// every -p process has exited, or on Ctrl-C / SIGTERM; the output is
    /// written in every case.
    #[command(after_help = "Examples:\n  \
        sudo pystrobe record -p 1234 -o profile.svg        profile a running process until Ctrl-C\n  \
        sudo pystrobe record -a -d 10 -f folded            the whole host for 10 s, as folded stacks\n  \
        sudo pystrobe record -r 1000 -- python3 app.py     launch a command and profile it\n  \
        sudo pystrobe record -p 1234 -s                     a server and every worker it starts\n  \
        sudo pystrobe record --match gunicorn -d 30         every process whose command line says gunicorn\n  \
        sudo pystrobe record --python -t                    every Python process, by thread\n\n\
        Exit status: 0 when the output was written; 1 on an error (no such process, \
        missing privileges, unwritable output); 2 on a usage error; 126 or 127 when \
        the command cannot be run or is not found.")]
    Record(RecordArgs),

    /// Draw a differential flamegraph of two recordings (folded files, `-f folded`).
    ///
    /// The flamegraph has AFTER's shape; a frame is red where it got more
    /// samples than in BEFORE and blue where it got fewer. BEFORE is scaled
    /// to AFTER's total first, so recordings of different lengths compare
    /// (--absolute compares raw counts). Process and thread IDs are taken
    /// out of their frames, since they differ between two runs.
    #[command(after_help = "Example:\n  \
        sudo pystrobe record -p 1234 -d 30 -o before.txt\n  \
        (fix the slow query, restart the server)\n  \
        sudo pystrobe record -p 5678 -d 30 -o after.txt\n  \
        pystrobe diff before.txt after.txt -o diff.svg")]
    Diff(DiffArgs),

    /// Show the hottest functions live, refreshed every second.
    ///
    /// The same targets as record (-p, -s, -a, --python, --match, a command)
    /// and the same stacks (--native for C functions too). Columns: own %
    /// (the function itself was running) and total % (it was on the stack)
    /// of the last second's samples, own and total CPU time since the start.
    /// Keys: 1-4 sort by a column, L toggles line numbers, q or Ctrl-C quits.
    #[command(after_help = "Examples:\n  \
        sudo pystrobe top -p 1234              one process\n  \
        sudo pystrobe top --python --native    every Python process, C functions too")]
    Top(TopArgs),

    /// Print the current stack of every thread of a process.
    ///
    /// The threads are stopped for a few milliseconds (ptrace) so that the
    /// snapshot is consistent; --nonblocking reads them while they run
    /// (Python 3.11 and later). Python frames by default; --native adds C
    /// extensions and libc under them. Each thread shows its name and
    /// whether it was on a CPU.
    #[command(after_help = "Examples:\n  \
        sudo pystrobe dump -p 1234             every thread's Python stack\n  \
        sudo pystrobe dump -p 1234 --native    with native frames\n  \
        sudo pystrobe dump -p 1234 --json      for scripts")]
    Dump(DumpArgs),

    /// Print a shell completion script.
    ///
    /// bash: `pystrobe completions bash > /etc/bash_completion.d/pystrobe`;
    /// zsh: into a directory on $fpath as `_pystrobe`; fish:
    /// `~/.config/fish/completions/pystrobe.fish`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff), or write one page per command into a directory.
    ///
    /// `pystrobe man | man -l -` reads it now; `pystrobe man -o /usr/local/share/man/man1`
    /// installs pystrobe.1, pystrobe-record.1 and the others.
    Man {
        /// Write pystrobe.1 and pystrobe-COMMAND.1 into this directory.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The process to dump.
    #[arg(short, long = "pid", value_name = "PID")]
    pub pid: u32,

    /// Show native frames too: C extensions, libc, the interpreter.
    #[arg(short, long)]
    pub native: bool,

    /// JSON instead of text: threads with their frames, innermost first.
    #[arg(long)]
    pub json: bool,

    /// Do not stop the process: read its threads while they run (the
    /// stacks may be torn; native stacks need a stop; Python 3.11+ only
    /// maps Python threads to OS threads without one).
    #[arg(long, conflicts_with = "native")]
    pub nonblocking: bool,

    #[command(flatten)]
    pub naming: NamingArgs,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The recording before the change (folded stacks).
    pub before: PathBuf,
    /// The recording after the change (folded stacks).
    pub after: PathBuf,
    /// Output SVG.
    #[arg(short, long, value_name = "FILE", default_value = "diff.svg")]
    pub output: PathBuf,
    /// Compare raw sample counts instead of scaling BEFORE to AFTER's total.
    #[arg(long)]
    pub absolute: bool,
    /// Keep process and thread IDs in their frames.
    #[arg(long)]
    pub keep_ids: bool,
}

/// What to profile: shared by `record` and `top`.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Profile this process (all its threads). Repeat for several.
    #[arg(short, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Profile every process on the host (except pystrobe itself).
    #[arg(short, long, conflicts_with = "pids")]
    pub all: bool,
    /// Also profile every descendant of the targets: children forked or
    /// started later (a reloading dev server's new workers, say) and those
    /// already running. Followed in the kernel, so a child's first samples
    /// are not lost; children that exit stay in the profile.
    #[arg(short, long)]
    pub subprocesses: bool,
    /// Profile only Python processes on the host, including those started
    /// while recording.
    #[arg(long, conflicts_with_all = ["pids", "command"])]
    pub python: bool,
    /// Profile only processes whose name or command line contains PATTERN
    /// (a plain substring), including those started while recording. With
    /// --python, only Python processes among them.
    #[arg(long = "match", value_name = "PATTERN", conflicts_with_all = ["pids", "command"],
          value_parser = parse_pattern)]
    pub pattern: Option<String>,
    /// A command to launch and profile; recording stops when it exits. Under
    /// sudo it runs as the invoking user (SUDO_UID/SUDO_GID), who also owns
    /// the output file.
    #[arg(trailing_var_arg = true, value_name = "COMMAND", conflicts_with_all = ["pids", "all"])]
    pub command: Vec<String>,
}

/// How to sample and what stacks show: shared by `record` and `top`.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Samples per second, per CPU.
    #[arg(short, long, default_value_t = 100, value_name = "HZ",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rate: u64,
    /// Stop after this many seconds (default: until Ctrl-C, or until the targets exit).
    #[arg(short, long, value_name = "SECONDS", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Bytes of user stack copied per sample for native unwinding. Deep native
    /// code (C extensions, numeric libraries) may need more than the default.
    #[arg(long, default_value_t = 16384, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(0..=65536))]
    pub stack_size: u32,
    /// Show native frames too: C extensions, libc and kernel frames under
    /// the Python frame that called them (the interpreter's own plumbing
    /// between Python frames is folded away). Without it, Python processes
    /// show only their Python frames.
    #[arg(short, long)]
    pub native: bool,
    /// Include samples of idle CPUs (the kernel's idle task, shown as `[idle]`).
    #[arg(long)]
    pub idle: bool,
    /// Add a frame per thread under each process: `thread name (tid)`.
    #[arg(short, long)]
    pub threads: bool,
    #[command(flatten)]
    pub naming: NamingArgs,
}

#[derive(Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    /// Output file; repeat to write several formats from one recording. The
    /// format comes from the extension (.svg, .txt, .speedscope.json,
    /// .trace.json, .pb.gz) unless -f says otherwise [default:
    /// pystrobe-<date>-<time>.<extension of the format>].
    #[arg(short, long, value_name = "FILE")]
    pub output: Vec<PathBuf>,
    /// Output format [default: from the -o extension, else flamegraph].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
}

/// How Python frames are named; shared by the commands that show them.
#[derive(Args, Debug, Clone, Copy)]
pub struct NamingArgs {
    /// One frame per Python function, not per line: every line of a
    /// function is shown as its first line.
    #[arg(short = 'F', long = "function", conflicts_with = "nolineno")]
    pub function: bool,

    /// Leave line numbers out of Python frames (one frame per function).
    #[arg(long)]
    pub nolineno: bool,

    /// Show Python files by their full path, not shortened (site-packages/,
    /// the standard library and the working directory are cut off).
    #[arg(long)]
    pub full_filenames: bool,
}

impl NamingArgs {
    pub fn naming(self) -> crate::stack::naming::Naming {
        use crate::stack::naming::{Lines, Naming};
        Naming {
            lines: if self.nolineno {
                Lines::None
            } else if self.function {
                Lines::Function
            } else {
                Lines::Current
            },
            full_filenames: self.full_filenames,
        }
    }
}

fn parse_pattern(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("the pattern must not be empty".to_string())
    } else {
        Ok(s.to_string())
    }
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let d: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if d.is_finite() && d > 0.0 && d < 1e9 {
        Ok(d)
    } else {
        Err("the duration must be a positive number of seconds".to_string())
    }
}
