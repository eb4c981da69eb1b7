//! What travels between den on the client and den on the far side: the
//! agent in a container (setup, credentials) and den on a machine or in a
//! pod ([`transfer`], [`relay`]). Both halves depend on this crate and not
//! on each other: den-agent (the container) is a leaf, and den on a
//! machine or in a pod is `den_workspace::far`, since it runs
//! den-workspace's `up`.
//!
//! ## Setup
//!
//! The one `exec` that injects and sets up carries the request on stdin:
//! the agent says [`READY`], den writes the request as one JSON line and
//! keeps stdin open for as long as it waits. The agent streams hook output
//! as lines and ends with one line `DEN-RESULT <json>`. End of stdin before
//! that means den is gone (killed, or its tunnel broke): the agent stops
//! the running hook and exits, so that the next `up` runs it once again,
//! never beside it. The request travels on stdin, not in the environment,
//! because it holds remoteEnv values and an exec's environment is on the
//! command line of the engine's client.

pub mod ids;
pub mod relay;
pub mod transfer;

use std::time::Duration;

use den_devcontainer::model::UserEnvProbe;
use den_devcontainer::LifecycleCommand;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Where the agent keeps its files inside the container.
pub const DATA_DIR: &str = "/var/lib/den";

/// Where the private host folder of a workspace on a local engine is
/// mounted in its container: the agent serves SSH on a socket there (the
/// direct line, docs/line.md), and the folder holds nothing else.
pub const LINE_DIR: &str = "/run/den";

/// The agent's SSH socket in [`LINE_DIR`] (and in the host folder).
pub const LINE_SOCKET: &str = "ssh.sock";

/// Set to `pid1` for `den agent setup` run over the direct line: the
/// container's own environment is then PID 1's, not the SSH session's.
pub const CONTAINER_ENV_SWITCH: &str = "DEN_CONTAINER_ENV";

/// The agent reads its request now.
pub const READY: &str = "DEN-READY";
/// The agent wants the workspace's files now (a tar stream on stdin).
pub const SEND_CONTENT: &str = "DEN-SEND-CONTENT";
/// The agent needs no files: den closes stdin.
pub const NO_CONTENT: &str = "DEN-NO-CONTENT";
pub const RESULT_PREFIX: &str = "DEN-RESULT ";
pub const PHASE_PREFIX: &str = "DEN-PHASE ";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetupRequest {
    pub workspace_id: String,
    pub workspace_folder: String,
    /// `name`, `uid`, `name:group` or `uid:gid`.
    pub remote_user: String,
    #[serde(rename = "updateRemoteUserUID")]
    pub update_remote_user_uid: bool,
    /// The owner of the project folder on the host (for the UID update).
    pub host_uid: u32,
    pub host_gid: u32,
    pub remote_env: IndexMap<String, Option<String>>,
    pub user_env_probe: Option<UserEnvProbe>,
    pub hooks: Hooks,
    /// The client's public key (OpenSSH format) that may log in over SSH.
    pub authorized_key: String,
    /// Stop the container after this long without a session (`10m`…);
    /// empty: never.
    pub inactivity_timeout: String,
    /// Which credentials the container may ask the client for.
    pub credentials: Credentials,
    /// `customizations.vscode.settings` of the config and its image, merged
    /// (later wins): the VS Code family's server machine settings.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vscode_settings: serde_json::Map<String, serde_json::Value>,
    /// `customizations.vscode.extensions` of the config and its image: the
    /// agent installs them into every VS Code family server that appears
    /// in the remote user's home (as Remote-SSH's default extensions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vscode_extensions: Vec<String>,
}

/// Credentials the workspace asks the client for while a connection is
/// open: the provider's `agent.injectGitCredentials` and
/// `agent.injectDockerCredentials`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Credentials {
    pub git: bool,
    pub docker: bool,
}

impl Credentials {
    pub fn any(&self) -> bool {
        self.git || self.docker
    }
}

/// The merged lifecycle commands, each hook a list (image metadata first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hooks {
    pub on_create_command: Vec<LifecycleCommand>,
    pub update_content_command: Vec<LifecycleCommand>,
    pub post_create_command: Vec<LifecycleCommand>,
    pub post_start_command: Vec<LifecycleCommand>,
    pub post_attach_command: Vec<LifecycleCommand>,
}

/// How the far side's work ended: setup in a container, `remote-up` on a
/// machine, files into a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Outcome {
    Done,
    /// A lifecycle hook failed: den exits with its code. `detail` is what to
    /// say besides that (it was interrupted, could not start).
    #[serde(rename_all = "camelCase")]
    HookFailed {
        hook: String,
        code: i32,
        detail: Option<String>,
    },
    /// Anything else, as said where it happened.
    Failed {
        message: String,
    },
    /// `clone-content`: the image has no git ([`transfer::NO_GIT`]); den
    /// clones on the client and sends the files.
    NoGit,
}

impl Default for Outcome {
    /// A result that does not say how it ended did not succeed.
    fn default() -> Self {
        Outcome::Failed { message: "the far side did not say how it ended".into() }
    }
}

impl Outcome {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetupResult {
    pub outcome: Outcome,
    pub user: Option<RemoteUser>,
    /// The hooks that ran this time.
    pub ran: Vec<String>,
    /// The workspace's SSH host key (public, OpenSSH format), to pin.
    pub host_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RemoteUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// What the agent remembers in the container for later sessions (ssh).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceInfo {
    pub workspace_id: String,
    pub workspace_folder: String,
    pub user: RemoteUser,
    /// The environment sessions get (probe result + remoteEnv).
    pub env: IndexMap<String, String>,
}

// Credentials: the relay between the container's helpers and the client.

/// A request from the container, to den on the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialRequest {
    pub id: u64,
    /// `get`, `store` or `erase` (git's helper operations).
    pub op: String,
    /// The attributes git gave the helper (`protocol=https\nhost=…\n`).
    pub input: String,
}

/// den's answer: what the client's `git credential` printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialAnswer {
    pub id: u64,
    pub output: String,
}

// Durations as providers write them (inactivity timeouts).

/// Parses `30s`, `10m`, `2h`, `1d` or plain seconds. Empty or zero: none.
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 30s, 10m, 2h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{s}` is not a duration (e.g. 30s, 10m, 2h)")),
    };
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_travel_typed_and_silence_is_a_failure() {
        let r: SetupResult = serde_json::from_str("{}").unwrap();
        assert!(!r.outcome.is_done());
        for o in [
            Outcome::Done,
            Outcome::HookFailed { hook: "postCreateCommand".into(), code: 7, detail: None },
            Outcome::Failed { message: "no".into() },
            Outcome::NoGit,
        ] {
            let r = SetupResult { outcome: o.clone(), ..Default::default() };
            let back: SetupResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back.outcome, o);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("").unwrap(), None);
        assert_eq!(parse_duration("0").unwrap(), None);
        assert_eq!(parse_duration("45").unwrap(), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("30s").unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m").unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h").unwrap(), Some(Duration::from_secs(7200)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}

// Ports: what the agent's `den-ports` subsystem reports.

/// A TCP port something in the workspace listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListeningPort {
    pub port: u16,
    /// The address it listens on (`0.0.0.0`, `127.0.0.1`, `::`, …).
    pub address: String,
    /// The listening process's command line, when the agent may see it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub process: String,
}

/// The name of the SSH subsystem that reports listening ports: one JSON
/// line (a list of [`ListeningPort`]) at the start and on every change.
pub const PORTS_SUBSYSTEM: &str = "den-ports";

/// The name of the SSH subsystem that relays credential questions: the
/// container's helpers ask on a socket it serves, each question goes out as
/// a [`CredentialRequest`] line and each [`CredentialAnswer`] line comes in.
/// The same as the command `den agent credentials-server`.
pub const CREDENTIALS_SUBSYSTEM: &str = "den-credentials";
