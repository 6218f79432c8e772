//! Reading code objects from the target's memory: qualified name, file name
//! and line table. Every pointer is checked to point at an object of the
//! expected type before anything else is read from it.

use super::layout::Layout;
use crate::process::memory::ProcessMemory;

/// Longest string read from a target, in characters.
const MAX_STRING_CHARS: u64 = 1024;
/// Largest line table read from a target.
const MAX_LINETABLE_BYTES: u64 = 1 << 20;

/// Addresses of the type objects a read is checked against.
#[derive(Clone, Copy, Debug, Default)]
pub struct TypeAddrs {
    pub code: u64,
    pub unicode: u64,
    pub bytes: u64,
}

/// What a code object says about itself.
#[derive(Clone, Debug)]
pub struct CodeInfo {
    /// `Class.method` on 3.11+, the plain name before.
    pub name: String,
    pub filename: String,
    pub first_line: i32,
    pub linetable: Vec<u8>,
}

pub struct CodeReader<'a> {
    pub mem: &'a ProcessMemory,
    pub layout: &'a Layout,
    pub types: TypeAddrs,
}

impl CodeReader<'_> {
    /// Reads the code object at `addr`, or `None` if it is not one (freed,
    /// reused, or the address is garbage).
    pub fn read(&self, addr: u64) -> Option<CodeInfo> {
        let l = self.layout;
        if !self.has_type(addr, self.types.code) {
            return None;
        }
        let name_field = l.code_qualname.unwrap_or(l.code_name);
        let name = self.string(self.mem.read_u64(addr + name_field).ok()?)?;
        let filename = self.string(self.mem.read_u64(addr + l.code_filename).ok()?)?;
        let first_line = self.mem.read_i32(addr + l.code_firstlineno).ok()?;
        let linetable = self
            .bytes(self.mem.read_u64(addr + l.code_linetable).ok()?)
            .unwrap_or_default();
        Some(CodeInfo {
            name,
            filename,
            first_line,
            linetable,
        })
    }

    /// Whether the object at `addr` has type `ty` (ob_type is at offset 8 in
    /// every supported version). A zero `ty` (unknown) accepts anything.
    fn has_type(&self, addr: u64, ty: u64) -> bool {
        match self.mem.read_u64(addr + 8) {
            Ok(t) => ty == 0 || t == ty,
            Err(_) => false,
        }
    }

    /// A `str` object's text (compact strings only: every identifier and
    /// file name CPython creates for code objects is compact).
    fn string(&self, addr: u64) -> Option<String> {
        let l = self.layout;
        if !self.has_type(addr, self.types.unicode) {
            return None;
        }
        let len = self.mem.read_u64(addr + l.unicode_length).ok()?;
        let state = self.mem.read_u32(addr + l.unicode_state).ok()?;
        let kind = (state >> l.unicode_kind_shift) & 7;
        let compact = state >> l.unicode_compact_bit & 1 == 1;
        let ascii = state >> l.unicode_ascii_bit & 1 == 1;
        if !compact || !(1..=4).contains(&kind) || kind == 3 {
            return None;
        }
        let shown = len.min(MAX_STRING_CHARS);
        let data = addr
            + if ascii {
                l.unicode_ascii_data
            } else {
                l.unicode_compact_data
            };
        let raw = self
            .mem
            .read_vec(data, shown * u64::from(kind), MAX_STRING_CHARS * 4)
            .ok()?;
        let mut text: String = match kind {
            1 => raw.iter().map(|&b| char::from(b)).collect(),
            2 => char::decode_utf16(
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]])),
            )
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
            _ => raw
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        };
        if len > shown {
            text.push('…');
        }
        Some(text)
    }

    /// A `bytes` object's contents.
    fn bytes(&self, addr: u64) -> Option<Vec<u8>> {
        let l = self.layout;
        if !self.has_type(addr, self.types.bytes) {
            return None;
        }
        let len = self.mem.read_u64(addr + l.bytes_size).ok()?;
        self.mem
            .read_vec(addr + l.bytes_data, len, MAX_LINETABLE_BYTES)
            .ok()
    }
}
