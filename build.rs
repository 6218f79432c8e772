//! Compiles bpf/sampler.bpf.c and generates its libbpf-rs skeleton.
//! clang comes from PATH; libbpf-cargo supplies the libbpf headers, and the
//! vendored bpf/vmlinux.h keeps the build independent of the build machine's
//! kernel (CO-RE relocates field accesses at load time).
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/sampler.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("sampler.skel.rs");
    if let Err(err) = SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            "-Wall",
            "-Wno-unused-function",
            "-D__TARGET_ARCH_x86",
            "-Ibpf",
        ])
        .build_and_generate(&out)
    {
        panic!(
            "building the BPF program {SRC} failed: {err:#}\n\
             pystrobe needs clang (apt-get install clang) to compile its BPF program"
        );
    }
    println!("cargo:rerun-if-changed=bpf");
}
