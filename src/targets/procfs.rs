//! What /proc says about a process: its parent, start time, name, command
//! line, executable and namespace PID. Every read may fail: the process may
//! exit at any moment, and everything read is the process's own to choose.

use std::collections::{HashMap, HashSet};

/// Fields of /proc/PID/stat: (parent PID, state, start time in clock ticks
/// since boot).
pub fn stat(pid: u32) -> Option<(u32, char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may itself contain ") ": the fields
    // start after the last one.
    let (_, rest) = text.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, state, start))
}

/// Whether a process still runs: a zombie (exited, not yet reaped by its
/// parent) does not.
pub fn alive(pid: u32) -> bool {
    matches!(stat(pid), Some((_, state, _)) if !matches!(state, 'Z' | 'X'))
}

/// The command line, arguments joined by spaces (empty for kernel threads
/// and zombies).
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.join(" ")
}

/// The process name (the kernel's comm).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// A thread's name (its comm).
pub fn task_comm(pid: u32, tid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// The PID inside the process's own PID namespace, when that differs from
/// the host's (the last entry of NSpid).
pub fn namespace_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let inner: u32 = line.split_whitespace().last()?.parse().ok()?;
    (inner != pid).then_some(inner)
}

/// The working directory as the process itself sees it: inside its root
/// when it runs in a chroot or container.
pub fn cwd(pid: u32) -> Option<String> {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let root = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
    let inside = if root == std::path::Path::new("/") {
        cwd
    } else {
        std::path::Path::new("/").join(cwd.strip_prefix(&root).ok()?)
    };
    inside.to_str().map(str::to_string)
}

/// Every process on the host with its parent.
pub fn all_processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?.0)))
        .collect()
}

/// The descendants of `roots` (not the roots themselves) among `procs`.
pub fn descendants(procs: &[(u32, u32)], roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in procs {
        children.entry(ppid).or_default().push(pid);
    }
    // /proc is read while it changes (a PID can be reused between two
    // reads), so the result is not trusted to be a tree: each PID is
    // visited once.
    let mut seen: HashSet<u32> = roots.iter().copied().collect();
    let mut out = Vec::new();
    let mut todo: Vec<u32> = roots.to_vec();
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if seen.insert(c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_of_a_tree_with_a_cycle() {
        let procs = [(2, 1), (3, 2), (4, 3), (5, 1), (6, 7), (7, 6)];
        let mut d = descendants(&procs, &[2]);
        d.sort();
        assert_eq!(d, vec![3, 4]);
        let mut d = descendants(&procs, &[6]);
        d.sort();
        assert_eq!(d, vec![7]);
    }

    #[test]
    fn own_process() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(stat(me).is_some());
        assert!(!cmdline(me).is_empty());
        assert!(comm(me).is_some_and(|c| !c.is_empty()));
        assert!(!alive(u32::MAX));
    }
}
