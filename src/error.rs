//! Errors that carry the exit status pystrobe ends with (`--help` lists
//! them); every other error exits 1.

use std::fmt;

#[derive(Debug)]
pub struct Coded {
    pub code: i32,
    message: String,
}

impl Coded {
    pub fn new(code: i32, message: String) -> Coded {
        Coded { code, message }
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// The exit status for an error.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<Coded>().map_or(1, |c| c.code)
}
