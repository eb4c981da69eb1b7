//! Exit codes: den-ops owns the mapping (the dashboard shows the same
//! codes); here it is applied to the CLI's errors.

pub use den_ops::exit::{ENGINE_UNREACHABLE, FAILURE, OK};

pub fn code_for(err: &anyhow::Error) -> i32 {
    den_ops::exit::code_for(err.chain())
}

/// What kind of failure an error is, in one word, for `--output json`.
pub fn kind(err: &anyhow::Error) -> &'static str {
    den_ops::exit::kind(err.chain())
}

#[cfg(test)]
mod tests {
    use super::*;
    use den_ops::exit::NOT_FOUND;
    use den_ops::OpsError;
    use den_workspace::WorkspaceError;

    #[test]
    fn codes_are_found_through_anyhow_context() {
        let hook = OpsError::from(WorkspaceError::HookFailed { hook: "x".into(), code: 9 }).context("opening");
        let err = anyhow::Error::from(hook).context("up");
        assert_eq!((code_for(&err), kind(&err)), (9, "hook-failed"));
        let gone = anyhow::Error::from(OpsError::from(WorkspaceError::NotFound("w".into())));
        assert_eq!((code_for(&gone), kind(&gone)), (NOT_FOUND, "not-found"));
        assert_eq!(code_for(&anyhow::anyhow!("plain")), FAILURE);
    }
}
