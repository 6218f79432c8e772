//! Finding the interpreter in a process: which mapped file is CPython, which
//! version, where `_PyRuntime` is, and the layout to read it with.

use super::code::TypeAddrs;
use super::layout::Layout;
use super::layouts;
use crate::process::MappedFile;
use crate::process::memory::ProcessMemory;

/// A CPython interpreter found in a process.
pub struct Interpreter {
    pub major: u8,
    pub minor: u8,
    /// The file holding the interpreter (python binary or libpython).
    pub file_id: crate::process::elf_file::FileId,
    pub runtime: u64,
    pub layout: Layout,
    pub types: TypeAddrs,
}

/// The outcome of looking for an interpreter.
pub enum Discovery {
    /// `validated`: the runtime was initialized and its layout checked. A
    /// process found before its runtime is initialized (just exec'd) is
    /// walked at once and validated later: its layout comes from the binary
    /// (a table, or `_Py_DebugOffsets`, which is initialized data).
    Found {
        interp: Box<Interpreter>,
        validated: bool,
    },
    /// Not a Python process (no file that looks like CPython).
    NotPython,
    /// Python, but unusable: the reason, for one warning.
    Unsupported(String),
}

/// Looks for CPython among the files mapped by a process.
pub fn discover(files: &[MappedFile], mem: &ProcessMemory) -> Discovery {
    // libpython first: with a shared libpython the executable is a small
    // launcher that does not define _PyRuntime itself.
    // Found by what they define, not only by name: an interpreter renamed or
    // embedded in an application binary is still one.
    let mut candidates: Vec<&MappedFile> = files
        .iter()
        .filter(|f| f.file.defines_py_runtime || looks_like_python(&f.file.name))
        .collect();
    candidates.sort_by_key(|f| !basename(&f.file.name).starts_with("libpython"));
    if candidates.is_empty() {
        return Discovery::NotPython;
    }
    let mut last_problem = None;
    for f in candidates {
        let (syms, secs) = f.file.lookup(
            &[
                "_PyRuntime",
                "Py_Version",
                "PyCode_Type",
                "PyUnicode_Type",
                "PyBytes_Type",
            ],
            &[".PyRuntime"],
        );
        let Some(runtime) = syms[0].or(secs[0]).map(|a| a.wrapping_add(f.bias)) else {
            last_problem = Some(format!("{} has no _PyRuntime symbol", f.file.name));
            continue;
        };
        let version = syms[1]
            .and_then(|a| mem.read_u32(a.wrapping_add(f.bias)).ok())
            .map(|hex| ((hex >> 24) as u8, (hex >> 16) as u8))
            .or_else(|| version_from_name(&f.file.name));
        let Some((major, minor)) = version else {
            last_problem = Some(format!("cannot tell the Python version of {}", f.file.name));
            continue;
        };
        let layout = match layouts::layout_for(major, minor, runtime, mem) {
            Ok(l) => l,
            Err(e) => return Discovery::Unsupported(format!("Python {major}.{minor}: {e}")),
        };
        let types = TypeAddrs {
            code: syms[2].map_or(0, |a| a.wrapping_add(f.bias)),
            unicode: syms[3].map_or(0, |a| a.wrapping_add(f.bias)),
            bytes: syms[4].map_or(0, |a| a.wrapping_add(f.bias)),
        };
        return match validate(&layout, runtime, mem) {
            Ok(validated) => Discovery::Found {
                interp: Box::new(Interpreter {
                    major,
                    minor,
                    file_id: f.file.id,
                    runtime,
                    layout,
                    types,
                }),
                validated,
            },
            Err(e) => Discovery::Unsupported(format!("Python {major}.{minor}: {e}")),
        };
    }
    Discovery::Unsupported(last_problem.unwrap_or_else(|| "no usable interpreter".into()))
}

/// Follows the runtime to its first thread state and checks the thread
/// points back at its interpreter. `Ok(false)`: not initialized yet.
pub fn validate(l: &Layout, runtime: u64, mem: &ProcessMemory) -> Result<bool, String> {
    l.validate()?;
    let interp = mem
        .read_u64(runtime + l.runtime_interpreters_head)
        .map_err(|e| format!("cannot read _PyRuntime: {e}"))?;
    if interp == 0 {
        return Ok(false);
    }
    let ts = mem
        .read_u64(interp + l.interp_threads_head)
        .map_err(|_| "the interpreter state cannot be read (layout mismatch?)".to_string())?;
    if ts == 0 {
        return Ok(false);
    }
    match mem.read_u64(ts + l.tstate_interp) {
        Ok(back) if back == interp => Ok(true),
        _ => {
            Err("the thread state does not point back at its interpreter (layout mismatch)".into())
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `python`, `python3`, `python3.11`, `libpython3.11.so.1.0`, ... (also
/// `... (deleted)` when the file was replaced on disk).
pub fn looks_like_python(path: &str) -> bool {
    let b = basename(path);
    let b = b.strip_prefix("lib").unwrap_or(b);
    b.starts_with("python") && !b.contains(".py")
}

/// `3.11` from `python3.11` or `libpython3.11.so.1.0`.
fn version_from_name(path: &str) -> Option<(u8, u8)> {
    let b = basename(path);
    let rest = &b[b.find("python")? + "python".len()..];
    let (major, rest) = rest.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(looks_like_python("/usr/bin/python3.11"));
        assert!(looks_like_python("/opt/lib/libpython3.13.so.1.0"));
        assert!(!looks_like_python("/usr/lib/libc.so.6"));
        assert!(!looks_like_python("/srv/python_app.py"));
        assert_eq!(version_from_name("/usr/bin/python3.11"), Some((3, 11)));
        assert_eq!(version_from_name("/x/libpython3.9.so.1.0"), Some((3, 9)));
        assert_eq!(version_from_name("/usr/bin/python3"), None);
    }
}
