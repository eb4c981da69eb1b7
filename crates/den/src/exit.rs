//! Exit codes. Stable: scripts depend on them (see README).

/// Success.
pub const OK: i32 = 0;
/// Any failure without a more specific code (bad configuration included).
pub const FAILURE: i32 = 1;
// 2 is clap's: the command line itself is wrong.

pub fn code_for(_err: &anyhow::Error) -> i32 {
    FAILURE
}
