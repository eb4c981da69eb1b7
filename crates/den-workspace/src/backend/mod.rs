//! Where a workspace runs, chosen once per command.
//!
//! A provider's manifest decides it: a provider that makes machines, or
//! whose agent is not local, puts workspaces on another machine
//! ([`remote`], with [`machine`] lifecycle); a local one with the
//! `kubernetes` driver makes pods ([`kube`]); any other local one runs
//! containers on this machine's engine through a docker-compatible CLI
//! ([`local`]). [`Backend::of`] is the only place that reads those fields;
//! `up`, `manage` and `ssh` call the chosen backend and never ask which one
//! they have.

pub(crate) mod compose;
pub(crate) mod kube;
pub(crate) mod local;
pub mod machine;
pub(crate) mod project;
pub(crate) mod remote;
pub(crate) mod sequence;

use std::collections::HashMap;

use den_driver::Docker;
use den_process::Cmd;
use den_protocol::Credentials;

use crate::plan::{Plan, UpOptions, UpResult};
use crate::providers::{self, ProviderEntry};
use crate::record::WorkspaceRecord;
use crate::{Den, Reporter, Result, Status, WorkspaceError};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    /// Containers of this machine's (or DOCKER_HOST's) engine.
    Local,
    /// A compose project on that engine (chosen by the configuration, for
    /// `up`; a recorded workspace's operations find the project from its
    /// container's labels, so they are [`Backend::Local`]'s).
    Compose,
    /// Another machine, reached through the provider's `command`.
    Remote,
    /// Pods, through kubectl.
    Kube,
}

/// Where a git SOURCE is cloned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloneAt {
    /// On this machine, in den's folder.
    Here,
    /// On the machine the workspace runs on, by den there.
    Machine,
    /// In the pod, into its volume (den here reads only the configuration).
    Pod,
}

/// What `den list` learns once per engine, so that it asks each engine
/// once (`docker ps`), not once per workspace.
#[derive(Default)]
pub(crate) struct ListCache {
    /// Per engine: its containers and whether each runs, or why it could
    /// not be asked.
    engines: HashMap<String, std::result::Result<HashMap<String, bool>, String>>,
}

impl Backend {
    /// The backend of a provider.
    pub(crate) fn of(entry: &ProviderEntry) -> Result<Backend> {
        let m = &entry.manifest;
        if m.is_machine_provider() || !m.agent.local.is_true_or(false) {
            return Ok(Backend::Remote);
        }
        match m.agent.driver.trim() {
            "kubernetes" => Ok(Backend::Kube),
            "" | "docker" => Ok(Backend::Local),
            other => Err(WorkspaceError::Unsupported(format!(
                "provider `{}` uses the driver `{other}`; den drives docker-compatible engines and kubernetes",
                entry.name
            ))),
        }
    }

    /// The backend that brings `plan` up: its provider's, and a compose
    /// project where the configuration names compose files.
    pub(crate) fn for_plan(plan: &Plan) -> Result<Backend> {
        Ok(match Backend::of(&plan.entry)? {
            Backend::Local if plan.resolved.is_compose() => Backend::Compose,
            other => other,
        })
    }

    /// The backend of a recorded workspace: a workspace on a machine stays
    /// there; one whose provider is gone counts as local (what it is asked
    /// then says that the provider is missing).
    pub(crate) fn of_record(den: &Den, r: &WorkspaceRecord) -> Backend {
        if r.machine.is_some() {
            return Backend::Remote;
        }
        providers::get(den, &r.provider).ok().and_then(|e| Backend::of(&e).ok()).unwrap_or(Backend::Local)
    }

    /// Where a git SOURCE of a workspace on this backend is cloned.
    pub(crate) fn clone_at(self) -> CloneAt {
        match self {
            Backend::Local | Backend::Compose => CloneAt::Here,
            Backend::Remote => CloneAt::Machine,
            Backend::Kube => CloneAt::Pod,
        }
    }

    pub(crate) fn up(self, den: &Den, opts: &UpOptions, plan: Plan, reporter: &mut dyn Reporter) -> Result<UpResult> {
        match self {
            Backend::Local => sequence::up::<local::LocalUp>(den, opts, plan, reporter),
            Backend::Compose => sequence::up::<compose::ComposeUp>(den, opts, plan, reporter),
            Backend::Remote => sequence::up::<remote::RemoteUp>(den, opts, plan, reporter),
            Backend::Kube => sequence::up::<kube::KubeUp>(den, opts, plan, reporter),
        }
    }

    /// Builds (or fetches) the image without starting anything: only where
    /// the engine is this machine's.
    pub(crate) fn build(self, den: &Den, plan: &Plan, reporter: &mut dyn Reporter) -> Result<String> {
        match self {
            Backend::Local | Backend::Compose => local::build(den, plan, reporter),
            Backend::Remote | Backend::Kube => Err(WorkspaceError::Unsupported(format!(
                "provider `{}` does not run containers on this machine's engine; `den build` works with local docker-compatible providers (`den up` builds where the provider runs)",
                plan.entry.name
            ))),
        }
    }

    pub(crate) fn status(self, den: &Den, r: &WorkspaceRecord) -> Result<Status> {
        match self {
            Backend::Local | Backend::Compose => local::status(den, r),
            Backend::Remote => remote::status(den, r),
            Backend::Kube => kube::status(den, r),
        }
    }

    /// The status `den list` shows. A workspace that cannot be asked is
    /// `NotFound`, except that a local engine that cannot be reached is an
    /// error: every local workspace would show wrongly.
    pub(crate) fn list_status(self, den: &Den, r: &WorkspaceRecord, cache: &mut ListCache) -> Result<Status> {
        match self {
            Backend::Local | Backend::Compose => local::list_status(den, r, &mut cache.engines),
            Backend::Remote | Backend::Kube => Ok(self.status(den, r).unwrap_or(Status::NotFound)),
        }
    }

    pub(crate) fn stop(self, den: &Den, r: &WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
        match self {
            Backend::Local | Backend::Compose => local::stop(den, r, reporter),
            Backend::Remote => remote::stop(den, r, reporter),
            Backend::Kube => kube::stop(den, r, reporter),
        }
    }

    /// Removes what the workspace has where it runs (not den's record).
    pub(crate) fn delete(self, den: &Den, r: &WorkspaceRecord, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
        match self {
            Backend::Local | Backend::Compose => local::delete(den, &r.id, Some(r), force, reporter),
            Backend::Remote => remote::delete(den, r, force, reporter),
            Backend::Kube => kube::delete(den, r, force, reporter),
        }
    }

    /// `den delete` of an id den has no record of: a container of the
    /// default provider's local engine that den lost track of. Other
    /// backends have nothing den could find without a record.
    pub(crate) fn delete_unrecorded(den: &Den, id: &str, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
        let entry = providers::get(den, &providers::default_provider(den)?)?;
        match Backend::of(&entry)? {
            Backend::Local | Backend::Compose => local::delete(den, id, None, force, reporter),
            Backend::Remote | Backend::Kube => Err(WorkspaceError::NotFound(id.into())),
        }
    }

    /// The agent's log from where the workspace runs.
    pub(crate) fn service_logs(self, den: &Den, r: &WorkspaceRecord, service: &str) -> Result<String> {
        match self {
            Backend::Local | Backend::Compose => local::service_logs(den, r, service),
            _ => Err(WorkspaceError::Unsupported(
                "`den logs --service` reads compose workspaces on this machine's engine; on a remote machine run `den ssh ID` and read them there".into(),
            )),
        }
    }

    pub(crate) fn logs(self, den: &Den, r: &WorkspaceRecord) -> Result<String> {
        match self {
            Backend::Local | Backend::Compose => local::logs(den, r),
            Backend::Remote => remote::logs(den, r),
            Backend::Kube => Err(WorkspaceError::Unsupported(
                "`den logs` does not read kubernetes workspaces yet; use `kubectl exec POD -- cat /var/lib/den/agent.log`"
                    .into(),
            )),
        }
    }

    /// How a client reaches the workspace, and what the provider lets it
    /// ask the client for now (credentials).
    pub(crate) fn via(self, den: &Den, r: &WorkspaceRecord) -> Result<(Via, Credentials)> {
        match self {
            Backend::Local | Backend::Compose => {
                let entry = providers::get(den, &r.provider)?;
                let opts = providers::resolve(den, &entry, &r.provider_options, Some(&r.id))?;
                Ok((Via::Docker(local::docker_for(&entry, &opts)), crate::plan::credentials_of(&entry.manifest, &opts)))
            }
            Backend::Remote => {
                let run = remote::run_for(den, r)?;
                let now = crate::plan::credentials_of(&run.manifest, &run.options);
                Ok((Via::Provider(Box::new(run)), now))
            }
            Backend::Kube => {
                let run = kube::run_for(den, r)?;
                let now = crate::plan::credentials_of(&run.manifest, &run.options);
                Ok((Via::Kube(Box::new(run)), now))
            }
        }
    }
}

/// `AGENT agent ssh-server --stdio [--workdir DIR]`: the agent's SSH
/// server on the stdio of whatever reaches the container.
fn ssh_server_argv(r: &WorkspaceRecord, workdir: Option<&str>) -> Vec<String> {
    let mut argv = vec![r.agent_path.clone(), "agent".into(), "ssh-server".into(), "--stdio".into()];
    if let Some(w) = workdir {
        argv.push("--workdir".into());
        argv.push(w.into());
    }
    argv
}

/// How a client reaches a workspace's agent, resolved once per connection.
pub enum Via {
    /// The container on this machine's engine.
    Docker(Docker),
    /// Through a remote provider's `command`, to the agent on the machine.
    Provider(Box<crate::exec::ProviderRun>),
    /// A pod, through `kubectl exec`.
    Kube(Box<crate::exec::ProviderRun>),
}

impl Via {
    /// The agent's SSH server on this command's stdio.
    pub fn tunnel(&self, r: &WorkspaceRecord, workdir: Option<&str>) -> Result<Cmd> {
        match self {
            Via::Docker(d) => Ok(local::tunnel_cmd(d, r, workdir)),
            Via::Provider(run) => remote::tunnel(run, r, workdir, false),
            Via::Kube(run) => Ok(kube::tunnel(run, r, workdir)),
        }
    }

    /// The tunnel of den's port forwarder: the same SSH server, which a
    /// machine does not count as a session.
    pub fn forwarder_tunnel(&self, r: &WorkspaceRecord) -> Result<Cmd> {
        match self {
            Via::Provider(run) => remote::tunnel(run, r, None, true),
            other => other.tunnel(r, None),
        }
    }

    /// The credentials relay (`den agent credentials-server`), reached the
    /// same way as the SSH server.
    pub fn credentials_cmd(&self, r: &WorkspaceRecord) -> Result<Cmd> {
        let argv = [r.agent_path.clone(), "agent".into(), "credentials-server".into()];
        match self {
            Via::Docker(d) => Ok(d.exec(&r.container_name, Some("0"), &argv)),
            Via::Kube(run) => Ok(kube::kubectl(run).exec(&r.container_name, &argv)),
            Via::Provider(run) => remote::credentials_tunnel(run, r),
        }
    }

    /// True when the workspace runs (one inspect, or a status through the
    /// provider).
    pub(crate) fn is_running(&self, den: &Den, r: &WorkspaceRecord) -> Result<bool> {
        match self {
            Via::Docker(d) => Ok(d.inspect_container(&r.container_name)?.is_some_and(|c| c.state.running)),
            Via::Provider(_) | Via::Kube(_) => Ok(crate::status(den, &r.id)? == Status::Running),
        }
    }
}
