//! Instruction offset → line number, for the three line-table formats
//! CPython has used. The table bytes come from the target: hostile data, so
//! every read is bounds-checked and a malformed table yields `None`.

/// Which encoding a code object's line table uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineTableKind {
    /// 3.9 `co_lnotab`: (byte delta, signed line delta) pairs; offsets in bytes.
    Lnotab,
    /// 3.10 `co_linetable`: (byte delta, signed line delta or -128 for "no
    /// line") pairs; offsets in bytes.
    Linetable310,
    /// 3.11+ location table: variable-length entries covering 1-8 code units
    /// each; offsets in code units.
    Locations,
}

/// The line of the instruction at `offset` (bytes for `Lnotab` and
/// `Linetable310`, code units for `Locations`). A negative offset means the
/// frame has not started: its line is the first line.
pub fn line_for(kind: LineTableKind, table: &[u8], first_line: i32, offset: i64) -> Option<i32> {
    if offset < 0 {
        return Some(first_line);
    }
    match kind {
        LineTableKind::Lnotab => lnotab(table, first_line, offset),
        LineTableKind::Linetable310 => linetable_310(table, first_line, offset),
        LineTableKind::Locations => locations(table, first_line, offset),
    }
}

/// CPython 3.9's PyCode_Addr2Line.
fn lnotab(table: &[u8], first_line: i32, offset: i64) -> Option<i32> {
    let mut line = first_line;
    let mut addr: i64 = 0;
    for pair in table.chunks_exact(2) {
        addr += i64::from(pair[0]);
        if addr > offset {
            break;
        }
        line = line.checked_add(i32::from(pair[1] as i8))?;
    }
    Some(line)
}

/// CPython 3.10's _PyCode_CheckLineNumber over PyLineTable_NextAddressRange:
/// ranges [start, end) are walked until one contains `offset`, skipping
/// empty ones; -128 as a line delta means "no line" for that range.
fn linetable_310(table: &[u8], first_line: i32, offset: i64) -> Option<i32> {
    let mut computed = first_line;
    let mut end: i64 = 0;
    let mut line = None;
    let mut pairs = table.chunks_exact(2);
    while end <= offset {
        // advance() until a non-empty range
        loop {
            let pair = pairs.next()?;
            let start = end;
            end += i64::from(pair[0]);
            let delta = pair[1] as i8;
            line = if delta == -128 {
                None
            } else {
                computed = computed.checked_add(i32::from(delta))?;
                Some(computed)
            };
            if start != end {
                break;
            }
        }
    }
    line
}

/// CPython 3.11+'s location table (Objects/locations.md): each entry starts
/// with a byte whose top bit is set; bits 3-6 are the kind of entry and bits
/// 0-2 the number of code units covered, minus one.
fn locations(table: &[u8], first_line: i32, offset: i64) -> Option<i32> {
    let mut line = first_line;
    let mut addr: i64 = 0;
    let mut i = 0;
    while i < table.len() {
        let head = table[i];
        if head & 0x80 == 0 {
            return None;
        }
        let code = (head >> 3) & 0x0f;
        let units = i64::from(head & 7) + 1;
        let delta = match code {
            15 => 0,                                // no location
            13 | 14 => read_svarint(table, i + 1)?, // no column / long form
            10..=12 => i32::from(code) - 10,        // one-line forms
            _ => 0,                                 // short forms
        };
        line = line.checked_add(delta)?;
        if addr <= offset && offset < addr + units {
            return (code != 15).then_some(line);
        }
        addr += units;
        // The next entry starts at the next byte with the top bit set.
        i += 1;
        while i < table.len() && table[i] & 0x80 == 0 {
            i += 1;
        }
    }
    None
}

/// A location-table varint: 6-bit groups, least significant first, bit 6
/// set on every group but the last.
fn read_varint(table: &[u8], mut i: usize) -> Option<u32> {
    let mut value: u32 = 0;
    let mut shift = 0;
    loop {
        let b = *table.get(i)?;
        value |= u32::from(b & 0x3f).checked_shl(shift)?;
        if b & 0x40 == 0 {
            return Some(value);
        }
        shift += 6;
        if shift > 30 {
            return None;
        }
        i += 1;
    }
}

/// A signed varint: the sign in the lowest bit.
fn read_svarint(table: &[u8], i: usize) -> Option<i32> {
    let v = read_varint(table, i)?;
    let magnitude = (v >> 1) as i32;
    Some(if v & 1 != 0 { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lnotab_walks_pairs() {
        // lines 10 (bytes 0-5), 11 (6-13), 14 (14-)
        let t = [6, 1, 8, 3];
        assert_eq!(line_for(LineTableKind::Lnotab, &t, 10, 0), Some(10));
        assert_eq!(line_for(LineTableKind::Lnotab, &t, 10, 5), Some(10));
        assert_eq!(line_for(LineTableKind::Lnotab, &t, 10, 6), Some(11));
        assert_eq!(line_for(LineTableKind::Lnotab, &t, 10, 20), Some(14));
        assert_eq!(line_for(LineTableKind::Lnotab, &t, 10, -1), Some(10));
    }

    #[test]
    fn linetable_310_ranges() {
        // [0,4) line 10+0, [4,10) line 11, [10,12) no line, [12,12) empty, [12,20) line 13
        let t = [4, 0, 6, 1, 2, 0x80, 0, 2, 8, 0];
        let f = |o| line_for(LineTableKind::Linetable310, &t, 10, o);
        assert_eq!(f(0), Some(10));
        assert_eq!(f(5), Some(11));
        assert_eq!(f(10), None);
        assert_eq!(f(12), Some(13));
        assert_eq!(f(40), None); // past the table
    }

    #[test]
    fn locations_entries() {
        // one-line form +1 over 2 units; short form (same line) over 1 unit;
        // no-column form -2 (svarint 5) over 3 units; no-location over 1 unit.
        let t = [
            0x80 | (11 << 3) | 1,
            0,
            0,
            0x80,
            0,
            0x80 | (13 << 3) | 2,
            5,
            0x80 | (15 << 3),
        ];
        let f = |o| line_for(LineTableKind::Locations, &t, 100, o);
        assert_eq!(f(0), Some(101));
        assert_eq!(f(1), Some(101));
        assert_eq!(f(2), Some(101));
        assert_eq!(f(3), Some(99));
        assert_eq!(f(5), Some(99));
        assert_eq!(f(6), None);
        assert_eq!(f(7), None);
    }

    #[test]
    fn hostile_tables_do_not_panic() {
        for kind in [
            LineTableKind::Lnotab,
            LineTableKind::Linetable310,
            LineTableKind::Locations,
        ] {
            for t in [
                &[][..],
                &[0xff; 7],
                &[0x7f, 0x80],
                &[0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ] {
                let _ = line_for(kind, t, i32::MAX, 3);
                let _ = line_for(kind, t, i32::MIN, i64::MAX);
            }
        }
    }
}
