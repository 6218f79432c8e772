//! The folded-stack text format (Brendan Gregg's stackcollapse output).

use std::io::Write;

use anyhow::Result;

pub fn write(lines: &[(String, u64)], out: &mut dyn Write) -> Result<()> {
    for (stack, count) in lines {
        writeln!(out, "{stack} {count}")?;
    }
    Ok(())
}
