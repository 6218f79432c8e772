//! Loading, configuring and attaching the BPF sampling program, and reading
//! the records and counters it produces.

pub mod features;
pub mod perf_event;
pub mod record;
mod skel;

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use skel::{SamplerSkel, SamplerSkelBuilder, types};

/// Largest user-stack copy the BPF program supports (MAX_USTACK_BYTES).
pub const MAX_STACK_BYTES: u32 = 65536;
/// Bytes of a record before its user-stack copy.
pub const HEADER_BYTES: usize = size_of::<types::sample_header>();
/// How often userspace drains the ring buffer. The BPF side never wakes us
/// (a wakeup per record costs ~5 µs), so this sets the latency of processing,
/// and so how soon a new Python process's frames are walked. An empty drain
/// costs a few µs.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// What to sample.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// Sampling frequency per CPU.
    pub rate_hz: u64,
    /// Bytes of user stack to copy per sample.
    pub stack_bytes: u32,
    /// Sample only these processes (and those added later); `None`: every process.
    pub pids: Option<Vec<u32>>,
    /// Keep samples of the idle task.
    pub include_idle: bool,
    /// Capture native and kernel stacks of samples with Python frames too
    /// (`--native`); without it they are not shown, so not copied.
    pub python_native: bool,
    /// How the filter follows processes as they fork, exec and exit.
    pub tracking: Tracking,
}

/// The in-kernel rules of bpf/track.h.
#[derive(Clone, Debug, Default)]
pub struct Tracking {
    /// A new process forked by a target is a target.
    pub follow_forks: bool,
    /// A target stays one when it execs.
    pub keep_on_exec: bool,
    /// A process that execs is a target when its new name matches `comm`.
    pub select_on_exec: bool,
    /// The name pattern for `select_on_exec`, and whether it must be a prefix.
    pub comm: Option<(Vec<u8>, bool)>,
    /// Report every exec, not only targets'.
    pub report_execs: bool,
    /// Report every process exit, not only targets'.
    pub report_all_exits: bool,
}

/// Counters kept by the BPF program, summed over CPUs.
#[derive(Clone, Copy, Debug, Default)]
pub struct SamplerStats {
    pub samples: u64,
    pub lost: u64,
    pub filtered: u64,
    pub ustack_faults: u64,
    pub py_samples: u64,
    pub py_no_thread: u64,
    pub py_thread_walks: u64,
}

/// The kernel's accounting of the BPF program's own run time.
#[derive(Clone, Copy, Debug, Default)]
pub struct BpfRunTime {
    pub run_time_ns: u64,
    pub run_count: u64,
}

/// A loaded and attached sampler. Dropping it detaches the program.
pub struct Sampler<'obj> {
    skel: SamplerSkel<'obj>,
    /// The program variant loaded for this kernel, and what was probed.
    pub variant: features::Variant,
    pub features: features::Features,
    _links: Vec<Link>,
    _events: Vec<OwnedFd>,
    _stats_fd: Option<OwnedFd>,
}

/// libbpf's messages, kept to explain a failed load instead of printing them
/// all the time.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    if level != libbpf_rs::PrintLevel::Debug {
        if let Ok(mut log) = LIBBPF_LOG.lock() {
            log.push(msg.trim_end().to_string());
        }
    }
}

fn libbpf_log_tail() -> String {
    let log = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let tail: Vec<_> = log.iter().rev().take(12).rev().cloned().collect();
    tail.join("\n")
}

impl<'obj> Sampler<'obj> {
    /// Loads the program, configures it, and starts following processes;
    /// sampling starts with `start_sampling`.
    pub fn start(storage: &'obj mut MaybeUninit<OpenObject>, cfg: &SamplerConfig) -> Result<Self> {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
        let probed = features::Features::probe();
        let variant = probed.variant()?;
        let ncpus = libbpf_rs::num_possible_cpus().context("counting possible CPUs")?;
        let online = perf_event::online_cpus()?.len().max(1);

        let mut open = SamplerSkelBuilder::default()
            .open(storage)
            .context("opening the BPF object")?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("BPF object has no .rodata"))?;
        ro.stack_bytes = cfg.stack_bytes.min(MAX_STACK_BYTES);
        ro.self_tgid = std::process::id();
        ro.filter_pids = cfg.pids.is_some();
        ro.include_idle = cfg.include_idle;
        ro.python_native = cfg.python_native;
        let t = &cfg.tracking;
        ro.follow_forks = t.follow_forks;
        ro.keep_on_exec = t.keep_on_exec;
        ro.select_on_exec = t.select_on_exec;
        ro.report_execs = t.report_execs;
        ro.report_all_exits = t.report_all_exits;
        if let Some((pattern, prefix)) = &t.comm {
            // Longer than a kernel task name: it can only match command
            // lines, which userspace checks.
            if pattern.len() < ro.comm_pattern.len() {
                for (d, &b) in ro.comm_pattern.iter_mut().zip(pattern) {
                    *d = b as _;
                }
                ro.comm_pattern_len = pattern.len() as u32;
                ro.comm_prefix = *prefix;
            }
        }

        // Only the variant this kernel runs is loaded: the other one would
        // not pass its verifier.
        open.progs
            .on_sample
            .set_autoload(variant == features::Variant::Modern);
        open.progs
            .on_sample_legacy
            .set_autoload(variant == features::Variant::Legacy);
        open.maps.scratch.set_max_entries(ncpus as u32)?;
        open.maps
            .samples
            .set_max_entries(ring_buffer_bytes(cfg, online))?;

        let skel = open.load().map_err(|err| {
            anyhow!(
                "loading the BPF program failed: {err}\n{}",
                libbpf_log_tail()
            )
        })?;

        let mut sampler = Sampler {
            skel,
            variant,
            features: probed,
            _links: Vec::new(),
            _events: Vec::new(),
            _stats_fd: enable_bpf_stats(),
        };
        for &pid in cfg.pids.iter().flatten() {
            sampler.add_pid(pid)?;
        }
        // Process tracking first, so that no fork between here and the
        // first sample escapes the filter.
        for prog in [
            &sampler.skel.progs.on_fork,
            &sampler.skel.progs.on_exec,
            &sampler.skel.progs.on_exit,
        ] {
            let link = prog
                .attach()
                .context("attaching the process-tracking programs (sched tracepoints)")?;
            sampler._links.push(link);
        }
        Ok(sampler)
    }

    /// Starts sampling: attaches the program to a CPU-clock event on every
    /// online CPU. Separate from `start` so that the targets running already
    /// can be prepared (their interpreters published) before the first sample.
    pub fn start_sampling(&mut self, rate_hz: u64) -> Result<()> {
        let events = perf_event::open_cpu_clock_events(rate_hz)?;
        for fd in &events {
            let link = self
                .program()
                .attach_perf_event(fd.as_raw_fd())
                .context("attaching the BPF program to a perf event")?;
            self._links.push(link);
        }
        self._events = events;
        Ok(())
    }

    /// The loaded program.
    fn program(&self) -> &libbpf_rs::ProgramMut<'obj> {
        match self.variant {
            features::Variant::Modern => &self.skel.progs.on_sample,
            features::Variant::Legacy => &self.skel.progs.on_sample_legacy,
        }
    }

    /// Adds a process to the in-kernel filter.
    pub fn add_pid(&self, pid: u32) -> Result<()> {
        self.skel
            .maps
            .target_pids
            .update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
            .with_context(|| format!("adding PID {pid} to the sampling filter"))
    }

    /// The filter map's descriptor, for a launched command to add itself
    /// (see launch.rs).
    pub fn filter_fd(&self) -> std::os::fd::RawFd {
        self.skel.maps.target_pids.as_fd().as_raw_fd()
    }

    /// Removes a process from the in-kernel filter.
    pub fn remove_pid(&self, pid: u32) -> Result<()> {
        match self.skel.maps.target_pids.delete(&pid.to_ne_bytes()) {
            Ok(()) => Ok(()),
            // Not there (it exited, or was never added): nothing to remove.
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing PID {pid} from the filter")),
        }
    }

    /// Lets the BPF program walk the Python frames of process `pid` running
    /// in address space `mm`, with the interpreter's layout.
    pub fn publish_python(
        &self,
        pid: u32,
        mm: u64,
        runtime: u64,
        layout: &crate::python::layout::Layout,
    ) -> Result<()> {
        const NONE: u16 = 0xffff;
        let off = |v: u64| u16::try_from(v).unwrap_or(NONE);
        let opt = |v: Option<u64>| v.map_or(NONE, off);
        let py = types::py_proc {
            runtime,
            mm,
            // Pointers to objects are 8-byte aligned: clearing the low bits
            // removes 3.14's _PyStackRef tags and changes nothing before.
            code_mask: !7,
            runtime_interpreters_head: off(layout.runtime_interpreters_head),
            interp_next: off(layout.interp_next),
            interp_threads_head: off(layout.interp_threads_head),
            tstate_next: off(layout.tstate_next),
            tstate_thread_id: off(layout.tstate_thread_id),
            tstate_frame: off(layout.tstate_frame),
            cframe_current_frame: opt(layout.cframe_current_frame),
            frame_previous: off(layout.frame_previous),
            frame_code: off(layout.frame_code),
            frame_instr: off(layout.frame_instr),
            frame_is_entry: opt(layout.frame_is_entry),
            frame_owner: opt(layout.frame_owner),
            code_firstlineno: off(layout.code_firstlineno),
            instr_is_pointer: u8::from(layout.instr_is_pointer),
            owner_cstack: layout.owner_cstack.unwrap_or(u8::MAX),
            _pad: 0,
        };
        // SAFETY: py_proc is a repr(C) struct of integers; we view its bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const py).cast::<u8>(), size_of::<types::py_proc>())
        };
        self.skel
            .maps
            .py_procs
            .update(&pid.to_ne_bytes(), bytes, MapFlags::ANY)
            .with_context(|| format!("publishing the Python layout of PID {pid}"))
    }

    /// Stops walking the Python frames of process `pid`.
    pub fn withdraw_python(&self, pid: u32) -> Result<()> {
        self.skel
            .maps
            .py_procs
            .delete(&pid.to_ne_bytes())
            .with_context(|| format!("withdrawing the Python layout of PID {pid}"))
    }

    /// A reader of both ring buffers: `on_event` gets each process event
    /// and `on_record` each raw sample. Events are read first in every
    /// consume, so an exit is seen before the last samples of its process.
    pub fn ring_buffer<'cb, F, E>(
        &'cb self,
        on_record: F,
        mut on_event: E,
    ) -> Result<RingBuffer<'cb>>
    where
        F: FnMut(&[u8]) -> i32 + 'cb,
        E: FnMut(ProcEvent) + 'cb,
    {
        let mut builder = RingBufferBuilder::new();
        builder.add(&self.skel.maps.events, move |data: &[u8]| {
            if let Some(e) = ProcEvent::parse(data) {
                on_event(e);
            }
            0
        })?;
        builder.add(&self.skel.maps.samples, on_record)?;
        Ok(builder.build()?)
    }

    /// The BPF program's counters, summed over CPUs.
    pub fn stats(&self) -> Result<SamplerStats> {
        let per_cpu = self
            .skel
            .maps
            .stats
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default();
        let mut total = SamplerStats::default();
        for bytes in per_cpu {
            let mut s = types::sampler_stats::default();
            if plain::copy_from_bytes(&mut s, &bytes).is_ok() {
                total.samples += s.samples;
                total.lost += s.lost;
                total.filtered += s.filtered;
                total.ustack_faults += s.ustack_faults;
                total.py_samples += s.py_samples;
                total.py_no_thread += s.py_no_thread;
                total.py_thread_walks += s.py_thread_walks;
            }
        }
        Ok(total)
    }

    /// Kernel time spent in the BPF program so far (zero when the kernel
    /// refused to enable run-time statistics).
    pub fn bpf_run_time(&self) -> BpfRunTime {
        let fd = self.program().as_fd().as_raw_fd();
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info is a zeroed bpf_prog_info of the length we pass.
        let rc = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if rc != 0 {
            return BpfRunTime::default();
        }
        BpfRunTime {
            run_time_ns: info.run_time_ns,
            run_count: info.run_cnt,
        }
    }
}

// SAFETY: sampler_stats is a repr(C) struct of u64s.
unsafe impl plain::Plain for types::sampler_stats {}
// SAFETY: proc_event is a repr(C) struct of integers and a byte array.
unsafe impl plain::Plain for types::proc_change {}

/// A change in the set of processes, reported by bpf/track.h.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEventKind {
    /// A target forked a new process, which is now a target too.
    Fork { parent: u32 },
    /// The process ran a new program.
    Exec,
    /// The process's last thread exited.
    Exit,
}

#[derive(Clone, Debug)]
pub struct ProcEvent {
    pub kind: ProcEventKind,
    pub pid: u32,
    /// As in the sample header: with `pid`, the process's identity.
    pub start_ns: u64,
    /// The address space it now runs in (a forked child's own).
    pub mm: u64,
    pub comm: String,
}

impl ProcEvent {
    fn parse(data: &[u8]) -> Option<ProcEvent> {
        let mut e = types::proc_change::default();
        plain::copy_from_bytes(&mut e, data).ok()?;
        let kind = match e.kind {
            1 => ProcEventKind::Fork { parent: e.parent },
            2 => ProcEventKind::Exec,
            3 => ProcEventKind::Exit,
            _ => return None,
        };
        let comm: Vec<u8> = e
            .comm
            .iter()
            .map(|&c| c as u8)
            .take_while(|&c| c != 0)
            .collect();
        Some(ProcEvent {
            kind,
            pid: e.pid,
            start_ns: e.start_ns,
            mm: e.mm,
            comm: String::from_utf8_lossy(&comm).into_owned(),
        })
    }
}

/// Turns on the kernel's BPF run-time accounting for as long as the returned
/// descriptor is open (a few ns per program run), so pystrobe can report its
/// own kernel-side cost.
fn enable_bpf_stats() -> Option<OwnedFd> {
    // SAFETY: plain syscall wrapper; returns a new fd or a negative error.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    // SAFETY: a non-negative return is a descriptor we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Ring buffer size: room for a quarter second of full-size records from
/// every CPU (a dozen drain intervals), as a power of two between 4 MiB and 256 MiB.
fn ring_buffer_bytes(cfg: &SamplerConfig, cpus: usize) -> u32 {
    let record = HEADER_BYTES as u64 + u64::from(cfg.stack_bytes);
    let want = cfg
        .rate_hz
        .saturating_mul(cpus as u64)
        .saturating_mul(record)
        / 4;
    want.clamp(4 << 20, 256 << 20)
        .next_power_of_two()
        .min(256 << 20) as u32
}
