//! ELF files mapped by profiled processes, opened once per file and shared by
//! every process that maps them.
//!
//! A file is opened through /proc/PID/map_files (or /proc/PID/root), so files
//! of chrooted and containerized processes, and deleted files, resolve. The
//! descriptor is kept open: the symbolizer reads the file through
//! /proc/self/fd/N, which still works after the process that mapped it exits.
//! Sections are read with pread into memory rather than mmapped, so a target
//! that truncates a mapped file cannot crash pystrobe with SIGBUS.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSegment, ReadCache};

use crate::unwind::UnwindSections;

/// Identifies an [`ElfFile`] within one recording.
pub type FileId = u32;

/// Largest section copied for unwinding; anything larger is hostile or not
/// worth the memory.
const MAX_SECTION_BYTES: u64 = 256 << 20;

pub struct ElfFile {
    pub id: FileId,
    /// The path as the mapping process named it (for messages and unknown frames).
    pub name: String,
    /// Kept open for the symbolizer; see `symbol_path`.
    file: File,
    /// Loadable segments: (file offset, virtual address, file size).
    loads: Vec<(u64, u64, u64)>,
    pub unwind: UnwindSections,
    /// Defines `_PyRuntime` (as a dynamic symbol or the `.PyRuntime`
    /// section): a CPython interpreter, whatever the file is called.
    pub defines_py_runtime: bool,
}

impl ElfFile {
    fn parse(id: FileId, name: String, file: File) -> io::Result<ElfFile> {
        let cache = ReadCache::new(&file);
        let obj = object::File::parse(&cache)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let loads = obj
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, s.address(), size)
            })
            .collect();
        let section = |name: &str| -> Option<(std::ops::Range<u64>, Arc<[u8]>)> {
            let s = obj.section_by_name(name)?;
            if s.size() > MAX_SECTION_BYTES {
                return None;
            }
            let data = s.data().ok()?;
            Some((s.address()..s.address() + s.size(), Arc::from(data)))
        };
        let unwind = UnwindSections::from_sections(&section);
        let defines_py_runtime = obj.section_by_name(".PyRuntime").is_some() || {
            use object::ObjectSymbol;
            obj.dynamic_symbols().any(|s| s.name() == Ok("_PyRuntime"))
        };
        drop(obj);
        drop(cache);
        Ok(ElfFile {
            id,
            name,
            file,
            loads,
            unwind,
            defines_py_runtime,
        })
    }

    /// Stated addresses of the named symbols (dynamic symbols first, then the
    /// full symbol table), and of the named sections, in the order asked.
    /// Parses the file again: this is for the rare files worth asking
    /// (interpreters), not a per-sample path.
    pub fn lookup(
        &self,
        symbols: &[&str],
        sections: &[&str],
    ) -> (Vec<Option<u64>>, Vec<Option<u64>>) {
        use object::ObjectSymbol;
        let mut syms = vec![None; symbols.len()];
        let mut secs = vec![None; sections.len()];
        let cache = ReadCache::new(&self.file);
        let Ok(obj) = object::File::parse(&cache) else {
            return (syms, secs);
        };
        for sym in obj.dynamic_symbols().chain(obj.symbols()) {
            if let Ok(name) = sym.name() {
                if let Some(i) = symbols.iter().position(|&n| n == name) {
                    syms[i].get_or_insert(sym.address());
                }
            }
        }
        for (i, name) in sections.iter().enumerate() {
            secs[i] = obj.section_by_name(name).map(|s| s.address());
        }
        (syms, secs)
    }

    /// A path that opens this very file as long as pystrobe runs.
    pub fn symbol_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.file.as_raw_fd())
    }

    /// The load bias of a mapping of this file: runtime address minus the
    /// address stated in the file. `start` and `offset` come from a
    /// /proc/PID/maps line. The kernel maps a segment at page_down(vaddr)
    /// from file offset page_down(p_offset), so vaddr - p_offset is the same
    /// for every byte of the segment.
    pub fn load_bias(&self, start: u64, offset: u64) -> Option<u64> {
        let &(p_off, p_vaddr, _) = self.loads.iter().find(|&&(p_off, _, size)| {
            (p_off & !0xfff) <= offset && offset < p_off.saturating_add(size.max(1))
        })?;
        Some(start.wrapping_sub(p_vaddr.wrapping_sub(p_off).wrapping_add(offset)))
    }
}

/// Every ELF file seen in this recording, keyed by identity on disk.
#[derive(Default)]
pub struct ElfCache {
    by_identity: HashMap<(u64, u64, u64, i64), Option<Arc<ElfFile>>>,
    next_id: FileId,
}

impl ElfCache {
    /// Opens the file behind a mapping of process `pid`, or returns the one
    /// already opened. `None` when it cannot be opened or is not ELF (the
    /// failure is remembered too, so it is not retried per sample).
    pub fn open(&mut self, pid: u32, start: u64, end: u64, path: &str) -> Option<Arc<ElfFile>> {
        let file = File::open(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
            .or_else(|_| File::open(format!("/proc/{pid}/root{path}")))
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime());
        if let Some(known) = self.by_identity.get(&key) {
            return known.clone();
        }
        let id = self.next_id;
        self.next_id += 1;
        let parsed = ElfFile::parse(id, path.to_string(), file)
            .ok()
            .map(Arc::new);
        self.by_identity.insert(key, parsed.clone());
        parsed
    }

    /// An in-memory ELF image (the vDSO), given a descriptor holding it.
    pub fn from_memfd(&mut self, name: &str, file: File) -> Option<Arc<ElfFile>> {
        let id = self.next_id;
        self.next_id += 1;
        ElfFile::parse(id, name.to_string(), file)
            .ok()
            .map(Arc::new)
    }
}
