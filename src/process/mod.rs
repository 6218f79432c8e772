//! Per-process state: the files a process maps, where, and an unwinder over
//! them. Built when a process is first sampled, refreshed when a sample
//! falls outside every known module (a library loaded later, say), and
//! released once the process has exited and its samples are in.

pub mod elf_file;
pub mod maps;
pub mod memory;
pub mod ptrace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elf_file::{ElfCache, ElfFile};
use maps::MapEntry;

use crate::unwind::NativeUnwinder;

/// Smallest interval between two re-reads of one process's maps.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// A process not sampled for this long, and no longer running, is released
/// by the sweep: by then every sample it had was drained (the drain runs
/// every 20 ms). Exit events release sooner; the sweep catches the rest.
const IDLE_BEFORE_SWEEP: Duration = Duration::from_secs(1);

/// A file mapped into a process.
#[derive(Clone)]
pub struct MappedFile {
    /// Runtime addresses covered by the file's mappings.
    pub avma: std::ops::Range<u64>,
    /// Runtime address minus stated address.
    pub bias: u64,
    pub file: Arc<ElfFile>,
}

pub struct Process {
    pub pid: u32,
    /// The start time of the process (ns): with the PID, its identity. A
    /// different one means the PID was reused by another process.
    pub start_ns: u64,
    /// The kernel's mm_struct address when first seen: a different one
    /// means the PID exec'd another program.
    pub mm: u64,
    /// The stack root frame naming this process, once interned.
    pub root_frame: Option<crate::stack::FrameId>,
    /// The process name (/proc/PID/comm) when first seen.
    pub name: String,
    /// Its PID in its own namespace, when it runs in another PID namespace.
    pub ns_pid: Option<u32>,
    /// Its working directory, as it sees it: Python files under it are
    /// shown relative to it.
    pub cwd: Option<String>,
    /// Start time as /proc says it (clock ticks), to tell whether the PID
    /// still names this process.
    proc_start: Option<u64>,
    /// When a sample of it was last built (`touch`), for the sweep.
    last_seen: Instant,
    /// Frames already made for this process: Python frames by (code, first
    /// line, instruction), thread frames by (tid, thread name).
    pub py_frame_ids: HashMap<(u64, u32, u64), crate::stack::FrameId>,
    pub thread_frames: HashMap<(u32, [u8; 16]), crate::stack::FrameId>,
    /// Sorted by address.
    pub files: Vec<MappedFile>,
    pub unwinder: NativeUnwinder,
    last_refresh: Option<Instant>,
    /// The maps were read as the program started (at exec): the dynamic
    /// loader had not mapped the libraries yet.
    pub maps_early: bool,
    /// /proc/PID/maps could not be read: the process had exited.
    pub gone: bool,
    pub python: crate::python::PythonState,
}

impl Process {
    /// The mapped file containing `addr`.
    pub fn file_at(&self, addr: u64) -> Option<&MappedFile> {
        let i = self.files.partition_point(|f| f.avma.start <= addr);
        let f = self.files.get(i.checked_sub(1)?)?;
        (addr < f.avma.end).then_some(f)
    }

    /// Re-reads the maps if allowed by the refresh interval. Returns whether
    /// anything was read.
    fn refresh(&mut self, elf: &mut ElfCache, vdso: Option<&Arc<ElfFile>>) -> bool {
        if self
            .last_refresh
            .is_some_and(|t| t.elapsed() < REFRESH_INTERVAL)
        {
            return false;
        }
        self.last_refresh = Some(Instant::now());
        let Ok(maps) = maps::read_maps(self.pid) else {
            self.gone = true;
            return false;
        };
        let before = self.files.len();
        self.files = mapped_files(self.pid, &maps, elf, vdso);
        // A file mapped since (libpython, loaded by the dynamic loader after
        // the first look) may make it a Python process after all.
        if self.files.len() != before
            && matches!(self.python, crate::python::PythonState::NotPython)
        {
            self.python = crate::python::PythonState::Pending;
        }
        self.unwinder = NativeUnwinder::default();
        for f in &self.files {
            self.unwinder
                .add_module(&f.file.name, f.avma.clone(), f.bias, &f.file.unwind);
        }
        true
    }
}

/// Groups a process's mappings by file and opens each file once.
fn mapped_files(
    pid: u32,
    maps: &[MapEntry],
    elf: &mut ElfCache,
    vdso: Option<&Arc<ElfFile>>,
) -> Vec<MappedFile> {
    let mut out: Vec<MappedFile> = Vec::new();
    let mut by_inode: HashMap<(u64, &str), usize> = HashMap::new();
    for m in maps {
        if m.path == "[vdso]" {
            if let Some(v) = vdso {
                let bias = v.load_bias(m.start, m.offset).unwrap_or(m.start);
                out.push(MappedFile {
                    avma: m.start..m.end,
                    bias,
                    file: v.clone(),
                });
            }
            continue;
        }
        if !m.is_file() {
            continue;
        }
        if let Some(&i) = by_inode.get(&(m.inode, m.path.as_str())) {
            let f = &mut out[i];
            f.avma.start = f.avma.start.min(m.start);
            f.avma.end = f.avma.end.max(m.end);
            continue;
        }
        // Only files with code are worth opening; their other mappings are
        // merged into the range above as they come (maps are sorted).
        if !maps
            .iter()
            .any(|o| o.executable && o.inode == m.inode && o.path == m.path)
        {
            continue;
        }
        let Some(file) = elf.open(pid, m.start, m.end, &m.path) else {
            continue;
        };
        let Some(bias) = file.load_bias(m.start, m.offset) else {
            continue;
        };
        by_inode.insert((m.inode, m.path.as_str()), out.len());
        out.push(MappedFile {
            avma: m.start..m.end,
            bias,
            file,
        });
    }
    out.sort_by_key(|f| f.avma.start);
    // Overlapping ranges would confuse address lookup; keep the first.
    out.dedup_by(|b, a| b.avma.start < a.avma.end);
    out
}

/// Every process sampled and not yet released.
pub struct ProcessTable {
    procs: HashMap<u32, Process>,
    elf: ElfCache,
    vdso: Option<Arc<ElfFile>>,
    /// Processes seen in the whole recording, released or not (a process
    /// that exec'd counts once).
    pub seen: usize,
    /// The process last forgotten by `forget`: coming back, it is not new.
    forgotten: Option<(u32, u64)>,
    last_sweep: Instant,
}

impl Default for ProcessTable {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTable {
    pub fn new() -> Self {
        let mut elf = ElfCache::default();
        let vdso = own_vdso().and_then(|f| elf.from_memfd("[vdso]", f));
        ProcessTable {
            procs: HashMap::new(),
            elf,
            vdso,
            seen: 0,
            forgotten: None,
            last_sweep: Instant::now(),
        }
    }

    /// Processes held now (not yet released).
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Process `pid` started at `start_ns`, running in address space `mm`:
    /// created (maps read) on first sight, and anew after an exec (another
    /// mm) or when the PID was reused (another start time). Its name is
    /// empty if /proc/PID/comm was already gone.
    pub fn get(&mut self, pid: u32, start_ns: u64, mm: u64) -> &mut Process {
        let (elf, vdso) = (&mut self.elf, self.vdso.as_ref());
        // mm 0: the process is exiting and has dropped its address space;
        // its last samples still belong to it.
        let mut exec = self.forgotten == Some((pid, start_ns));
        if let Some(p) = self.procs.get(&pid) {
            exec |= p.start_ns == start_ns;
            if p.start_ns != start_ns || (p.mm != mm && mm != 0) {
                self.procs.remove(&pid);
            }
        }
        let seen = &mut self.seen;
        self.procs.entry(pid).or_insert_with(|| {
            // An exec is the same process running another program.
            if !exec {
                *seen += 1;
            }
            let mut p = Process {
                pid,
                start_ns,
                mm,
                root_frame: None,
                name: crate::targets::procfs::comm(pid).unwrap_or_default(),
                ns_pid: crate::targets::procfs::namespace_pid(pid),
                cwd: crate::targets::procfs::cwd(pid),
                proc_start: crate::targets::procfs::stat(pid).map(|s| s.2),
                last_seen: Instant::now(),
                py_frame_ids: HashMap::new(),
                thread_frames: HashMap::new(),
                files: Vec::new(),
                unwinder: NativeUnwinder::default(),
                last_refresh: None,
                maps_early: false,
                gone: false,
                python: crate::python::PythonState::Pending,
            };
            p.refresh(elf, vdso);
            p
        })
    }

    /// The files process `pid` maps now, without keeping any state: for a
    /// look at a running process before its first sample.
    pub fn files_of(&mut self, pid: u32) -> Vec<MappedFile> {
        match maps::read_maps(pid) {
            Ok(maps) => mapped_files(pid, &maps, &mut self.elf, self.vdso.as_ref()),
            Err(_) => Vec::new(),
        }
    }

    /// Drops what is known of `pid`, to be read again at its next use: it
    /// just ran a new program. (A sample taken inside the exec, after the
    /// address space changed but before the name and the mappings did, may
    /// have made an entry for the new address space from the old state.)
    pub fn forget(&mut self, pid: u32) {
        if let Some(p) = self.procs.remove(&pid) {
            self.forgotten = Some((pid, p.start_ns));
        }
    }

    /// Notes that a sample of `pid` was just built: the sweep keeps it.
    pub fn touch(&mut self, pid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.last_seen = Instant::now();
        }
    }

    /// Forgets process `pid` started at `start_ns` (it exited and its
    /// samples are in): its maps, unwinder and interpreter state.
    pub fn release(&mut self, pid: u32, start_ns: u64) {
        if self.procs.get(&pid).is_some_and(|p| p.start_ns == start_ns) {
            self.procs.remove(&pid);
        }
    }

    /// Every few seconds, releases processes that stopped being sampled and
    /// no longer run, whose exit was not reported (or came too early).
    pub fn sweep(&mut self) {
        if self.last_sweep.elapsed() < IDLE_BEFORE_SWEEP {
            return;
        }
        self.last_sweep = Instant::now();
        self.procs.retain(|&pid, p| {
            p.last_seen.elapsed() < IDLE_BEFORE_SWEEP
                || matches!(
                    (crate::targets::procfs::stat(pid), p.proc_start),
                    (Some((_, state, now)), Some(then)) if now == then && !matches!(state, 'Z' | 'X')
                )
        });
    }

    /// Re-reads a process's maps now, whenever they were read last.
    pub fn refresh_now(&mut self, pid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.last_refresh = None;
            p.maps_early = false;
        }
        self.refresh(pid);
    }

    /// Re-reads a process's maps after a sample hit an unknown address.
    pub fn refresh(&mut self, pid: u32) -> bool {
        let (elf, vdso) = (&mut self.elf, self.vdso.as_ref());
        self.procs
            .get_mut(&pid)
            .is_some_and(|p| p.refresh(elf, vdso))
    }
}

/// pystrobe's own vDSO, copied into a memfd: every process on this kernel
/// maps the same image, and the symbolizer needs a file to read.
fn own_vdso() -> Option<std::fs::File> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let maps = maps::read_maps(std::process::id()).ok()?;
    let m = maps.iter().find(|m| m.path == "[vdso]")?;
    let len = usize::try_from(m.end - m.start).ok()?;
    // SAFETY: the vDSO mapping is readable for its whole length in our own
    // address space, as /proc/self/maps just told us.
    let bytes = unsafe { std::slice::from_raw_parts(m.start as *const u8, len) };
    // SAFETY: memfd_create with a static name; a non-negative result is ours.
    let fd = unsafe { libc::memfd_create(c"pystrobe-vdso".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes).ok()?;
    Some(file)
}
