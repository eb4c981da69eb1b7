//! The engines den drives through their CLIs: a docker-compatible one
//! ([`Docker`]: docker, podman) and kubectl ([`Kubectl`]). Each command
//! goes through den-process; nothing here knows about devcontainer.json.

pub mod compose;
mod docker;
mod kube;

pub use compose::Compose;
pub use docker::{BuildSpec, Container, ContainerConfig, ContainerState, Docker, Image, ImageConfig, RunSpec};
pub use kube::{render as render_pod, Kubectl, PodContainer, PodSettings, CONTAINER as KUBE_CONTAINER};

use den_process::ProcessError;

/// What an engine's CLI says on stderr when a container does not run or is
/// gone, for callers that have only that text (a tunnel's stderr).
pub mod phrases {
    pub use crate::docker::{says_no_such_container, says_not_running};
    pub use crate::kube::says_pod_not_found;
}

/// The label every workspace container (and pod, and claim) carries:
/// `den.workspace=<id>`.
pub const WORKSPACE_LABEL: &str = "den.workspace";

/// The label that says how many entries of `devcontainer.metadata` came
/// from the image (the rest is the local config at creation time).
pub const IMAGE_ENTRIES_LABEL: &str = "den.metadata.image-entries";

/// The label that says which den state (DEN_HOME) a container belongs to.
pub const HOME_LABEL: &str = "den.home";

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("Cannot reach the Docker engine at {host}: is dockerd running?\n  ({detail})")]
    EngineUnreachable { host: String, detail: String },
    #[error("`{0}` was not found: install docker (or set the provider option DOCKER_PATH)")]
    CliMissing(String),
    /// No compose CLI answered (what was looked for is in the message).
    #[error("{0}")]
    ComposeMissing(String),
    #[error("image {image} is not present locally and could not be pulled:\n{detail}")]
    ImageMissing { image: String, detail: String },
    #[error("building image {image} failed:\n{tail}\n(the full build log is in {log})")]
    BuildFailed { image: String, tail: String, log: String },
    /// `docker run` found a container of that name already there (one
    /// made meanwhile, e.g. by an `up` that was stopped during its run).
    #[error("container name {name} is already in use:\n{detail}")]
    NameInUse { name: String, detail: String },
    #[error(transparent)]
    Command(#[from] ProcessError),
    #[error("unexpected output from `{command}`: {message}")]
    Parse { command: String, message: String },
    /// A setting the provider gave is not in the form it must have.
    #[error("{0}")]
    Setting(String),
}

/// The keep-alive entrypoint for `overrideCommand`: runs the features'
/// entrypoints, then sleeps until stopped, and exits at once on SIGTERM.
pub fn keep_alive_script(entrypoints: &[String]) -> String {
    keep_alive(entrypoints, true)
}

/// The same keep-alive without running its arguments: for a compose
/// service, whose image's CMD would otherwise come in as arguments.
pub fn keep_alive_loop(entrypoints: &[String]) -> String {
    keep_alive(entrypoints, false)
}

fn keep_alive(entrypoints: &[String], run_args: bool) -> String {
    let mut s = String::from("echo Container started\ntrap \"exit 0\" 15\n");
    for e in entrypoints {
        s.push_str(e);
        s.push('\n');
    }
    if run_args {
        s.push_str("exec \"$@\"\n");
    }
    s.push_str("while sleep 1 & wait $!; do :; done");
    s
}
