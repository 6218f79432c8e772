//! Building a [`Layout`] for an interpreter from data/layouts.toml (see the
//! comment at its top), reading the target's `_Py_DebugOffsets` for 3.13+.

use std::sync::OnceLock;

use super::layout::Layout;
use crate::process::memory::ProcessMemory;

const DATA: &str = include_str!("../../data/layouts.toml");
/// `_Py_DebugOffsets.cookie`.
const COOKIE: &[u8; 8] = b"xdebugpy";

fn tables() -> &'static toml::Table {
    static TABLES: OnceLock<toml::Table> = OnceLock::new();
    // The file is compiled in and parsed by a unit test: a syntax error
    // fails the build's tests, not a user's recording.
    TABLES.get_or_init(|| DATA.parse().expect("data/layouts.toml is valid TOML"))
}

/// Minor versions with a layout.
pub fn known_versions() -> Vec<String> {
    let mut v: Vec<(u32, u32, &String)> = tables()
        .keys()
        .filter_map(|k| {
            let (a, b) = k.split_once('.')?;
            Some((a.parse().ok()?, b.parse().ok()?, k))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, _, k)| k.clone()).collect()
}

/// The layout of CPython `major.minor` whose `_PyRuntime` is at `runtime`.
pub fn layout_for(
    major: u8,
    minor: u8,
    runtime: u64,
    mem: &ProcessMemory,
) -> Result<Layout, String> {
    let key = format!("{major}.{minor}");
    let table = match tables().get(&key).and_then(|v| v.as_table()) {
        Some(t) => t,
        None => {
            return Err(format!(
                "no layout for this version (pystrobe knows {})",
                known_versions().join(", ")
            ));
        }
    };
    let mut merged = table.clone();
    if let Some(positions) = merged.remove("from_debug_offsets") {
        let positions = positions
            .as_table()
            .ok_or("from_debug_offsets is not a table")?;
        check_debug_offsets(major, minor, runtime, mem)?;
        for (field, pos) in positions {
            let pos = pos
                .as_integer()
                .ok_or_else(|| format!("position of {field} is not a number"))?;
            let value = mem
                .read_u64(runtime + pos as u64)
                .map_err(|e| format!("cannot read _Py_DebugOffsets: {e}"))?;
            let value =
                i64::try_from(value).map_err(|_| format!("{field} = {value:#x} is implausible"))?;
            merged.insert(field.clone(), toml::Value::Integer(value));
        }
    }
    toml::Value::Table(merged)
        .try_into::<Layout>()
        .map_err(|e| format!("layout table for {key} is incomplete: {e}"))
}

/// Checks the cookie and that the version the struct states is ours.
fn check_debug_offsets(
    major: u8,
    minor: u8,
    runtime: u64,
    mem: &ProcessMemory,
) -> Result<(), String> {
    let mut head = [0u8; 16];
    mem.read_exact(runtime, &mut head)
        .map_err(|e| format!("cannot read _Py_DebugOffsets: {e}"))?;
    if &head[..8] != COOKIE {
        return Err("_PyRuntime does not start with the _Py_DebugOffsets cookie".into());
    }
    let hex = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let (m, n) = ((hex >> 24) as u8, (hex >> 16) as u8);
    if (m, n) != (major, minor) {
        return Err(format!(
            "_Py_DebugOffsets says {m}.{n}, the binary says {major}.{minor}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let v = known_versions();
        assert_eq!(v.first().map(String::as_str), Some("3.9"));
        assert!(v.iter().position(|x| x == "3.10") > v.iter().position(|x| x == "3.9"));
    }

    #[test]
    fn every_static_table_is_complete() {
        for (version, table) in tables() {
            let table = table.as_table().unwrap();
            if table.contains_key("from_debug_offsets") {
                continue;
            }
            let layout: Layout = toml::Value::Table(table.clone())
                .try_into()
                .unwrap_or_else(|e| panic!("{version}: {e}"));
            layout
                .validate()
                .unwrap_or_else(|e| panic!("{version}: {e}"));
        }
    }
}
