//! pystrobe: a system-wide sampling profiler built on a perf-event BPF program.
//!
//! The modules follow the data: [`targets`] chooses the processes (and
//! [`launch`] starts a command); [`sampler`] loads the BPF program, which
//! follows them as they fork, exec and exit, and reads its records; [`process`] keeps per-process maps and files; [`unwind`]
//! rebuilds native stacks from the stack copies; [`symbols`] names native and
//! kernel frames; [`python`] finds interpreters and names Python frames; [`stack`] turns a sample into frames; [`profile`] counts
//! stacks; [`output`] writes them.

pub mod cli;
pub mod diff;
pub mod docs;
pub mod dump;
pub mod error;
pub mod launch;
pub mod output;
pub mod privileges;
pub mod process;
pub mod profile;
pub mod python;
pub mod record;
pub mod sampler;
pub mod session;
pub mod stack;
pub mod symbols;
pub mod targets;
pub mod top;
pub mod unwind;
