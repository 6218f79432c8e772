//! Opening the per-CPU software CPU-clock events the BPF program attaches to.
//!
//! A software clock, not a hardware cycle counter: virtual machines often have
//! no PMU, and a clock gives the same rate on every machine.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};
use perf_event_open_sys as sys;

/// Opens one frequency-based CPU-clock event per online CPU, sampling every
/// task on that CPU. The events carry no sample format of their own: the BPF
/// program is the only consumer.
pub fn open_cpu_clock_events(rate_hz: u64) -> Result<Vec<OwnedFd>> {
    let cpus = online_cpus()?;
    let mut fds = Vec::with_capacity(cpus.len());
    for cpu in cpus {
        let mut attr = sys::bindings::perf_event_attr {
            size: size_of::<sys::bindings::perf_event_attr>() as u32,
            type_: sys::bindings::PERF_TYPE_SOFTWARE,
            config: u64::from(sys::bindings::PERF_COUNT_SW_CPU_CLOCK),
            ..Default::default()
        };
        attr.__bindgen_anon_1.sample_freq = rate_hz;
        attr.set_freq(1);
        // SAFETY: attr is a fully initialised perf_event_attr; pid -1 with a
        // CPU number means "every task on this CPU".
        let fd = unsafe {
            sys::perf_event_open(
                &mut attr,
                -1,
                cpu as i32,
                -1,
                sys::bindings::PERF_FLAG_FD_CLOEXEC as _,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL)
                && rate_hz > max_sample_rate().unwrap_or(u64::MAX)
            {
                bail!(
                    "sampling rate {rate_hz} Hz is above the kernel's limit of {} Hz \
                     (raise it with: sysctl kernel.perf_event_max_sample_rate={rate_hz})",
                    max_sample_rate().unwrap_or(0)
                );
            }
            return Err(err).with_context(|| format!("perf_event_open on CPU {cpu}"));
        }
        // SAFETY: fd is a new descriptor we own.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(fds)
}

/// The kernel's current limit for sampling frequency.
pub fn max_sample_rate() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// CPUs that are online now, from /sys/devices/system/cpu/online ("0-3,6").
pub fn online_cpus() -> Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .context("reading /sys/devices/system/cpu/online")?;
    parse_cpu_list(text.trim()).context("parsing /sys/devices/system/cpu/online")
}

fn parse_cpu_list(text: &str) -> Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>()?..=b.parse::<u32>()?),
            None => cpus.push(part.parse()?),
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert!(parse_cpu_list("x").is_err());
    }
}
