//! What the running kernel offers the BPF program, probed at start-up, and
//! which variant of the program to load.
//!
//! pystrobe's program comes in two variants built from one routine
//! (bpf/sampler.bpf.c): `on_sample` for Linux 5.17+, and `on_sample_legacy`
//! for 5.10 to 5.16, which reads the task through CO-RE instead of a BTF
//! pointer, finds the user registers at the top of the kernel stack instead
//! of calling bpf_task_pt_regs, and walks Python frames with bounded loops
//! (Python stacks of at most 48 frames) instead of bpf_loop.

use anyhow::{Result, bail};
use libbpf_rs::libbpf_sys as sys;

/// Set to a comma-separated list of feature names (as in [`Features::names`])
/// to make the probe report them missing: to test the fallbacks and the
/// errors on a kernel that has everything.
pub const PRETEND_MISSING_ENV: &str = "PYSTROBE_PRETEND_MISSING";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// /sys/kernel/btf/vmlinux (5.4+ with CONFIG_DEBUG_INFO_BTF): needed by CO-RE.
    pub btf: bool,
    /// BPF ring buffers (5.8).
    pub ringbuf: bool,
    /// bpf_get_current_task_btf (5.11).
    pub task_btf: bool,
    /// bpf_task_pt_regs (5.15).
    pub task_pt_regs: bool,
    /// bpf_loop (5.17).
    pub bpf_loop: bool,
}

/// The program variant to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Modern,
    Legacy,
}

impl Features {
    /// Probes the running kernel (each probe loads a tiny program or map).
    pub fn probe() -> Features {
        let pretend = std::env::var(PRETEND_MISSING_ENV).unwrap_or_default();
        let missing = |name: &str| pretend.split(',').any(|p| p.trim() == name);
        let helper = |id| {
            // SAFETY: a probe with null options only loads and frees a
            // trivial program; it returns 1, 0 or a negative error.
            unsafe {
                sys::libbpf_probe_bpf_helper(sys::BPF_PROG_TYPE_PERF_EVENT, id, std::ptr::null())
                    == 1
            }
        };
        Features {
            btf: !missing("btf") && std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
            // SAFETY: as above, for a map.
            ringbuf: !missing("ringbuf")
                && unsafe {
                    sys::libbpf_probe_bpf_map_type(sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null()) == 1
                },
            task_btf: !missing("task_btf") && helper(sys::BPF_FUNC_get_current_task_btf),
            task_pt_regs: !missing("task_pt_regs") && helper(sys::BPF_FUNC_task_pt_regs),
            bpf_loop: !missing("bpf_loop") && helper(sys::BPF_FUNC_loop),
        }
    }

    /// The variant this kernel can run, or a one-line reason why none.
    pub fn variant(&self) -> Result<Variant> {
        if !self.btf {
            bail!(
                "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): pystrobe needs \
                 Linux 5.10 or later built with CONFIG_DEBUG_INFO_BTF=y"
            );
        }
        if !self.ringbuf {
            bail!(
                "this kernel has no BPF ring buffers (Linux 5.8): pystrobe needs Linux 5.10 or later"
            );
        }
        Ok(if self.task_btf && self.task_pt_regs && self.bpf_loop {
            Variant::Modern
        } else {
            Variant::Legacy
        })
    }

    /// What the legacy variant does without, for the user.
    pub fn missing_modern(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if !self.task_btf {
            m.push("bpf_get_current_task_btf (5.11)");
        }
        if !self.task_pt_regs {
            m.push("bpf_task_pt_regs (5.15)");
        }
        if !self.bpf_loop {
            m.push("bpf_loop (5.17)");
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Features {
        Features {
            btf: true,
            ringbuf: true,
            task_btf: true,
            task_pt_regs: true,
            bpf_loop: true,
        }
    }

    #[test]
    fn variants() {
        assert_eq!(all().variant().unwrap(), Variant::Modern);
        assert_eq!(
            Features {
                bpf_loop: false,
                ..all()
            }
            .variant()
            .unwrap(),
            Variant::Legacy
        );
        assert_eq!(
            Features {
                task_pt_regs: false,
                ..all()
            }
            .variant()
            .unwrap(),
            Variant::Legacy
        );
        let e = Features {
            ringbuf: false,
            ..all()
        }
        .variant()
        .unwrap_err()
        .to_string();
        assert!(e.contains("ring buffers") && e.contains("5.10"), "{e}");
        let e = Features {
            btf: false,
            ..all()
        }
        .variant()
        .unwrap_err()
        .to_string();
        assert!(e.contains("BTF"), "{e}");
        assert_eq!(
            Features {
                bpf_loop: false,
                ..all()
            }
            .missing_modern(),
            vec!["bpf_loop (5.17)"]
        );
    }
}
