//! Workspaces on another machine: a provider whose agent is not local
//! (e.g. `ssh`) or that makes machines (`exec.create`). den reaches the
//! machine only through the provider's `command`, puts its own binary there
//! as the agent, and that agent runs the docker driver on the machine (see
//! `den_workspace::far::machine`). `den ssh` goes den → `command` → `den agent
//! remote-tunnel` → `docker exec` → the SSH server in the container.

use den_process::Cmd;

use super::machine::{self, MachineStatus};
use super::sequence::{Made, Setup, UpSteps};
use crate::exec::{self, ProviderRun};
use crate::inject::{inject_command, run_agent, Feed};
use crate::plan::Plan;
use crate::record::WorkspaceRecord;
use crate::{Den, Reporter, Result, UpOptions, WorkspaceError};
use den_protocol::transfer::{MachineWatch, RemoteUpRequest, RemoteUpResult};

/// Where den puts its agent on a machine when the provider does not say
/// (`~/` is the remote user's home).
const DEFAULT_MACHINE_AGENT_PATHS: [&str; 2] = ["~/.den-agent/bin/den", "/tmp/den-agent/den"];

/// The provider of a recorded remote workspace, with its options.
pub(crate) fn run_for(den: &Den, rec: &WorkspaceRecord) -> Result<ProviderRun> {
    if let Some(mid) = &rec.machine {
        let m = machine::MachineRecord::load(den, mid)?.ok_or_else(|| {
            WorkspaceError::Missing(format!("workspace `{}` is on machine `{mid}`, which den no longer knows", rec.id))
        })?;
        return machine::run_for(den, &m, Some(rec));
    }
    let entry = crate::providers::get(den, &rec.provider)?;
    let subject = exec::workspace_subject(den, &rec.id, rec.local_folder.clone());
    exec::run_for(den, &entry, &rec.provider_options, &subject)
}

/// Where the agent goes on the machine: the manifest's `agent.path` alone
/// when it names one (a copy elsewhere is not used instead), else den's
/// defaults.
fn agent_candidates(run: &ProviderRun) -> Vec<String> {
    let p = run.expand(&run.manifest.agent.path);
    if !p.trim().is_empty() {
        return vec![p];
    }
    DEFAULT_MACHINE_AGENT_PATHS.iter().map(|d| d.to_string()).collect()
}

fn machine_watch(run: &ProviderRun) -> Option<MachineWatch> {
    if !run.manifest.is_machine_provider() {
        return None; // never power off a host den did not make
    }
    let t = run.expand(&run.manifest.agent.inactivity_timeout);
    let timeout = den_protocol::parse_duration(&t).ok().flatten()?;
    let shutdown = run.manifest.agent.exec.shutdown.script();
    let shutdown = if shutdown.trim().is_empty() { "shutdown -h now || poweroff".to_string() } else { shutdown };
    Some(MachineWatch { timeout_secs: timeout.as_secs(), shutdown, env: run.all_env() })
}

/// `up` on another machine: the machine made or started (machine
/// providers), den's binary put there, and den there does the rest
/// (`den agent remote-up`).
pub(crate) struct RemoteUp {
    run: ProviderRun,
    machine_id: Option<String>,
    options: indexmap::IndexMap<String, String>,
}

impl UpSteps for RemoteUp {
    fn check(p: &Plan) -> Result<()> {
        p.refuse_provider_change()?;
        if p.entry.manifest.exec_proxy {
            return Err(WorkspaceError::Unsupported(format!(
                "provider `{}` is a proxy provider (exec.proxy); den does not run those",
                p.entry.name
            )));
        }
        Ok(())
    }

    fn open(den: &Den, p: &Plan, opts: &UpOptions, _reporter: &mut dyn Reporter) -> Result<Self> {
        let machine_id = match &p.record {
            Some(r) => r.machine.clone(),
            None if p.entry.manifest.is_machine_provider() => {
                Some(opts.machine.clone().unwrap_or_else(|| p.id.clone()))
            }
            None => None,
        };
        let mut subject = exec::workspace_subject(den, &p.id, p.folder.clone());
        if let Some(m) = &machine_id {
            subject = exec::on_machine(den, subject, m);
        }
        // A machine that exists keeps the options it was made with: status,
        // start and command must reach the same machine.
        let existing = match &machine_id {
            Some(m) => machine::MachineRecord::load(den, m)?,
            None => None,
        };
        if let Some(rec) = existing.as_ref().filter(|r| r.provider != p.entry.name) {
            return Err(WorkspaceError::Conflict(format!(
                "machine `{}` belongs to provider `{}`, not `{}`",
                rec.id, rec.provider, p.entry.name
            )));
        }
        let options = existing.map(|r| r.provider_options).unwrap_or_else(|| p.ws_options.clone());
        let run = exec::run_given(den, &p.entry, &options, &p.globals, &subject)?;
        exec::init(den, &run)?;
        Ok(RemoteUp { run, machine_id, options })
    }

    fn credentials(&self, p: &Plan) -> den_protocol::Credentials {
        crate::plan::credentials_of(&p.entry.manifest, &self.run.options)
    }

    fn prepare(&mut self, den: &Den, p: &mut Plan, _opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<()> {
        if let Some(m) = &self.machine_id {
            machine::ensure_running(den, &p.entry, m, &self.options, &self.run, reporter)?;
        }
        Ok(())
    }

    /// Recorded before anything is made on the machine, so that `den
    /// delete` can always clean up.
    fn record_first(&self) -> bool {
        true
    }

    fn describe(&self, _p: &Plan, rec: &mut WorkspaceRecord) {
        rec.machine = self.machine_id.clone();
    }

    fn create(
        &mut self,
        _den: &Den,
        _p: &mut Plan,
        _opts: &UpOptions,
        _rec: &mut WorkspaceRecord,
        _reporter: &mut dyn Reporter,
    ) -> Result<Made> {
        // den on the machine makes the container, in `setup`.
        Ok(Made::default())
    }

    fn setup(
        &mut self,
        den: &Den,
        p: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup> {
        let req = self.request(den, p, opts)?;
        reporter.phase("inject", &format!("reaching the machine through provider `{}`", p.entry.name));
        let command = inject_command(&agent_candidates(&self.run), "remote-up")?;
        let cmd = self.run.remote(&command)?;
        let folder = p.folder.clone();
        let feed = Feed {
            request: serde_json::to_string(&req).expect("serialises"),
            content: Box::new(move |out| den_protocol::transfer::send_folder(&folder, out)),
            clone_url: p.clone_on_machine.as_ref().map(|g| g.url.clone()),
        };
        let agent_run = run_agent::<RemoteUpResult>(&cmd, Some(feed), reporter)?;
        let r = agent_run.result;
        // Whatever happened on the machine, den must be able to reach (and
        // delete) what the agent made there.
        rec.machine_agent_path = agent_run.agent_path.clone();
        if let (Some(source), false) = (rec.source.as_mut(), r.commit.is_empty()) {
            source.commit = r.commit.clone();
        }
        if !r.home.is_empty() {
            rec.remote_home = r.home.clone();
        }
        let user = r.facts.as_ref().map(|f| f.remote_user.clone()).unwrap_or_default();
        if let Some(facts) = r.facts.filter(|f| !f.container_name.is_empty()) {
            // Also after a failed hook: the container is there, as on docker.
            rec.set_facts(facts);
        }
        *made = Made { created: r.created, started: r.started };
        // The machine said what went wrong as it happened.
        Ok(Setup {
            outcome: r.outcome,
            place: crate::Place::Machine,
            note: None,
            host_key: r.host_key,
            user,
            ran: r.hooks_ran,
            uploaded: agent_run.uploaded || r.uploaded_agent,
        })
    }
}

impl RemoteUp {
    /// What den on the machine is asked to do.
    fn request(&self, den: &Den, p: &Plan, opts: &UpOptions) -> Result<RemoteUpRequest> {
        let run = &self.run;
        let key = den_ssh::keys::load_or_create(&crate::publish::client_key_path(den, &p.id))
            .map_err(|e| WorkspaceError::here(format!("making the workspace's SSH key: {e}")))?;
        let agent = &p.entry.manifest.agent;
        let docker_path = run.expand(&agent.docker.path);
        let container_timeout = run.expand(p.container_inactivity_timeout());
        Ok(RemoteUpRequest {
            context: den.context.clone(),
            workspace_id: p.id.clone(),
            data_path: run.expand(&agent.data_path),
            docker_path: if docker_path.trim().is_empty() { "docker".into() } else { docker_path },
            docker_env: agent
                .docker
                .env
                .iter()
                .map(|(k, v)| (k.clone(), run.expand(v)))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            fresh_content: p.record.is_none() || opts.recreate || opts.reset,
            recreate: opts.recreate || opts.reset,
            devcontainer_path: devcontainer_path_on_machine(p)?,
            fallback_image: p.fallback_image.clone(),
            prebuild_repository: p.prebuild.as_ref().map(|b| b.repository.clone()).unwrap_or_default(),
            workspace_env: p.workspace_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            devcontainer_image: p.devcontainer_image.clone().unwrap_or_default(),
            // A machine's own timeout stops the machine; the container one
            // only applies when the provider sets it apart.
            container_inactivity_timeout: if self.machine_id.is_some() && agent.container_inactivity_timeout.is_empty()
            {
                String::new()
            } else {
                container_timeout
            },
            authorized_key: den_ssh::keys::public_openssh(key.public_key()),
            machine_watch: machine_watch(run),
            docker_install: agent.docker.install.is_true_or(true),
            credentials: crate::plan::credentials_of(&p.entry.manifest, &run.options),
            git: p.clone_on_machine.clone(),
            reset: opts.reset,
        })
    }
}

/// The machine has its own copy of the folder: the config path must be
/// inside it.
fn devcontainer_path_on_machine(p: &Plan) -> Result<Option<std::path::PathBuf>> {
    match &p.devcontainer_path {
        Some(d) if d.is_absolute() => Ok(Some(d.strip_prefix(&p.folder).map(|r| r.to_path_buf()).map_err(|_| {
            WorkspaceError::BadInput(format!(
                "--devcontainer-path {} is outside {}; a remote workspace only has the project folder",
                d.display(),
                p.folder.display()
            ))
        })?)),
        other => Ok(other.clone()),
    }
}

/// A command line for the agent on the machine.
fn agent_command(rec: &WorkspaceRecord, words: &[&str]) -> String {
    let mut argv = vec![rec.machine_agent_path.as_str(), "agent"];
    argv.extend_from_slice(words);
    argv.extend_from_slice(&["--home", &rec.remote_home, "--context", &rec.context]);
    argv.iter().map(|a| den_process::shell_quote(a)).collect::<Vec<_>>().join(" ")
}

/// The tunnel to a remote workspace's SSH server.
pub(crate) fn tunnel(run: &ProviderRun, rec: &WorkspaceRecord, workdir: Option<&str>, forwarder: bool) -> Result<Cmd> {
    if rec.machine_agent_path.is_empty() {
        return Err(WorkspaceError::Missing(format!("workspace `{}` was never brought up; run `den up`", rec.id)));
    }
    let mut command = agent_command(rec, &["remote-tunnel"]);
    if forwarder {
        command.push_str(" --forwarder");
    }
    if let Some(w) = workdir {
        command.push_str(&format!(" --workdir {}", den_process::shell_quote(w)));
    }
    command.push_str(&format!(" {}", den_process::shell_quote(&rec.id)));
    Ok(run.remote(&command)?)
}

/// The credentials relay in a remote workspace's container.
pub(crate) fn credentials_tunnel(run: &ProviderRun, rec: &WorkspaceRecord) -> Result<Cmd> {
    let command =
        format!("{} --credentials {}", agent_command(rec, &["remote-tunnel"]), den_process::shell_quote(&rec.id));
    Ok(run.remote(&command)?)
}

fn op(run: &ProviderRun, rec: &WorkspaceRecord, what: &str) -> Result<String> {
    let command = format!("{} {}", agent_command(rec, &["remote-op", what]), den_process::shell_quote(&rec.id));
    let out = run.remote(&command)?.output().map_err(|e| den_provider::ProviderError::Exec {
        provider: run.name().into(),
        command: format!("command ({what} on the machine)"),
        source: Box::new(e),
    })?;
    Ok(out.stdout)
}

/// `remote-op delete` through the agent at whichever of its usual places
/// it is, under its usual home (`agent.dataPath`, else `~/.den-agent`), for
/// a record that does not say where they are. Nothing there: nothing to do.
fn blind_delete_command(run: &ProviderRun, rec: &WorkspaceRecord) -> String {
    let q = den_process::shell_quote;
    let candidates: Vec<String> = agent_candidates(run).iter().map(|c| q(c)).collect();
    let data_path = run.expand(&run.manifest.agent.data_path);
    let home = if data_path.trim().is_empty() { "\"$HOME/.den-agent\"".to_string() } else { q(&data_path) };
    format!(
        "for p in {}; do case $p in \"~/\"*) p=$HOME/${{p#??}};; esac; if [ -x \"$p\" ]; then exec \"$p\" agent remote-op delete --home {home} --context {} {}; fi; done; exit 0",
        candidates.join(" "),
        q(&rec.context),
        q(&rec.id)
    )
}

fn reachable(run: &ProviderRun, rec: &WorkspaceRecord) -> Result<bool> {
    if rec.machine_agent_path.is_empty() || rec.remote_home.is_empty() {
        return Ok(false);
    }
    if rec.machine.is_some() {
        return Ok(machine::status_of(run)? == MachineStatus::Running);
    }
    Ok(true)
}

pub(crate) fn status(den: &Den, rec: &WorkspaceRecord) -> Result<crate::Status> {
    let run = run_for(den, rec)?;
    if rec.machine.is_some() {
        match machine::status_of(&run)? {
            MachineStatus::Running => {}
            MachineStatus::Busy => return Ok(crate::Status::Busy),
            MachineStatus::Stopped => return Ok(crate::Status::Stopped),
            MachineStatus::NotFound => return Ok(crate::Status::NotFound),
        }
    }
    if rec.machine_agent_path.is_empty() {
        return Ok(crate::Status::NotFound);
    }
    Ok(match op(&run, rec, "status")?.trim() {
        "Running" => crate::Status::Running,
        "Stopped" => crate::Status::Stopped,
        "Busy" => crate::Status::Busy,
        _ => crate::Status::NotFound,
    })
}

/// Stops the container; on a machine provider also the machine, once no
/// other workspace on it runs.
pub(crate) fn stop(den: &Den, rec: &WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
    let run = run_for(den, rec)?;
    if !reachable(&run, rec)? {
        return Ok(());
    }
    reporter.phase("stop", &format!("stopping {} on the machine", rec.container_name));
    op(&run, rec, "stop")?;
    if let Some(mid) = &rec.machine {
        let others: Vec<_> = machine::workspaces_on(den, mid)?.into_iter().filter(|w| w.id != rec.id).collect();
        let mut busy = false;
        for w in &others {
            busy |= status(den, w).map(|s| s == crate::Status::Running).unwrap_or(false);
        }
        if !busy {
            machine::stop(den, mid, reporter)?;
        }
    }
    Ok(())
}

/// Removes the workspace from the machine; on a machine provider deletes
/// the machine too once no other workspace is on it.
pub(crate) fn delete(den: &Den, rec: &WorkspaceRecord, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let run = run_for(den, rec);
    let last_on_machine = match &rec.machine {
        Some(mid) => machine::workspaces_on(den, mid)?.iter().all(|w| w.id == rec.id),
        None => false,
    };
    let result = run.and_then(|run| {
        if last_on_machine {
            // The machine goes, and everything on it.
            return Ok(());
        }
        if reachable(&run, rec)? {
            reporter.phase("delete", &format!("removing {} from the machine", rec.container_name));
            op(&run, rec, "delete")?;
        } else if rec.machine.is_none() {
            // An up that failed before the agent answered: den never learned
            // where the agent and its home are. Look where they would be.
            reporter.phase("delete", "removing what a failed up left on the machine");
            let command = blind_delete_command(&run, rec);
            // That up may never have reached the machine (a wrong host): a
            // failure here is said, not fatal.
            if let Err(e) = run.remote(&command)?.output() {
                reporter.line(&format!(
                    "warning: could not look for what a failed up left on the machine: {}",
                    e.to_string().lines().next().unwrap_or_default()
                ));
            }
        } else if rec.machine.is_some() {
            return Err(WorkspaceError::NotRunning(format!(
                "machine `{}` is not running, so workspace `{}` cannot be removed from it; start it with `den up {}` or use --force",
                rec.machine.as_deref().unwrap_or(""),
                rec.id,
                rec.local_folder.display()
            )));
        }
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(e) if !force => return Err(e),
        Err(e) => reporter.line(&format!("warning: {e}; removing den's record anyway (--force)")),
    }
    if let (Some(mid), true) = (&rec.machine, last_on_machine) {
        if machine::MachineRecord::load(den, mid)?.is_some() {
            // The machine goes first; only then does den forget the
            // workspace (machine::delete forgets the workspaces it held).
            if let Err(e) = machine::delete(den, mid, true, reporter) {
                if !force {
                    return Err(e);
                }
                reporter.line(&format!("warning: {e}; removing den's record anyway (--force)"));
            }
        }
    }
    Ok(())
}

pub(crate) fn logs(den: &Den, rec: &WorkspaceRecord) -> Result<String> {
    let run = run_for(den, rec)?;
    if !reachable(&run, rec)? {
        return Err(WorkspaceError::NotRunning(format!("workspace `{}`'s machine is not running", rec.id)));
    }
    op(&run, rec, "logs")
}
