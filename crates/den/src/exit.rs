//! Exit codes. Stable: scripts depend on them (see README).

use den_ops::OpsError;
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

/// A cause as den's own error; a hinted error's cause is a boxed one. An
/// operation's error wraps it without showing it in the chain (it is
/// transparent), so it is looked for inside.
fn workspace_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a WorkspaceError> {
    let ops = || cause.downcast_ref::<OpsError>().or_else(|| cause.downcast_ref::<Box<OpsError>>().map(|b| &**b));
    cause
        .downcast_ref::<WorkspaceError>()
        .or_else(|| cause.downcast_ref::<Box<WorkspaceError>>().map(|b| &**b))
        .or_else(|| ops().and_then(OpsError::workspace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(code: i32) -> OpsError {
        WorkspaceError::HookFailed { hook: "installing the dotfiles (install.sh)".into(), code }.into()
    }

    #[test]
    fn a_failed_hook_inside_an_operation_error_gives_its_code() {
        let err = anyhow::Error::from(hook(7));
        assert_eq!((code_for(&err), kind(&err)), (7, "hook-failed"));
        let err = anyhow::Error::from(hook(9).context("opening")).context("up");
        assert_eq!(code_for(&err), 9);
        assert_eq!(code_for(&anyhow::Error::from(hook(300))), FAILURE);
    }

    #[test]
    fn operation_errors_keep_their_codes() {
        let gone = anyhow::Error::from(OpsError::from(WorkspaceError::NotFound("w".into())));
        assert_eq!((code_for(&gone), kind(&gone)), (NOT_FOUND, "not-found"));
        let engine = WorkspaceError::Driver(den_driver::DriverError::CliMissing("docker".into()));
        assert_eq!(code_for(&anyhow::Error::from(OpsError::from(engine))), ENGINE_UNREACHABLE);
        assert_eq!(code_for(&anyhow::Error::from(OpsError::Failed("x".into()))), FAILURE);
    }
}
