//! The local backend: containers of this machine's engine (or the one
//! DOCKER_HOST names), through a docker-compatible CLI (docker, podman).

use std::collections::HashMap;

use den_devcontainer::{MergedConfig, MetadataEntry, Resolved};
use den_driver::{BuildSpec, Container, Docker, RunSpec, HOME_LABEL, IMAGE_ENTRIES_LABEL, WORKSPACE_LABEL};
use den_provider::ResolvedOption;
use indexmap::IndexMap;

use den_protocol::SetupRequest;

use super::project;
use super::sequence::{self, Made, Setup, UpSteps};
use crate::agent_mount::{self, AgentMount};
use crate::features::{LockMode, Prebuild};
use crate::inject::{inject_and_setup, DEFAULT_AGENT_PATHS};
use crate::plan::{authorized_key, container_name, credentials_of, home_tag, setup_request, Plan};
use crate::providers::{self, ProviderEntry};
use crate::record::WorkspaceRecord;
use crate::{Den, Reporter, Result, Status, UpOptions, WorkspaceError};

/// The driver for a provider: providers that run containers on the local
/// (or a DOCKER_HOST) engine through a docker-compatible CLI.
pub(crate) fn docker_for(entry: &ProviderEntry, opts: &IndexMap<String, ResolvedOption>) -> Docker {
    let m = &entry.manifest;
    let path = den_provider::expand_options(&m.agent.docker.path, opts);
    let path = if path.trim().is_empty() { "docker".to_string() } else { path };
    let env = m
        .agent
        .docker
        .env
        .iter()
        .map(|(k, v)| (k.clone(), den_provider::expand_options(v, opts)))
        .filter(|(_, v)| !v.contains("${"))
        .collect();
    Docker::new(path, env)
}

/// Where the provider wants the agent, else the agent den mounts into the
/// containers it makes (looked at only); then den's defaults.
fn agent_candidates(entry: &ProviderEntry, opts: &IndexMap<String, ResolvedOption>) -> Vec<String> {
    let p = den_provider::expand_options(&entry.manifest.agent.path, opts);
    let mut v = if !p.trim().is_empty() && !p.contains("${") { vec![p] } else { vec![agent_mount::candidate()] };
    for d in DEFAULT_AGENT_PATHS {
        if !v.iter().any(|x| x == d) {
            v.push(d.to_string());
        }
    }
    v
}

/// The driver of a recorded workspace, with its provider's options.
pub(crate) fn docker_of(den: &Den, r: &WorkspaceRecord) -> Result<Docker> {
    let entry = providers::get(den, &r.provider)?;
    let opts = providers::resolve(den, &entry, &r.provider_options, Some(&r.id))?;
    Ok(docker_for(&entry, &opts))
}

/// Builds the image of a Dockerfile config, or makes sure the image is
/// there (`inspected`: its inspect, made already). Returns the image
/// reference and its inspect data.
#[allow(clippy::too_many_arguments)]
fn prepare_image(
    den: &Den,
    docker: &Docker,
    resolved: &Resolved,
    tag: &str,
    lock: LockMode,
    prebuild: Option<&Prebuild>,
    inspected: Option<den_driver::Image>,
    reporter: &mut dyn Reporter,
) -> Result<(String, den_driver::Image)> {
    let Some(p) = prebuild else {
        let base = base_image(docker, resolved, tag, inspected, reporter)?;
        return crate::features::install(den, docker, resolved, base, lock, reporter);
    };
    let reference = format!("{}:{}", p.repository, crate::features::prebuild_hash(den, resolved, lock)?);
    if !p.push {
        if let Some(info) = docker.inspect_image(&reference)? {
            reporter.phase("build", &format!("prebuilt image {reference} (present)"));
            return Ok((reference, info));
        }
        reporter.phase("build", &format!("looking for the prebuilt image {reference}"));
        if docker.pull(&reference)? {
            if let Some(info) = docker.inspect_image(&reference)? {
                reporter.line(&format!("pulled the prebuilt image {reference}"));
                return Ok((reference, info));
            }
        }
        reporter.line(&format!("no prebuilt image {reference}; building"));
    }
    let base = base_image(docker, resolved, tag, inspected, reporter)?;
    let (built, _) = crate::features::install(den, docker, resolved, base, lock, reporter)?;
    docker.tag(&built, &reference)?;
    if p.push {
        reporter.phase("push", &reference);
        docker.push(&reference)?;
    }
    let info = docker
        .inspect_image(&reference)?
        .ok_or_else(|| WorkspaceError::here(format!("{reference} vanished after it was tagged")))?;
    Ok((reference, info))
}

/// The inspect of a plain image (no Dockerfile, no prebuild), started
/// beside the look for the container when the workspace has no record: a
/// first `up` most likely makes the container and needs both, so the
/// second engine call costs no time of its own. `None` inside: not there
/// (it is pulled as usual).
fn early_image_inspect(plan: &Plan, docker: &Docker) -> Option<std::thread::JoinHandle<Option<den_driver::Image>>> {
    let cfg = &plan.resolved.config;
    let built = cfg.docker_file.is_some() || cfg.build.as_ref().is_some_and(|b| b.dockerfile.is_some());
    let image = cfg.image.clone().filter(|_| plan.record.is_none() && plan.prebuild.is_none() && !built)?;
    let docker = docker.clone();
    Some(std::thread::spawn(move || docker.inspect_image(&image).ok().flatten()))
}

/// The configuration's own image: pulled when missing (unless `inspected`
/// already), or built from its Dockerfile.
fn base_image(
    docker: &Docker,
    resolved: &Resolved,
    tag: &str,
    inspected: Option<den_driver::Image>,
    reporter: &mut dyn Reporter,
) -> Result<(String, den_driver::Image)> {
    let cfg = &resolved.config;
    let dockerfile = cfg.build.as_ref().and_then(|b| b.dockerfile.clone()).or_else(|| cfg.docker_file.clone());
    let Some(dockerfile) = dockerfile else {
        let image = cfg.image.clone().expect("checked");
        reporter.phase("build", &format!("image {image}"));
        let info = match inspected {
            Some(info) => info,
            None => docker.ensure_image(&image)?,
        };
        return Ok((image, info));
    };
    let dir = resolved.config_dir();
    let build = cfg.build.clone().unwrap_or_default();
    // With no context given, the Dockerfile's own folder, as the reference
    // CLI and DevPod do (a `COPY scripts …` next to a ../Dockerfile works).
    let context = match build.context.clone().or_else(|| cfg.context.clone()) {
        Some(c) => dir.join(c),
        None => dir.join(&dockerfile).parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf()),
    };
    let image = format!("{tag}:latest");
    reporter.phase("build", &format!("building {image} from {dockerfile}"));
    let log = std::env::temp_dir().join(format!("{tag}-build.log"));
    let spec = BuildSpec {
        tag: image.clone(),
        dockerfile: dir.join(&dockerfile),
        context,
        args: build.args.clone().unwrap_or_default().into_iter().collect(),
        target: build.target.clone(),
        cache_from: build.cache_from.as_ref().map(|c| c.to_vec()).unwrap_or_default(),
        options: build.options.clone().unwrap_or_default(),
        labels: vec![],
        log,
    };
    docker.build(&spec, &mut |line| reporter.line(&format!("  │ {line}")))?;
    let info = docker
        .inspect_image(&image)?
        .ok_or_else(|| WorkspaceError::here(format!("{image} vanished after its build")))?;
    Ok((image, info))
}

fn image_metadata(image: &den_driver::Image) -> Result<Vec<MetadataEntry>> {
    match image.label("devcontainer.metadata") {
        Some(text) => den_devcontainer::parse_metadata_label(text)
            .map_err(|e| WorkspaceError::BadInput(format!("image {}: {e}", image.id))),
        None => Ok(vec![]),
    }
}

/// Creates the container for a workspace: `false` when a container of
/// that name was there already. `agent`: the folder of den's binary to
/// mount; an engine that does not have it (it is not on this machine after
/// all) gets the container without it, and the agent is uploaded.
#[allow(clippy::too_many_arguments)]
fn create_container(
    docker: &Docker,
    home_tag: &str,
    name: &str,
    id: &str,
    resolved: &Resolved,
    image: &str,
    meta: &[MetadataEntry],
    merged: &MergedConfig,
    agent: Option<&AgentMount>,
    line: Option<String>,
) -> Result<bool> {
    let cfg = &resolved.config;
    let mut label_entries: Vec<serde_json::Value> = meta.iter().map(MetadataEntry::to_label_value).collect();
    label_entries.push(resolved.label_entry());
    let mut mounts: Vec<String> = resolved.workspace_mount.iter().cloned().collect();
    mounts.extend(merged.mounts.iter().map(|m| m.to_docker_arg()));
    mounts.extend(agent.map(AgentMount::docker_arg));
    // The direct line's folder (docs/line.md).
    mounts.extend(line.clone());
    let ports = cfg
        .app_port
        .as_ref()
        .map(|p| p.0.iter().map(|x| if x.contains(':') { x.clone() } else { format!("{x}:{x}") }).collect())
        .unwrap_or_default();
    let keep_alive =
        merged.override_command.unwrap_or(true).then(|| den_driver::keep_alive_script(&merged.entrypoints));
    let spec = RunSpec {
        name: name.to_string(),
        image: image.to_string(),
        labels: vec![
            (WORKSPACE_LABEL.into(), id.into()),
            ("devcontainer.local_folder".into(), resolved.local_folder.display().to_string()),
            ("devcontainer.config_file".into(), resolved.config_file.display().to_string()),
            ("devcontainer.metadata".into(), serde_json::Value::Array(label_entries).to_string()),
            (IMAGE_ENTRIES_LABEL.into(), meta.len().to_string()),
            (HOME_LABEL.into(), home_tag.to_string()),
        ],
        mounts,
        env: merged.container_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        init: merged.init,
        privileged: merged.privileged,
        cap_add: merged.cap_add.clone(),
        security_opt: merged.security_opt.clone(),
        user: merged.container_user.clone(),
        ports,
        run_args: cfg.run_args.clone().unwrap_or_default(),
        keep_alive,
    };
    let ran = match (docker.run(&spec), agent) {
        (Err(den_driver::DriverError::Command(e)), Some(a)) if a.refused_by(e.stderr()) => {
            let _ = docker.remove(name);
            let spec = RunSpec {
                mounts: spec.mounts.into_iter().filter(|m| *m != a.docker_arg() && Some(m) != line.as_ref()).collect(),
                ..spec
            };
            docker.run(&spec)
        }
        (ran, _) => ran,
    };
    match ran {
        Ok(_) => Ok(true),
        // Made meanwhile by another `up` (one that was stopped while its
        // `docker run` went on): not ours to remove.
        Err(den_driver::DriverError::NameInUse { .. }) => Ok(false),
        Err(e) => {
            // `docker run` can fail after creating the container (a bad
            // mount, a bad runArg): leave nothing behind.
            let _ = docker.remove(name);
            Err(e.into())
        }
    }
}

/// Refuses a container that is not this workspace's. With no record of the
/// workspace (`adopting`), the container must carry this workspace's id and
/// this DEN_HOME: it is one an interrupted `up` made.
fn check_owner(den: &Den, id: &str, c: &Container, adopting: bool) -> Result<()> {
    let name = c.name.trim_start_matches('/');
    let home = c.label(HOME_LABEL);
    if home.is_some_and(|h| h != home_tag(den)) {
        return Err(WorkspaceError::Conflict(format!(
            "container {name} belongs to another den state folder (DEN_HOME); choose another id with --id"
        )));
    }
    if adopting && (home.is_none() || c.label(WORKSPACE_LABEL) != Some(id)) {
        return Err(WorkspaceError::Conflict(format!(
            "a container named {name} exists and den did not make it for workspace `{id}`; remove it or choose another id with --id"
        )));
    }
    Ok(())
}

/// An existing container of the workspace, started when it is stopped
/// (with its whole compose project). Returns its image metadata, image and
/// user, and whether it was started.
fn take_existing(
    docker: &Docker,
    c: &Container,
    plan: &mut Plan,
    reporter: &mut dyn Reporter,
) -> Result<(Vec<MetadataEntry>, String, String, bool)> {
    let name = c.name.trim_start_matches('/');
    let started = !c.state.running;
    if started {
        reporter.phase("create", &format!("starting {name}"));
        match c.label(den_driver::compose::PROJECT_LABEL) {
            Some(project) => project::start_project(docker, project)?,
            None => docker.start(name)?,
        }
    }
    if let Some(folder) = c.label(project::FOLDER_LABEL) {
        plan.resolved.workspace_folder = folder.to_string();
    }
    Ok((container_metadata(c), c.config.image.clone(), c.config.user.clone(), started))
}

/// Takes over the container an interrupted `up` made (its `docker run`
/// went on after den was gone): it was made from this configuration, and
/// what that `up` did not do (the record, the agent, setup and hooks) is
/// done now, as after a fresh `docker run`.
fn adopt(
    den: &Den,
    docker: &Docker,
    c: &Container,
    plan: &mut Plan,
    reporter: &mut dyn Reporter,
) -> Result<(Vec<MetadataEntry>, String, String, bool)> {
    check_owner(den, &plan.id, c, true)?;
    reporter
        .phase("create", &format!("adopting container {} left by an interrupted up", c.name.trim_start_matches('/')));
    take_existing(docker, c, plan, reporter)
}

/// The image metadata recorded on an existing container.
fn container_metadata(c: &Container) -> Vec<MetadataEntry> {
    let all = c
        .label("devcontainer.metadata")
        .and_then(|t| den_devcontainer::parse_metadata_label(t).ok())
        .unwrap_or_default();
    let n = c.label(IMAGE_ENTRIES_LABEL).and_then(|n| n.parse().ok()).unwrap_or(all.len().saturating_sub(1));
    all.into_iter().take(n).collect()
}

/// What a container on this machine's engine and a compose project share
/// on the way up: the provider's engine, the container den looks for, and
/// how the agent gets in.
pub(crate) struct Engine {
    pub docker: Docker,
    pub options: IndexMap<String, ResolvedOption>,
    agent_paths: Vec<String>,
    inactivity_timeout: String,
    credentials: den_protocol::Credentials,
    /// den's container (a compose project's workspace service).
    pub name: String,
    /// The container found, until `create` takes it.
    pub container: Option<Container>,
    /// A container and no record: an `up` was stopped after its `docker run`.
    adopting: bool,
    /// The configuration merged with the image's metadata, once known.
    pub merged: MergedConfig,
}

impl Engine {
    pub(crate) fn credentials(&self) -> den_protocol::Credentials {
        self.credentials
    }

    /// The folder of den's binary a new container mounts: none when the
    /// provider names a path for the agent.
    pub(crate) fn agent_mount(&self, den: &Den, reporter: &mut dyn Reporter) -> Option<AgentMount> {
        let mounted = self.agent_paths.first().is_some_and(|p| p.starts_with('@'));
        mounted.then(|| agent_mount::for_new_container(den, &self.docker, reporter)).flatten()
    }

    /// The provider with its options and DevPod's variables, as for the
    /// other backends; its exec.init runs once per set of option values.
    pub(crate) fn open(den: &Den, plan: &Plan) -> Result<Engine> {
        let subject = crate::exec::workspace_subject(den, &plan.id, plan.folder.clone());
        let run = crate::exec::run_given(den, &plan.entry, &plan.ws_options, &plan.globals, &subject)?;
        crate::exec::init(den, &run)?;
        let options = run.options;
        let timeout = den_provider::expand_options(plan.container_inactivity_timeout(), &options);
        Ok(Engine {
            docker: docker_for(&plan.entry, &options),
            agent_paths: agent_candidates(&plan.entry, &options),
            inactivity_timeout: if timeout.contains("${") { String::new() } else { timeout },
            credentials: credentials_of(&plan.entry.manifest, &options),
            options,
            name: container_name(den, &plan.id),
            container: None,
            adopting: false,
            merged: MergedConfig::default(),
        })
    }

    /// Looks for the workspace's container, and refuses one that is not
    /// this workspace's.
    pub(crate) fn look(&mut self, den: &Den, plan: &Plan, opts: &UpOptions) -> Result<()> {
        let container = self.docker.inspect_container(&self.name).map_err(|e| engine_hint(plan, e))?;
        self.adopting = container.is_some() && plan.record.is_none() && !opts.reset && !opts.recreate;
        if let Some(c) = &container {
            check_owner(den, &plan.id, c, self.adopting)?;
        }
        self.container = container;
        Ok(())
    }

    /// The container found, adopted or started: its metadata, image and
    /// user. `None`: there is none to take.
    pub(crate) fn take(
        &mut self,
        den: &Den,
        plan: &mut Plan,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Option<(Vec<MetadataEntry>, String, String)>> {
        let Some(c) = self.container.take() else { return Ok(None) };
        let (meta, image, user, started) = if self.adopting {
            made.created = true;
            adopt(den, &self.docker, &c, plan, reporter)?
        } else {
            take_existing(&self.docker, &c, plan, reporter)?
        };
        made.started = started && !made.created;
        Ok(Some((meta, image, user)))
    }

    /// What the record learns once the container is there.
    pub(crate) fn describe(
        &mut self,
        plan: &Plan,
        rec: &mut WorkspaceRecord,
        made: (Vec<MetadataEntry>, String, String),
    ) {
        let (meta, image, container_user) = made;
        self.merged = crate::plan::merge(&plan.resolved, &meta);
        rec.container_name = self.name.clone();
        rec.image = image;
        rec.remote_user = self
            .merged
            .remote_user
            .clone()
            .or_else(|| self.merged.container_user.clone())
            .or_else(|| Some(container_user).filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "root".into());
        rec.workspace_folder = plan.resolved.workspace_folder.clone();
        rec.set_from_config(&self.merged, &plan.resolved.config);
    }

    /// The agent into the container and its setup, in one exec.
    pub(crate) fn setup(
        &self,
        den: &Den,
        plan: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup> {
        let req = SetupRequest {
            authorized_key: authorized_key(den, opts, &plan.id)?,
            inactivity_timeout: self.inactivity_timeout.clone(),
            credentials: rec.credentials,
            ..setup_request(&plan.id, &plan.resolved, &self.merged, rec.remote_user.clone(), plan.folder_owner()?)
        };
        reporter.phase("inject", "");
        let run = match self.setup_on_line(den, plan, &req, reporter) {
            Some(run) => run?,
            None => inject_and_setup(&self.docker, &self.name, &self.agent_paths, &req, reporter)?,
        };
        rec.agent_path = run.agent_path.clone();
        Ok(sequence::setup_of(run.result, rec, run.uploaded))
    }

    /// The same inject script and setup over an SSH session on the direct
    /// line (docs/line.md), when the workspace has a record and its agent
    /// answers there with the pinned host key: no exec. `None`: take the
    /// exec.
    fn setup_on_line(
        &self,
        den: &Den,
        plan: &Plan,
        req: &SetupRequest,
        reporter: &mut dyn Reporter,
    ) -> Option<Result<crate::inject::AgentRun<den_protocol::SetupResult>>> {
        plan.record.as_ref()?;
        let stream = crate::ssh::direct_at(&plan.id, Some(&crate::line::folder(den, &plan.id)))?;
        let (key, host_key) = crate::ssh::keys(den, &plan.id).ok()?;
        let script = crate::inject::inject_command(&self.agent_paths, "setup").ok()?;
        let command = format!("{}=pid1 {script}", den_protocol::CONTAINER_ENV_SWITCH);
        match crate::line::run(stream, key, host_key, "root", crate::line::Program::Command(command)) {
            Ok(remote) => {
                Some(crate::inject::run_agent_on_line(remote, Some(crate::inject::setup_feed(req)), reporter))
            }
            Err(e) => {
                crate::ssh::said_direct_failed(&plan.id, &e);
                None
            }
        }
    }
}

/// `up` of a container on this machine's engine (docker, podman).
pub(crate) struct LocalUp {
    engine: Engine,
    /// A new container's image, made before anything is removed.
    prepared: Option<(String, den_driver::Image)>,
}

impl UpSteps for LocalUp {
    fn open(den: &Den, plan: &Plan, _opts: &UpOptions, _reporter: &mut dyn Reporter) -> Result<Self> {
        Ok(LocalUp { engine: Engine::open(den, plan)?, prepared: None })
    }

    fn credentials(&self, _plan: &Plan) -> den_protocol::Credentials {
        self.engine.credentials()
    }

    fn prepare(&mut self, den: &Den, plan: &mut Plan, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<()> {
        let e = &mut self.engine;
        let early = early_image_inspect(plan, &e.docker);
        e.look(den, plan, opts)?;
        // A new container's image is made first: a build that fails leaves
        // the old container as it was.
        if opts.reset || opts.recreate || e.container.is_none() {
            let prebuild = plan.prebuild.as_ref();
            let inspected = early.and_then(|h| h.join().ok().flatten());
            self.prepared = Some(prepare_image(
                den,
                &e.docker,
                &plan.resolved,
                &e.name,
                opts.lockfile,
                prebuild,
                inspected,
                reporter,
            )?);
        }
        if opts.reset || opts.recreate {
            if e.container.take().is_some() {
                let why = if opts.reset { "--reset" } else { "--recreate" };
                reporter.phase("create", &format!("removing the old container ({why})"));
                e.docker.remove(&e.name)?;
            }
        }
        if opts.reset {
            crate::record::remove_dir(&den.home.workspace_dir(&den.context, &plan.id))?;
            plan.record = None;
        }
        Ok(())
    }

    fn record_first(&self) -> bool {
        false
    }

    fn create(
        &mut self,
        den: &Den,
        plan: &mut Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<Made> {
        let mut made = Made::default();
        let found = match self.engine.take(den, plan, &mut made, reporter)? {
            Some(found) => found,
            None => {
                let ran = self.run_container(den, plan, opts, &mut made, reporter);
                if ran.is_err() && plan.record.is_none() {
                    crate::line::forget(den, &plan.id);
                }
                ran?
            }
        };
        self.engine.describe(plan, rec, found);
        Ok(made)
    }

    fn setup(
        &mut self,
        den: &Den,
        plan: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        _made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup> {
        self.engine.setup(den, plan, opts, rec, reporter)
    }
}

impl LocalUp {
    /// A new container from the image (made now if `prepare` did not);
    /// one an interrupted `up` made meanwhile under the name is adopted.
    fn run_container(
        &mut self,
        den: &Den,
        plan: &mut Plan,
        opts: &UpOptions,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<(Vec<MetadataEntry>, String, String)> {
        let e = &self.engine;
        let (image, info) = match self.prepared.take() {
            Some(p) => p,
            None => prepare_image(
                den,
                &e.docker,
                &plan.resolved,
                &e.name,
                opts.lockfile,
                plan.prebuild.as_ref(),
                None,
                reporter,
            )?,
        };
        let meta = image_metadata(&info)?;
        let merged = crate::plan::merge(&plan.resolved, &meta);
        let name = &e.name;
        reporter.phase("create", &format!("container {name} from {image}"));
        made.created = true;
        let agent = e.agent_mount(den, reporter);
        let line = crate::line::for_new_container(den, &plan.id, &e.docker)?.map(|d| crate::line::docker_arg(&d));
        let (resolved, home) = (&plan.resolved, home_tag(den));
        if create_container(&e.docker, &home, name, &plan.id, resolved, &image, &meta, &merged, agent.as_ref(), line)? {
            let user = merged.container_user.clone().unwrap_or(info.config.user.clone());
            return Ok((meta, image, user));
        }
        let c = e.docker.inspect_container(name)?.ok_or_else(|| {
            WorkspaceError::Conflict(format!("container {name} was in use and is gone again; run `den up` again"))
        })?;
        let (meta, image, user, _) = adopt(den, &e.docker, &c, plan, reporter)?;
        Ok((meta, image, user))
    }
}

/// An engine den cannot reach, or a CLI that is not there, often comes from
/// an option value: the error says where DOCKER_HOST or DOCKER_PATH came
/// from.
fn engine_hint(plan: &Plan, e: den_driver::DriverError) -> WorkspaceError {
    use den_driver::DriverError::{CliMissing, EngineUnreachable};
    let key = match &e {
        EngineUnreachable { .. } => "DOCKER_HOST",
        CliMissing(_) => "DOCKER_PATH",
        _ => return e.into(),
    };
    match plan.option_origin(key) {
        Some(hint) => WorkspaceError::Hinted { source: Box::new(e.into()), hint },
        None => e.into(),
    }
}

/// Builds (or fetches) the workspace's image without starting anything.
pub(crate) fn build(den: &Den, plan: &Plan, reporter: &mut dyn Reporter) -> Result<String> {
    let resolved_options = providers::resolve_given(den, &plan.entry, &plan.given_options(), Some(&plan.id))?;
    let docker = docker_for(&plan.entry, &resolved_options);
    let name = container_name(den, &plan.id);
    let (image, _) =
        prepare_image(den, &docker, &plan.resolved, &name, LockMode::Write, plan.prebuild.as_ref(), None, reporter)?;
    plan.save_globals(den)?;
    Ok(image)
}

pub(crate) fn status(den: &Den, r: &WorkspaceRecord) -> Result<Status> {
    let docker = docker_of(den, r)?;
    Ok(match docker.inspect_container(&r.container_name)? {
        Some(c) if c.state.running => Status::Running,
        Some(_) => Status::Stopped,
        None => Status::NotFound,
    })
}

pub(crate) fn stop(den: &Den, r: &WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
    let docker = docker_of(den, r)?;
    match docker.inspect_container(&r.container_name)? {
        Some(c) if c.label(den_driver::compose::PROJECT_LABEL).is_some() => {
            let project = c.label(den_driver::compose::PROJECT_LABEL).unwrap_or_default().to_string();
            project::stop(&docker, &c, &project)
        }
        Some(c) if c.state.running => Ok(docker.stop(&r.container_name)?),
        Some(_) => Ok(()),
        None => {
            reporter.line(&format!("{}; nothing to stop", container_gone(r)));
            Ok(())
        }
    }
}

/// What den says of a workspace whose container was removed outside den.
fn container_gone(r: &WorkspaceRecord) -> String {
    format!(
        "workspace `{}` has no container any more ({} was removed outside den); `den up {}` makes it again",
        r.id, r.container_name, r.id
    )
}

/// Removes the container and the image den built for it. With no record
/// (a container den lost track of), the context's default provider's
/// engine is asked. With `force`, engine errors become warnings.
pub(crate) fn delete(
    den: &Den,
    id: &str,
    record: Option<&WorkspaceRecord>,
    force: bool,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let name = record.map(|r| r.container_name.clone()).unwrap_or_else(|| container_name(den, id));
    let docker = match record {
        Some(r) => docker_of(den, r),
        None => {
            let entry = providers::get(den, &providers::default_provider(den)?)?;
            let opts = providers::resolve(den, &entry, &Default::default(), Some(id))?;
            Ok(docker_for(&entry, &opts))
        }
    };
    let engine = docker.and_then(|d| {
        // A container of the same name that another DEN_HOME made is not ours.
        let tag = home_tag(den);
        let c = d.inspect_container(&name)?.filter(|c| c.label("den.home").is_none_or(|h| h == tag));
        // A compose workspace: its whole project (named volumes only with
        // --force), even when its own container is gone already.
        let project = project::project_name(den, id);
        let is_compose = match &c {
            Some(c) => c.label(den_driver::compose::PROJECT_LABEL).is_some(),
            None => !project::project_containers(&d, &project)?.is_empty(),
        };
        if record.is_none() && c.is_none() && !is_compose {
            return Err(WorkspaceError::NotFound(id.into()));
        }
        if is_compose {
            project::remove_project(&d, &project, force)?;
        } else if c.is_some() {
            d.remove(&name)?;
        }
        // The image den built for this workspace, if any; one another
        // workspace still uses is kept by the engine itself.
        let built = format!("{name}:latest");
        if d.inspect_image(&built)?.is_some() {
            let _ = d.run_cmd(d.cmd().args(["rmi", &built]));
        }
        Ok(())
    });
    match engine {
        Ok(()) => {}
        Err(e @ WorkspaceError::NotFound(_)) => return Err(e),
        Err(e) if !force => return Err(e),
        Err(e) => reporter.line(&format!("warning: {e}; removing den's record anyway (--force)")),
    }
    Ok(())
}

/// The output of a compose workspace's service.
pub(crate) fn service_logs(den: &Den, r: &WorkspaceRecord, service: &str) -> Result<String> {
    let docker = docker_of(den, r)?;
    let project = project::project_name(den, &r.id);
    let Some(id) = project::service_container(&docker, &project, service)? else {
        return Err(WorkspaceError::Missing(format!(
            "workspace `{}` has no container of a compose service `{service}`",
            r.id
        )));
    };
    let out = docker.cmd().args(["logs", &id]).output().map_err(|e| docker.error(e))?;
    Ok(format!("{}{}", out.stdout, out.stderr))
}

/// The agent's log (setup and hook output) from inside the container.
pub(crate) fn logs(den: &Den, r: &WorkspaceRecord) -> Result<String> {
    let id = &r.id;
    let docker = docker_of(den, r)?;
    let c = docker.inspect_container(&r.container_name)?.ok_or_else(|| WorkspaceError::Missing(container_gone(r)))?;
    let paths = [format!("{}/agent.log", den_protocol::DATA_DIR), "/tmp/den/agent.log".to_string()];
    if c.state.running {
        let script = format!("cat {} 2>/dev/null || cat {} 2>/dev/null || true", paths[0], paths[1]);
        let out =
            docker.run_cmd(docker.exec(&r.container_name, Some("0"), &["/bin/sh".into(), "-c".into(), script]))?;
        return Ok(out);
    }
    // A stopped container cannot exec; copy the file out instead.
    let tmp = std::env::temp_dir().join(format!("den-logs-{}-{id}", std::process::id()));
    let _ = std::fs::create_dir_all(&tmp);
    let mut text = String::new();
    for p in &paths {
        let dest = tmp.join("agent.log");
        if docker.run_cmd(docker.cmd().args(["cp", &format!("{}:{p}", r.container_name)]).arg(&dest)).is_ok() {
            text = std::fs::read_to_string(&dest).unwrap_or_default();
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(text)
}

/// A workspace's status for `den list`, from one `docker ps` per engine.
/// An engine that cannot be reached is an error (for this row and every
/// other of that engine); other failures show the workspace as `NotFound`.
pub(crate) fn list_status(
    den: &Den,
    r: &WorkspaceRecord,
    by_engine: &mut HashMap<String, std::result::Result<HashMap<String, bool>, String>>,
) -> Result<Status> {
    let Ok(d) = docker_of(den, r) else { return Ok(Status::NotFound) };
    let key = format!("{}|{:?}", d.path, d.env);
    let running = by_engine.entry(key).or_insert_with(|| match running_map(&d) {
        Ok(m) => Ok(m),
        Err(WorkspaceError::Driver(
            e @ (den_driver::DriverError::EngineUnreachable { .. } | den_driver::DriverError::CliMissing(_)),
        )) => Err(e.to_string()),
        Err(_) => Ok(HashMap::new()),
    });
    let running = running.as_ref().map_err(|e| WorkspaceError::Unreachable(e.clone()))?;
    Ok(match running.get(&r.container_name) {
        Some(true) => Status::Running,
        Some(false) => Status::Stopped,
        None => Status::NotFound,
    })
}

fn running_map(d: &Docker) -> Result<HashMap<String, bool>> {
    let out = d.run_cmd(d.cmd().args([
        "ps",
        "-a",
        "--filter",
        &format!("label={}", den_driver::WORKSPACE_LABEL),
        "--format",
        "{{.Names}}\t{{.State}}",
    ]))?;
    // docker prints `running`, podman `Up 3 minutes`.
    let running = |s: &str| s == "running" || s.starts_with("Up ");
    Ok(out.lines().filter_map(|l| l.split_once('\t')).map(|(n, s)| (n.to_string(), running(s))).collect())
}

/// `docker exec` of the container's SSH server.
pub(crate) fn tunnel_cmd(docker: &Docker, record: &WorkspaceRecord, workdir: Option<&str>) -> den_process::Cmd {
    docker.exec(&record.container_name, Some("0"), &super::ssh_server_argv(record, workdir))
}

/// The local backend's steps against a recording engine: a stand-in for the
/// docker CLI that writes down every call and answers from a small state
/// folder (the agent's part of the inject exec included), so the order of
/// engine calls each step makes is checked without an engine. The e2e suite
/// runs the same steps against a real dockerd.
#[cfg(test)]
mod recording_engine_tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::backend::sequence;

    /// The recording engine: `$STATE/log` gets one line per call; a
    /// container exists while `$STATE/container` holds its inspect JSON.
    const RECORDING_ENGINE: &str = r#"#!/bin/sh
state=$(dirname "$0")
echo "$1 $2" >> "$state/log"
case "$1" in
  inspect) if [ -f "$state/together" ]; then
             i=0; while [ ! -e "$state/imaged" ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done
             [ -e "$state/imaged" ] && echo "image inspected meanwhile" >> "$state/log"
           fi
           if [ -f "$state/container" ]; then cat "$state/container"; else echo "Error: No such object: $4" >&2; exit 1; fi ;;
  image) touch "$state/imaged"; echo '[{"Id":"sha256:1","Config":{"User":"","Labels":{}}}]' ;;
  run) echo "[]" > "$state/container"; echo cid ;;
  start|rm) ;;
  exec) echo "DEN-HAVE /usr/local/bin/den"; echo "DEN-READY"; read -r req; echo "$req" > "$state/request"
        echo 'DEN-RESULT {"outcome":{"kind":"done"},"ran":["onCreateCommand"],"hostKey":""}' ;;
  *) echo "the recording engine does not know: $*" >&2; exit 9 ;;
esac
"#;

    struct Setup {
        den: Den,
        state: PathBuf,
        folder: PathBuf,
        _dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("engine");
        std::fs::create_dir_all(&state).unwrap();
        let engine = state.join("recording-engine");
        std::fs::write(&engine, RECORDING_ENGINE).unwrap();
        std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
        let folder = dir.path().join("p");
        std::fs::create_dir_all(folder.join(".devcontainer")).unwrap();
        std::fs::write(folder.join(".devcontainer/devcontainer.json"), r#"{"image": "img"}"#).unwrap();
        let den = Den { home: den_state::Home::at(dir.path().join("home")), context: "default".into() };
        Setup { den, state, folder, _dir: dir }
    }

    fn up(s: &Setup, opts: &UpOptions) -> Result<crate::UpResult> {
        let src = crate::Source { source: s.folder.clone(), ..Default::default() };
        let w = crate::plan::Identified { id: "w".into(), folder: s.folder.clone(), src, fetched: Default::default() };
        let record = WorkspaceRecord::load(&s.den, "w").unwrap();
        let mut plan = Plan::load(&s.den, &w, record).unwrap();
        let engine = s.state.join("recording-engine").display().to_string();
        plan.ws_options.insert("DOCKER_PATH".into(), engine);
        sequence::up::<LocalUp>(&s.den, &UpOptions { skip_initialize: true, ..opts.clone() }, plan, &mut crate::Quiet)
    }

    /// The engine's calls since the last look.
    fn calls(state: &Path) -> Vec<String> {
        let log = state.join("log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    /// The container the engine now says it has.
    fn have_container(s: &Setup, running: bool, home: &str) {
        let c = serde_json::json!([{
            "Id": "cid", "Name": "/den-w", "Image": "sha256:1",
            "State": {"Running": running, "Status": if running { "running" } else { "exited" }},
            "Config": {"Image": "img", "User": "", "Labels": {"den.workspace": "w", "den.home": home}},
        }]);
        std::fs::write(s.state.join("container"), c.to_string()).unwrap();
    }

    #[test]
    fn a_new_container_is_looked_for_imaged_run_then_set_up() {
        let s = setup();
        let r = up(&s, &UpOptions::default()).unwrap();
        // The image's inspect runs beside the look for the container.
        let mut calls = calls(&s.state);
        calls[..2].sort();
        assert_eq!(calls, ["image inspect", "inspect --type", "run -d", "exec -i"]);
        assert!(r.created && !r.started && r.hooks_ran == ["onCreateCommand"]);
        let rec = WorkspaceRecord::load(&s.den, "w").unwrap().unwrap();
        assert_eq!((rec.container_name.as_str(), rec.image.as_str()), ("den-w", "img"));
        assert_eq!(rec.agent_path, "/usr/local/bin/den");
        let req: den_protocol::SetupRequest =
            serde_json::from_str(&std::fs::read_to_string(s.state.join("request")).unwrap()).unwrap();
        assert_eq!((req.workspace_id.as_str(), req.remote_user.as_str()), ("w", "root"));
    }

    #[test]
    fn a_first_up_inspects_the_image_while_it_looks_for_the_container() {
        let s = setup();
        // The engine's container inspect waits (up to 2 s) for the image's.
        std::fs::write(s.state.join("together"), "").unwrap();
        up(&s, &UpOptions::default()).unwrap();
        assert!(calls(&s.state).contains(&"image inspected meanwhile".to_string()));
    }

    #[test]
    fn a_stopped_container_is_started_and_nothing_is_made() {
        let s = setup();
        up(&s, &UpOptions::default()).unwrap();
        calls(&s.state);
        have_container(&s, false, &home_tag(&s.den));
        let r = up(&s, &UpOptions::default()).unwrap();
        assert_eq!(calls(&s.state), ["inspect --type", "start den-w", "exec -i"]);
        assert!(r.started && !r.created);
    }

    #[test]
    fn recreate_builds_first_then_replaces_the_container() {
        let s = setup();
        up(&s, &UpOptions::default()).unwrap();
        have_container(&s, true, &home_tag(&s.den));
        calls(&s.state);
        up(&s, &UpOptions { recreate: true, ..Default::default() }).unwrap();
        assert_eq!(calls(&s.state), ["inspect --type", "image inspect", "rm -f", "run -d", "exec -i"]);
    }

    #[test]
    fn a_container_of_another_den_home_is_refused_before_anything_is_made() {
        let s = setup();
        have_container(&s, true, "another-home");
        let e = up(&s, &UpOptions::default()).unwrap_err();
        assert!(e.to_string().contains("another den state folder"), "{e}");
        // Only looks (the image's inspect may run beside the container's).
        let calls = calls(&s.state);
        assert!(calls.iter().all(|c| c == "inspect --type" || c == "image inspect"), "{calls:?}");
        assert!(calls.contains(&"inspect --type".to_string()));
        assert!(WorkspaceRecord::load(&s.den, "w").unwrap().is_none());
    }
}
