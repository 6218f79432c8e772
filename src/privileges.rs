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
    check_capabilities(NEEDED)
}

/// For `dump`, which reads its target with ptrace and /proc/PID/mem only.
pub fn check_ptrace() -> Result<()> {
    check_capabilities(&[(19, "CAP_SYS_PTRACE")])
}

fn check_capabilities(needed: &[(u32, &str)]) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|&(_, name)| name)
        .collect();
    if !missing.is_empty() {
        let all: Vec<&str> = needed.iter().map(|&(_, name)| name).collect();
        bail!(
            "pystrobe needs root (try sudo), or the capabilit{} {}; missing: {}",
            if all.len() == 1 { "y" } else { "ies" },
            all.join(", "),
            missing.join(", ")
        );
    }
    Ok(())
}
