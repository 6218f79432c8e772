//! `pystrobe dump -p PID`: the current stack of every thread of a process.
//!
//! No BPF here: the threads are stopped for a consistent snapshot (ptrace,
//! a few milliseconds; --nonblocking reads them running), their Python
//! frames are walked from userspace (python/walk.rs) and, with --native,
//! their stacks are read from the registers up. Each thread then becomes one
//! synthetic sample for the same stack builder `record` uses, so frames are
//! named, unwound and merged exactly as in a recording.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::cli::DumpArgs;
use crate::process::memory::ProcessMemory;
use crate::process::ptrace::{self, Regs, Stopped};
use crate::python::walk::WalkedThread;
use crate::sampler::record::{
    PY_FRAME_ENTRY, RawSample, SAMPLE_PY_TRUNCATED, SAMPLE_USER_REGS, py_frame, sample_header,
};
use crate::stack::builder::BuildOptions;
use crate::stack::{FrameKind, StackBuilder};
use crate::targets::procfs;

/// Bytes of stack read above the stack pointer for --native.
const STACK_BYTES: usize = 64 * 1024;
/// The address space and start time given to the synthetic samples: one
/// process, one snapshot.
const MM: u64 = 1;
const START: u64 = 0;

#[derive(Serialize)]
struct Dump {
    pid: u32,
    command: String,
    /// `3.11`, or null for a process without a Python interpreter.
    python: Option<String>,
    threads: Vec<Thread>,
}

#[derive(Serialize)]
struct Thread {
    tid: u32,
    name: String,
    /// The kernel's state letter: R running or runnable, S sleeping, D in
    /// uninterruptible wait, ...
    state: String,
    on_cpu: bool,
    /// Whether the thread has a Python thread state.
    python: bool,
    /// Innermost first.
    frames: Vec<Frame>,
}

#[derive(Serialize)]
struct Frame {
    name: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
}

pub fn run(args: DumpArgs) -> Result<()> {
    crate::privileges::check_ptrace()?;
    let pid = args.pid;
    if !procfs::alive(pid) {
        bail!("no process with PID {pid}");
    }
    if pid == std::process::id() {
        bail!("pystrobe cannot dump itself");
    }
    if is_kernel_thread(pid) {
        bail!("PID {pid} is a kernel thread: it has no user stack to dump");
    }
    // Thread states before the stop, which makes every thread look stopped.
    let states: Vec<(u32, char)> = ptrace::tasks(pid)
        .with_context(|| format!("listing the threads of PID {pid}"))?
        .into_iter()
        .map(|tid| (tid, task_state(pid, tid)))
        .collect();
    let stopped = if args.nonblocking {
        None
    } else {
        Some(Stopped::stop(pid).map_err(|e| {
            anyhow::anyhow!(
                "cannot stop PID {pid} to read its threads ({e}); is a debugger attached? \
                 --nonblocking reads them without stopping"
            )
        })?)
    };

    let mut builder = StackBuilder::new(BuildOptions {
        native: args.native,
        threads: false,
        naming: args.naming.naming(),
    });
    builder.prepare(pid, START, MM);
    let python = builder.python_threads(pid, START, MM);
    let mem = ProcessMemory::open(pid).ok();
    let mut threads = Vec::new();
    let mut out = Vec::new();
    for &(tid, state) in &states {
        let regs = stopped.as_ref().and_then(|s| s.regs(tid));
        let walked = python
            .as_ref()
            .and_then(|(_, list)| thread_state(list, tid, regs));
        // Native frames are shown with --native, and for a thread without
        // Python frames (a process without an interpreter, say).
        let native = args.native || walked.is_none_or(|w| w.frames.is_empty());
        let stack = match (native, regs, &mem) {
            (true, Some(r), Some(mem)) => read_stack(mem, r.sp),
            _ => Vec::new(),
        };
        let name = procfs::task_comm(pid, tid).unwrap_or_default();
        let (header, frames) = synthetic_sample(pid, tid, &name, regs, walked, stack.len());
        let sample = RawSample {
            header: &header,
            py_frames: &frames,
            stack: &stack,
        };
        builder.build(&sample, &mut out);
        threads.push(Thread {
            tid,
            name,
            state: state.to_string(),
            on_cpu: state == 'R',
            python: walked.is_some(),
            frames: out
                .iter()
                .skip(1) // the process frame
                .rev()
                .map(|&id| {
                    let f = builder.frames.get(id);
                    Frame {
                        name: f.name.clone(),
                        kind: kind_name(f.kind),
                        function: f.source.as_ref().map(|s| s.function.clone()),
                        file: f.source.as_ref().map(|s| s.file.clone()),
                        line: f.source.as_ref().map(|s| s.line).filter(|&l| l > 0),
                    }
                })
                .collect(),
        });
    }
    // Everything is read: let the process go before printing.
    drop(stopped);

    let dump = Dump {
        pid,
        command: procfs::cmdline(pid),
        python: python
            .as_ref()
            .map(|((major, minor), _)| format!("{major}.{minor}")),
        threads,
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &dump)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        write_text(&dump, args.native, &mut stdout)
    };
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing the dump"),
    }
}

/// The thread state of thread `tid`: by the native thread ID the interpreter
/// records (3.11+), else by pthread_self(), which is the fs base the stopped
/// thread's registers show.
fn thread_state(list: &[WalkedThread], tid: u32, regs: Option<Regs>) -> Option<&WalkedThread> {
    list.iter().find(|w| w.native_id == Some(tid)).or_else(|| {
        let fs = regs?.fs_base;
        list.iter().find(|w| fs != 0 && w.thread_id == fs)
    })
}

/// A sample as the BPF program would have written it for this thread.
fn synthetic_sample(
    pid: u32,
    tid: u32,
    comm: &str,
    regs: Option<Regs>,
    walked: Option<&WalkedThread>,
    stack_len: usize,
) -> (sample_header, Vec<py_frame>) {
    let mut h = sample_header {
        tgid: pid,
        tid,
        mm: MM,
        start_ns: START,
        ..Default::default()
    };
    if let Some(r) = regs {
        h.flags |= SAMPLE_USER_REGS;
        (h.ip, h.sp, h.bp) = (r.ip, r.sp, r.bp);
    }
    for (d, &b) in h.comm.iter_mut().zip(comm.as_bytes().iter().take(15)) {
        *d = b as _;
    }
    let frames: Vec<py_frame> = walked
        .map(|w| {
            w.frames
                .iter()
                .map(|f| py_frame {
                    code: f.code,
                    instr: f.instr,
                    shim: f.shim,
                    first_line: f.first_line,
                    flags: if f.entry { PY_FRAME_ENTRY } else { 0 },
                })
                .collect()
        })
        .unwrap_or_default();
    if walked.is_some_and(|w| w.truncated) {
        h.flags |= SAMPLE_PY_TRUNCATED;
    }
    h.py_frames = frames.len() as u32;
    h.ustack_bytes = stack_len as u32;
    (h, frames)
}

/// Up to STACK_BYTES from `sp`, page by page until a page cannot be read
/// (the top of the stack mapping).
fn read_stack(mem: &ProcessMemory, sp: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(STACK_BYTES);
    let mut addr = sp;
    while out.len() < STACK_BYTES {
        let chunk = (4096 - (addr & 4095)) as usize;
        let chunk = chunk.min(STACK_BYTES - out.len());
        let mut buf = vec![0u8; chunk];
        if mem.read_exact(addr, &mut buf).is_err() {
            break;
        }
        out.extend_from_slice(&buf);
        addr += chunk as u64;
    }
    out
}

/// Kernel threads have the PF_KTHREAD flag (field 9 of /proc/PID/stat).
fn is_kernel_thread(pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")?
                .1
                .split_whitespace()
                .nth(6)?
                .parse::<u64>()
                .ok()
        })
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

fn task_state(pid: u32, tid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ")?.1.chars().next())
        .unwrap_or('?')
}

fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Python => "python",
        FrameKind::Native => "native",
        FrameKind::Kernel => "kernel",
        FrameKind::Truncated => "marker",
        FrameKind::Process | FrameKind::Thread => "process",
    }
}

fn write_text(d: &Dump, native: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let python = match &d.python {
        Some(v) => format!("Python {v}"),
        None => "no Python interpreter".to_string(),
    };
    writeln!(
        out,
        "Process {}: {} ({python})",
        d.pid,
        crate::stack::frame::sanitize(&d.command)
    )?;
    for t in &d.threads {
        let state = if t.on_cpu { "on CPU" } else { "off CPU" };
        writeln!(out)?;
        writeln!(
            out,
            "Thread {} \"{}\" ({state}, state {})",
            t.tid,
            crate::stack::frame::sanitize(&t.name),
            t.state
        )?;
        if t.frames.is_empty() {
            let why = if d.python.is_some() && !t.python {
                "no Python thread state"
            } else if !native {
                "no Python frames (--native shows native ones)"
            } else {
                "no frames"
            };
            writeln!(out, "    ({why})")?;
        }
        for f in &t.frames {
            writeln!(out, "    {}", f.name)?;
        }
    }
    Ok(())
}
