//! Stacks: the frame model, and building a stack of frames from one sample.

pub mod builder;
pub mod frame;
pub mod merge;
pub mod naming;

pub use builder::StackBuilder;
pub use frame::{Frame, FrameId, FrameKind, FrameTable};
