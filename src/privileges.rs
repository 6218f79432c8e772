//! Checks made before touching BPF, so that a missing privilege or kernel
//! feature is one clear sentence instead of a verifier log.

use anyhow::{Result, bail};

/// Capabilities pystrobe needs when not running as root, with why.
const NEEDED: &[(u32, &str)] = &[
    (39, "CAP_BPF"),        // load the program, create maps
    (38, "CAP_PERFMON"),    // open system-wide perf events, read kernel stacks
    (19, "CAP_SYS_PTRACE"), // read other processes' memory and files
    (21, "CAP_SYS_ADMIN"),  // /proc/PID/map_files, BPF run-time statistics
];

/// Kernel features are checked when the sampler starts (sampler/features.rs).
pub fn check() -> Result<()> {
    check_capabilities()
}

fn check_capabilities() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|&(_, name)| name)
        .collect();
    if !missing.is_empty() {
        bail!(
            "pystrobe needs root (try sudo), or the capabilities CAP_BPF, CAP_PERFMON, \
             CAP_SYS_PTRACE and CAP_SYS_ADMIN; missing: {}",
            missing.join(", ")
        );
    }
    Ok(())
}
