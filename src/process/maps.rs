//! Parsing /proc/PID/maps.

use std::io;

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub executable: bool,
    /// File offset of `start`.
    pub offset: u64,
    pub inode: u64,
    /// The path as the process sees it (relative to its root), or a pseudo
    /// name such as `[vdso]`; empty for anonymous memory.
    pub path: String,
}

impl MapEntry {
    /// A mapping of a regular file (not anonymous memory or a pseudo mapping).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/')
    }
}

pub fn read_maps(pid: u32) -> io::Result<Vec<MapEntry>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// Parses `start-end perms offset dev inode   path`. The path may contain
/// spaces, so it is everything after the fifth field.
fn parse_line(line: &str) -> Option<MapEntry> {
    let mut rest = line;
    let mut field = || {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        let (f, r) = rest.split_at(end);
        rest = r;
        Some(f)
    };
    let range = field()?;
    let perms = field()?.as_bytes();
    let offset = u64::from_str_radix(field()?, 16).ok()?;
    let _dev = field()?;
    let inode = field()?.parse().ok()?;
    let path = rest.trim_start().to_string();
    let (start, end) = range.split_once('-')?;
    Some(MapEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        readable: perms.first() == Some(&b'r'),
        executable: perms.get(2) == Some(&b'x'),
        offset,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let e = parse_line(
            "7f2c1a200000-7f2c1a228000 r-xp 00028000 fe:01 1835141                    /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(e.start, 0x7f2c1a200000);
        assert_eq!(e.end, 0x7f2c1a228000);
        assert!(e.executable && e.readable);
        assert_eq!(e.offset, 0x28000);
        assert_eq!(e.inode, 1835141);
        assert_eq!(e.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(e.is_file());

        let e = parse_line(
            "7ffd0b5f3000-7ffd0b5f5000 r-xp 00000000 00:00 0                          [vdso]",
        )
        .unwrap();
        assert_eq!(e.path, "[vdso]");
        assert!(!e.is_file());

        let e = parse_line("55d4c5a4e000-55d4c5a50000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(e.path, "");
        assert!(!e.executable);

        let e = parse_line("400000-401000 r-xp 00000000 08:01 42 /tmp/a b (deleted)").unwrap();
        assert_eq!(e.path, "/tmp/a b (deleted)");
        assert!(parse_line("garbage").is_none());
    }
}
