//! Workspaces: bringing them up, and everything after.

mod agent_mount;
mod backend;
mod config;
pub mod context;
mod engine_here;
pub mod events;

mod exec;
pub mod far;
pub mod features;
mod id;
mod inject;
pub mod line;
mod manage;
mod merging;
mod plan;
pub mod providers;
mod publish;
mod record;
mod relay;
pub mod ssh;
mod up;

pub use backend::machine;
pub use config::DenConfig;
pub use id::workspace_id_for;
pub use manage::{delete, list, logs, service_logs, status, stop, Status, WorkspaceSummary};
pub use plan::{RemoteSource, Source, UpOptions, UpResult};
pub use record::{SourceInfo, WorkspaceRecord};
pub use up::{build, up};

use den_state::Home;

/// Where den's state is and which context is in use.
#[derive(Debug, Clone)]
pub struct Den {
    pub home: Home,
    pub context: String,
}

impl Den {
    /// den's state at `home`, in `context` (`None`: the one chosen with
    /// `den context use`, else `default`). The context must exist.
    pub fn open(home: Home, context: Option<&str>) -> Result<Self, WorkspaceError> {
        let den = Den::open_any(home, context)?;
        if !context::exists(&den, &den.context) {
            // `den context use default` is the way out; see open_any.
            return Err(WorkspaceError::Missing(format!(
                "there is no context `{}` (see `den context list`)",
                den.context
            )));
        }
        Ok(den)
    }

    /// Like [`Den::open`], without checking that the context exists (for
    /// the context commands themselves).
    pub fn open_any(home: Home, context: Option<&str>) -> Result<Self, WorkspaceError> {
        let context = match context.filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => DenConfig::load(&home)?.context.unwrap_or_else(|| context::DEFAULT_CONTEXT.into()),
        };
        Ok(Den { home, context })
    }
}

impl Den {
    /// Takes the workspace's lock, telling the user when another den holds
    /// it and this one waits.
    pub(crate) fn lock_workspace(&self, id: &str, reporter: &mut dyn Reporter) -> Result<den_state::Lock> {
        Ok(den_state::Lock::acquire(&self.home.workspace_lock(&self.context, id), |w| {
            let who = w.holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
            reporter.line(&format!("waiting for another den working on workspace `{id}`{who} to finish…"));
        })?)
    }
}

/// How the orchestration tells the user what it is doing.
pub trait Reporter {
    /// A new phase starts (resolve, build, create, inject, setup, hooks).
    fn phase(&mut self, name: &str, detail: &str);
    /// A line of output (hook output, notes).
    fn line(&mut self, text: &str);
}

/// A reporter that says nothing (for tests and `--output json` callers
/// that report elsewhere).
pub struct Quiet;

impl Reporter for Quiet {
    fn phase(&mut self, _: &str, _: &str) {}
    fn line(&mut self, _: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    State(#[from] den_state::StateError),
    #[error(transparent)]
    Config(#[from] den_devcontainer::ConfigError),
    #[error(transparent)]
    Provider(#[from] den_provider::ProviderError),
    #[error(transparent)]
    Driver(#[from] den_driver::DriverError),
    #[error(transparent)]
    Process(#[from] den_process::ProcessError),
    #[error(transparent)]
    Feature(#[from] den_features::FeatureError),
    /// A git SOURCE (or dotfiles) could not be cloned.
    #[error(transparent)]
    Source(#[from] den_source::SourceError),
    #[error("workspace `{0}` does not exist (see `den list`)")]
    NotFound(String),
    #[error("provider `{0}` is not installed (see `den provider list`)")]
    UnknownProvider(String),
    #[error("{hook} failed with exit code {code}")]
    HookFailed { hook: String, code: i32 },
    /// Something den needs is not there: a context, a machine, a pinned
    /// key, a workspace never brought up.
    #[error("{0}")]
    Missing(String),
    /// The request collides with what exists: an id taken by another
    /// folder, a provider or context still in use, a container of another
    /// DEN_HOME.
    #[error("{0}")]
    Conflict(String),
    /// An argument or a file den cannot use as given (and that has no
    /// position to point at; bad configuration files are `Config`).
    #[error("{0}")]
    BadInput(String),
    /// The engine a workspace is on cannot be reached (`den list`'s rows).
    #[error("{0}")]
    Unreachable(String),
    /// The machine or container must run for this and does not.
    #[error("{0}")]
    NotRunning(String),
    /// Waited as long as the provider allows.
    #[error("{0}")]
    Timeout(String),
    /// A provider command answered something den cannot read.
    #[error("{0}")]
    ProviderAnswer(String),
    #[error("{0}")]
    Unsupported(String),
    /// An error with a word on what likely caused it (an option's source).
    #[error("{source}\n  ({hint})")]
    Hinted {
        #[source]
        source: Box<WorkspaceError>,
        hint: String,
    },
    /// Something failed that has no kind of its own, said where it
    /// happened: here, on the machine, or in the workspace.
    #[error("{place}{message}")]
    Failed { place: Place, message: String },
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On this machine, in den itself.
    Here,
    /// On the machine a remote provider reaches (den there said it).
    Machine,
    /// In the workspace's container or pod (the agent said it).
    Workspace,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Place::Here => "",
            Place::Machine => "on the machine: ",
            Place::Workspace => "in the workspace: ",
        })
    }
}

impl WorkspaceError {
    /// A failure in den itself.
    pub(crate) fn here(message: impl Into<String>) -> Self {
        WorkspaceError::Failed { place: Place::Here, message: message.into() }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        move |source| WorkspaceError::Io { action, source }
    }
}

pub type Result<T, E = WorkspaceError> = std::result::Result<T, E>;
