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
        if let Some(w) = workspace_error(cause) {
            match w {
                // A failing lifecycle hook: den exits with the hook's code.
                WorkspaceError::HookFailed { code, .. } if *code > 0 && *code < 256 => return *code,
                WorkspaceError::NotFound(_) => return NOT_FOUND,
                WorkspaceError::Driver(
                    den_driver::DriverError::EngineUnreachable { .. }
                    | den_driver::DriverError::CliMissing(_)
                    | den_driver::DriverError::ComposeMissing(_),
                ) => return ENGINE_UNREACHABLE,
                _ => {}
            }
        }
        if let Some(
            den_driver::DriverError::EngineUnreachable { .. }
            | den_driver::DriverError::CliMissing(_)
            | den_driver::DriverError::ComposeMissing(_),
        ) = cause.downcast_ref()
        {
            return ENGINE_UNREACHABLE;
        }
    }
    FAILURE
}

/// What kind of failure an error is, in one word, for `--output json`.
pub fn kind(err: &anyhow::Error) -> &'static str {
    for cause in err.chain() {
        if let Some(w) = workspace_error(cause) {
            match w {
                WorkspaceError::HookFailed { .. } => return "hook-failed",
                WorkspaceError::NotFound(_) => return "not-found",
                WorkspaceError::Config(_) => return "bad-config",
                WorkspaceError::Unsupported(_) => return "unsupported",
                WorkspaceError::Feature(_) => return "feature",
                _ => {}
            }
        }
        if cause.downcast_ref::<den_devcontainer::ConfigError>().is_some() {
            return "bad-config";
        }
    }
    match code_for(err) {
        ENGINE_UNREACHABLE => "engine-unreachable",
        NOT_FOUND => "not-found",
        _ => "failure",
    }
}

/// A cause as den's own error; a hinted error's cause is a boxed one.
fn workspace_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a WorkspaceError> {
    cause.downcast_ref::<WorkspaceError>().or_else(|| cause.downcast_ref::<Box<WorkspaceError>>().map(|b| &**b))
}
