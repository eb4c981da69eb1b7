//! Exit codes and what a failure prints, for every front end: the CLI
//! exits with them, the dashboard shows them next to the same message.
//! Stable: scripts depend on them (see README).

use std::error::Error;

use den_workspace::WorkspaceError;

use crate::OpsError;

/// Success.
pub const OK: i32 = 0;
/// Any failure without a more specific code (bad configuration included).
pub const FAILURE: i32 = 1;
// 2 is clap's: the command line itself is wrong.
/// The container engine could not be reached (or its CLI is missing).
pub const ENGINE_UNREACHABLE: i32 = 3;
/// The workspace does not exist.
pub const NOT_FOUND: i32 = 4;

/// A chain of causes, outermost first (anyhow's `chain()`, or
/// [`causes`] of one error).
pub fn code_for<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> i32 {
    for cause in chain {
        if let Some(w) = workspace_error(cause) {
            match w {
                // A failing lifecycle hook: den exits with the hook's code.
                WorkspaceError::HookFailed { code, .. } if *code > 0 && *code < 256 => return *code,
                WorkspaceError::NotFound(_) => return NOT_FOUND,
                WorkspaceError::Driver(d) if engine_unreachable(d) => return ENGINE_UNREACHABLE,
                _ => {}
            }
        }
        if cause.downcast_ref::<den_driver::DriverError>().is_some_and(engine_unreachable) {
            return ENGINE_UNREACHABLE;
        }
    }
    FAILURE
}

fn engine_unreachable(d: &den_driver::DriverError) -> bool {
    matches!(
        d,
        den_driver::DriverError::EngineUnreachable { .. }
            | den_driver::DriverError::CliMissing(_)
            | den_driver::DriverError::ComposeMissing(_)
    )
}

/// What kind of failure an error is, in one word, for `--output json`.
pub fn kind<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)> + Clone) -> &'static str {
    for cause in chain.clone() {
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
    match code_for(chain) {
        ENGINE_UNREACHABLE => "engine-unreachable",
        NOT_FOUND => "not-found",
        _ => "failure",
    }
}

/// The error and its causes, one per line, each saying what was being
/// done: what `den` prints after `den: `.
pub fn render<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut chain = chain.into_iter();
    let mut out = chain.next().map(|e| e.to_string()).unwrap_or_default();
    for cause in chain {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str("\n  caused by: ");
            out.push_str(&text);
        }
    }
    out
}

/// `err` and its sources, outermost first.
pub fn causes<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> + Clone {
    std::iter::successors(Some(err), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// A cause as den's own error; a hinted error's cause is a boxed one. An
/// operation's error wraps it without showing it in the chain (it is
/// transparent), so it is looked for inside.
fn workspace_error<'a>(cause: &'a (dyn Error + 'static)) -> Option<&'a WorkspaceError> {
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

    fn code(e: &OpsError) -> i32 {
        code_for(causes(e))
    }

    #[test]
    fn a_failed_hook_inside_an_operation_error_gives_its_code() {
        assert_eq!((code(&hook(7)), kind(causes(&hook(7)))), (7, "hook-failed"));
        assert_eq!(code(&hook(9).context("opening")), 9);
        assert_eq!(code(&hook(300)), FAILURE);
    }

    #[test]
    fn operation_errors_keep_their_codes() {
        let gone = OpsError::from(WorkspaceError::NotFound("w".into()));
        assert_eq!((code(&gone), kind(causes(&gone))), (NOT_FOUND, "not-found"));
        let engine = WorkspaceError::Driver(den_driver::DriverError::CliMissing("docker".into()));
        assert_eq!(code(&OpsError::from(engine)), ENGINE_UNREACHABLE);
        assert_eq!(code(&OpsError::Failed("x".into())), FAILURE);
    }

    #[test]
    fn render_gives_each_new_cause_a_line() {
        let e = OpsError::Io { action: "reading x".into(), source: std::io::Error::other("gone") }.context("opening");
        assert_eq!(render(causes(&e)), "opening\n  caused by: reading x\n  caused by: gone");
    }
}
