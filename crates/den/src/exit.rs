//! Exit codes. Stable: scripts depend on them (see README).

use den_workspace::WorkspaceError;

/// Success.
pub const OK: i32 = 0;
/// Any failure without a more specific code (bad configuration included).
pub const FAILURE: i32 = 1;
// 2 is clap's: the command line itself is wrong.
/// The container engine could not be reached (or its CLI is missing).
pub const ENGINE_UNREACHABLE: i32 = 3;
/// The workspace does not exist.
pub const NOT_FOUND: i32 = 4;

pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(w) = cause.downcast_ref::<WorkspaceError>() {
            match w {
                // A failing lifecycle hook: den exits with the hook's code.
                WorkspaceError::HookFailed { code, .. } if *code > 0 && *code < 256 => return *code,
                WorkspaceError::NotFound(_) => return NOT_FOUND,
                WorkspaceError::Driver(
                    den_driver::DriverError::EngineUnreachable { .. } | den_driver::DriverError::CliMissing(_),
                ) => return ENGINE_UNREACHABLE,
                _ => {}
            }
        }
        if let Some(den_driver::DriverError::EngineUnreachable { .. } | den_driver::DriverError::CliMissing(_)) =
            cause.downcast_ref()
        {
            return ENGINE_UNREACHABLE;
        }
    }
    FAILURE
}
