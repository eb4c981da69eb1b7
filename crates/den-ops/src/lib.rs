//! Every den operation a front end calls, as a library function that
//! returns typed results and tells what it does through a [`Progress`]:
//! `den up` with its dotfiles and port forwarder, SSH sessions and the
//! ProxyCommand, commands run in a workspace ([`ssh::exec`]), the IDEs,
//! ports. The CLI parses arguments, calls one of these and prints; the
//! dashboard calls the same.

pub mod dotfiles;
pub mod exit;
pub mod ide;
pub mod openvscode;
pub mod ports;
pub mod source;
pub mod ssh;
pub mod terminal;
pub mod workspace;

use std::path::PathBuf;

use den_workspace::{Den, Reporter, WorkspaceError};

pub use workspace::{delete, restart, stop, up, UpReport, UpRequest};

/// What every operation needs: den's state and context, den's own binary
/// (the forwarder runs as `den forward-daemon`), and the locale variables
/// every session passes on (LANG, LC_ALL, LC_CTYPE of the caller).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub den: Den,
    pub exe: PathBuf,
    pub env: Vec<(String, String)>,
}

/// Where an operation tells what it does: den-workspace's phases and
/// lines, and more.
pub trait Progress: Reporter {
    /// The step that reported phases is over (a spinner stops).
    fn finish(&mut self);
    /// A line of a program den runs for the user, tagged with what it is
    /// (`dotfiles`).
    fn output(&mut self, tag: &str, line: &str);
    /// Something the user should know that does not stop the operation.
    fn say(&mut self, text: &str);
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Forward(#[from] den_forward::ForwardError),
    #[error(transparent)]
    Ide(#[from] den_ide::IdeError),
    #[error(transparent)]
    Ssh(#[from] den_ssh::SshError),
    #[error(transparent)]
    Process(#[from] den_process::ProcessError),
    /// The SSH connection failed and the tunnel under it said why.
    #[error("{error}\n  the tunnel said: {said}")]
    Tunnel { error: den_ssh::SshError, said: String },
    /// A command den runs in the workspace for itself failed.
    #[error("`{program}` in the workspace failed (exit status: {code}): {stderr}")]
    Remote { program: String, code: i32, stderr: String },
    #[error("dotfiles: {0}")]
    Dotfiles(#[source] den_source::SourceError),
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// What was being done when `source` failed.
    #[error("{action}")]
    Context {
        action: String,
        #[source]
        source: Box<OpsError>,
    },
    /// An argument den cannot use as given.
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Failed(String),
}

impl OpsError {
    /// den-workspace's error inside, if this is one (the exit code of a
    /// failed hook is in it).
    pub fn workspace(&self) -> Option<&WorkspaceError> {
        match self {
            OpsError::Workspace(w) => Some(w),
            OpsError::Context { source, .. } => source.workspace(),
            _ => None,
        }
    }

    /// An I/O error, saying what was being done.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpsError {
        let action = action.into();
        move |source| OpsError::Io { action, source }
    }

    /// This error, saying what was being done.
    pub fn context(self, action: impl Into<String>) -> OpsError {
        OpsError::Context { action: action.into(), source: Box::new(self) }
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// The error and its causes on one line, `a: b: c`.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A runtime for one operation's async parts, on the calling thread.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(OpsError::io("starting a runtime"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_failure_is_found_inside_context() {
        let hook = WorkspaceError::HookFailed { hook: "installing the dotfiles".into(), code: 7 };
        let e = OpsError::from(hook).context("opening");
        assert!(matches!(e.workspace(), Some(WorkspaceError::HookFailed { code: 7, .. })));
        assert!(OpsError::Failed("x".into()).workspace().is_none());
    }

    #[test]
    fn one_line_joins_the_causes() {
        let e = OpsError::Io { action: "reading x".into(), source: std::io::Error::other("gone") }.context("opening");
        assert_eq!(one_line(&e), "opening: reading x: gone");
    }
}
