//! `den up` and `den build`.

use std::path::{Path, PathBuf};

use den_agent::protocol::{Credentials, Hooks, SetupRequest};
use den_devcontainer::{DevContainer, MergedConfig, MetadataEntry, Resolved};
use den_driver::{BuildSpec, Container, Docker, RunSpec, WORKSPACE_LABEL};
use den_provider::ResolvedOption;
use indexmap::IndexMap;

use crate::inject::{inject_and_setup, DEFAULT_AGENT_PATHS};
use crate::providers::{self, ProviderEntry};
use crate::record::{now, Origin, WorkspaceRecord};
use crate::{id, Den, DenConfig, Reporter, Result, WorkspaceError};

/// The label that says how many entries of `devcontainer.metadata` came
/// from the image (the rest is the local config at creation time).
const IMAGE_ENTRIES_LABEL: &str = "den.metadata.image-entries";

/// The label that says which den state (DEN_HOME) a container belongs to.
const HOME_LABEL: &str = "den.home";

/// A short, stable name for a DEN_HOME, for the `den.home` label.
pub(crate) fn home_tag(den: &Den) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(den.home.root().as_os_str().as_encoded_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub workspace: Source,
    /// Make a new container (rebuilding the image), keeping the workspace.
    pub recreate: bool,
    /// Like `recreate`, and forget everything den made for the workspace.
    pub reset: bool,
    /// The ssh config file to write the `Host ID.den` block to (`None`:
    /// write none).
    pub ssh_config: Option<PathBuf>,
    /// Machine providers: the machine to use (default: one of its own,
    /// named like the workspace).
    pub machine: Option<String>,
    /// The public key that may log in (default: the workspace's own key in
    /// DEN_HOME). The agent on a machine gets the client's key this way.
    pub authorized_key: Option<String>,
    /// Do not run initializeCommand (the agent on a machine: it ran where
    /// the user is).
    pub skip_initialize: bool,
    /// Overrides the provider's `agent.injectGitCredentials` and
    /// `injectDockerCredentials` (the agent on a machine gets the client's
    /// provider's values this way).
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone)]
pub struct UpResult {
    pub record: WorkspaceRecord,
    /// A new container was made.
    pub created: bool,
    /// A stopped container was started.
    pub started: bool,
    pub uploaded_agent: bool,
    pub hooks_ran: Vec<String>,
    /// The workspace's SSH host key (OpenSSH format).
    pub host_key: String,
}

/// Which workspace: its folder, and how to read and place it.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub source: PathBuf,
    pub id: Option<String>,
    pub devcontainer_path: Option<PathBuf>,
    pub provider: Option<String>,
    pub provider_options: Vec<(String, String)>,
    pub fallback_image: Option<String>,
}

/// The container (and built image) name of a workspace.
pub(crate) fn container_name(den: &Den, id: &str) -> String {
    if den.context == "default" {
        format!("den-{id}")
    } else {
        format!("den-{}-{id}", id::normalize(&den.context))
    }
}

/// The driver for a provider: providers that run containers on the local
/// (or a DOCKER_HOST) engine through a docker-compatible CLI.
pub(crate) fn docker_for(entry: &ProviderEntry, opts: &IndexMap<String, ResolvedOption>) -> Result<Docker> {
    let m = &entry.manifest;
    let driver = den_provider::expand_options(&m.agent.driver, opts);
    if m.is_machine_provider() || !m.agent.local.is_true_or(false) || !(driver.is_empty() || driver == "docker") {
        return Err(WorkspaceError::Unsupported(format!(
            "provider `{}` does not run containers on this machine's engine; `den build` works with local docker-compatible providers (`den up` builds where the provider runs)",
            entry.name
        )));
    }
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
    Ok(Docker::new(path, env))
}

/// Where the provider wants the agent, then den's defaults.
fn agent_candidates(entry: &ProviderEntry, opts: &IndexMap<String, ResolvedOption>) -> Vec<String> {
    let mut v = Vec::new();
    let p = den_provider::expand_options(&entry.manifest.agent.path, opts);
    if !p.trim().is_empty() && !p.contains("${") {
        v.push(p);
    }
    for d in DEFAULT_AGENT_PATHS {
        if !v.iter().any(|x| x == d) {
            v.push(d.to_string());
        }
    }
    v
}

/// The provider's `agent.injectGitCredentials` and
/// `injectDockerCredentials`: each on unless it says false.
pub(crate) fn credentials_of(entry: &ProviderEntry, opts: &IndexMap<String, ResolvedOption>) -> Credentials {
    let on =
        |b: &den_provider::StrBool| den_provider::StrBool(den_provider::expand_options(&b.0, opts)).is_true_or(true);
    Credentials {
        git: on(&entry.manifest.agent.inject_git_credentials),
        docker: on(&entry.manifest.agent.inject_docker_credentials),
    }
}

/// The project's configuration, or the fallback image's when it has none.
pub(crate) fn load_config(folder: &Path, devcontainer_path: Option<&Path>, fallback: &str) -> Result<Resolved> {
    let env = |name: &str| std::env::var(name).ok();
    match den_devcontainer::find_config(folder, devcontainer_path) {
        Ok(file) => {
            let loaded = den_devcontainer::load(&file)?;
            Ok(den_devcontainer::resolve(&loaded, folder, &env))
        }
        Err(den_devcontainer::ConfigError::NotFound { .. }) if devcontainer_path.is_none() => {
            let text = serde_json::json!({ "image": fallback }).to_string();
            let loaded = den_devcontainer::load_str(&text, &folder.join(".devcontainer.json"))?;
            let mut r = den_devcontainer::resolve(&loaded, folder, &env);
            r.config_file = PathBuf::new();
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn check_supported(cfg: &DevContainer, reporter: &mut dyn Reporter) -> Result<()> {
    if cfg.docker_compose_file.is_some() {
        return Err(WorkspaceError::Unsupported(
            "this configuration uses dockerComposeFile; den does not drive docker compose yet (use an image or a Dockerfile)"
                .into(),
        ));
    }
    if cfg.image.is_none()
        && cfg.build.as_ref().and_then(|b| b.dockerfile.as_ref()).is_none()
        && cfg.docker_file.is_none()
    {
        return Err(WorkspaceError::Invalid(
            "the configuration names no container: set \"image\" or \"build\": {\"dockerfile\": …}".into(),
        ));
    }
    if let Some(f) = cfg.features.as_ref().filter(|f| !f.is_empty()) {
        let names: Vec<&str> = f.keys().map(String::as_str).collect();
        reporter.line(&format!("note: den does not install dev container features yet; skipped: {}", names.join(", ")));
    }
    Ok(())
}

fn canonical_folder(source: &Path) -> Result<PathBuf> {
    let folder = std::fs::canonicalize(source).map_err(WorkspaceError::io(format!("reading {}", source.display())))?;
    if !folder.is_dir() {
        return Err(WorkspaceError::Invalid(format!("{} is not a folder", folder.display())));
    }
    Ok(folder)
}

/// Builds the image of a Dockerfile config, or makes sure the image is
/// there. Returns the image reference and its inspect data.
fn prepare_image(
    docker: &Docker,
    resolved: &Resolved,
    tag: &str,
    reporter: &mut dyn Reporter,
) -> Result<(String, den_driver::Image)> {
    let cfg = &resolved.config;
    let dockerfile = cfg.build.as_ref().and_then(|b| b.dockerfile.clone()).or_else(|| cfg.docker_file.clone());
    let Some(dockerfile) = dockerfile else {
        let image = cfg.image.clone().expect("checked");
        reporter.phase("build", &format!("image {image}"));
        let info = docker.ensure_image(&image)?;
        return Ok((image, info));
    };
    let dir = resolved.config_dir();
    let build = cfg.build.clone().unwrap_or_default();
    let context = build.context.clone().or_else(|| cfg.context.clone()).unwrap_or_else(|| ".".into());
    let image = format!("{tag}:latest");
    reporter.phase("build", &format!("building {image} from {dockerfile}"));
    let log = std::env::temp_dir().join(format!("{tag}-build.log"));
    let spec = BuildSpec {
        tag: image.clone(),
        dockerfile: dir.join(&dockerfile),
        context: dir.join(&context),
        args: build.args.clone().unwrap_or_default().into_iter().collect(),
        target: build.target.clone(),
        cache_from: build.cache_from.as_ref().map(|c| c.to_vec()).unwrap_or_default(),
        options: build.options.clone().unwrap_or_default(),
        labels: vec![],
        log,
    };
    docker.build(&spec)?;
    let info = docker
        .inspect_image(&image)?
        .ok_or_else(|| WorkspaceError::Agent(format!("{image} vanished after its build")))?;
    Ok((image, info))
}

fn image_metadata(image: &den_driver::Image) -> Result<Vec<MetadataEntry>> {
    match image.label("devcontainer.metadata") {
        Some(text) => den_devcontainer::parse_metadata_label(text)
            .map_err(|e| WorkspaceError::Invalid(format!("image {}: {e}", image.id))),
        None => Ok(vec![]),
    }
}

/// Creates the container for a workspace.
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
) -> Result<()> {
    let cfg = &resolved.config;
    let mut label_entries: Vec<serde_json::Value> =
        meta.iter().map(|m| serde_json::to_value(m).unwrap_or_default()).collect();
    label_entries.push(resolved.label_entry());
    let mut mounts: Vec<String> = resolved.workspace_mount.iter().cloned().collect();
    mounts.extend(merged.mounts.iter().map(|m| m.to_docker_arg()));
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
    if let Err(e) = docker.run(&spec) {
        // `docker run` can fail after creating the container (a bad mount,
        // a bad runArg): leave nothing behind.
        let _ = docker.remove(name);
        return Err(e.into());
    }
    Ok(())
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

pub(crate) fn run_initialize_command(resolved: &Resolved, reporter: &mut dyn Reporter) -> Result<()> {
    let Some(cmd) = resolved.config.initialize_command.as_ref().filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    reporter.phase("hooks", "initializeCommand (on this machine)");
    let handles: Vec<_> = cmd
        .steps()
        .into_iter()
        .map(|(name, step)| {
            let label = name.map(|n| format!("initializeCommand:{n}")).unwrap_or_else(|| "initializeCommand".into());
            let argv = step.argv();
            let c = den_process::Cmd::new(&argv[0]).args(&argv[1..]).current_dir(&resolved.local_folder);
            (label, std::thread::spawn(move || c.output()))
        })
        .collect();
    let mut failure = None;
    for (label, h) in handles {
        match h.join().expect("initializeCommand runner") {
            Ok(out) => {
                for l in out.stdout.lines().chain(out.stderr.lines()) {
                    reporter.line(&format!("[{label}] {l}"));
                }
            }
            Err(e) => {
                for l in e.stderr().lines() {
                    reporter.line(&format!("[{label}] {l}"));
                }
                failure.get_or_insert(WorkspaceError::HookFailed { hook: label, code: e.code().unwrap_or(1) });
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

pub(crate) fn hooks_of(m: &MergedConfig) -> Hooks {
    Hooks {
        on_create_command: m.on_create_commands.clone(),
        update_content_command: m.update_content_commands.clone(),
        post_create_command: m.post_create_commands.clone(),
        post_start_command: m.post_start_commands.clone(),
        post_attach_command: m.post_attach_commands.clone(),
    }
}

struct Prepared {
    folder: PathBuf,
    id: String,
    entry: ProviderEntry,
    ws_options: IndexMap<String, String>,
    docker: Docker,
    resolved: Resolved,
    agent_paths: Vec<String>,
    devcontainer_path: Option<PathBuf>,
    /// The provider's containerInactivityTimeout (e.g. `10m`), expanded.
    inactivity_timeout: String,
    /// The provider's injectGitCredentials, expanded (default: yes).
    credentials: Credentials,
}

/// The provider: the one asked for, else the workspace's, else the
/// context's default.
fn pick_provider(den: &Den, src: &Source, record: Option<&WorkspaceRecord>) -> Result<ProviderEntry> {
    let name = match (&src.provider, record) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) => r.provider.clone(),
        (None, None) => providers::default_provider(den)?,
    };
    providers::get(den, &name)
}

fn prepare(den: &Den, src: &Source, reporter: &mut dyn Reporter) -> Result<(Prepared, Option<WorkspaceRecord>)> {
    let folder = canonical_folder(&src.source)?;
    let id = match &src.id {
        Some(i) => i.clone(),
        None => crate::workspace_id_for(&folder),
    };
    id::validate(&id).map_err(WorkspaceError::Invalid)?;
    let record = WorkspaceRecord::load(den, &id)?;
    if let Some(r) = &record {
        if r.local_folder != folder {
            return Err(WorkspaceError::Invalid(format!(
                "workspace `{id}` already belongs to {}; choose another id with --id",
                r.local_folder.display()
            )));
        }
    }
    let entry = pick_provider(den, src, record.as_ref())?;
    let ws_options = providers::workspace_options(den, &entry, record.as_ref(), &src.provider_options)?;
    let opts = providers::resolve(den, &entry, &ws_options, Some(&id))?;
    let docker = docker_for(&entry, &opts)?;
    let devcontainer_path =
        src.devcontainer_path.clone().or_else(|| record.as_ref().and_then(|r| r.devcontainer_path.clone()));
    let cfg = DenConfig::load(&den.home)?;
    let fallback = src.fallback_image.as_deref().unwrap_or(cfg.fallback_image());
    let resolved = load_config(&folder, devcontainer_path.as_deref(), fallback)?;
    check_supported(&resolved.config, reporter)?;
    let agent_paths = agent_candidates(&entry, &opts);
    let agent = &entry.manifest.agent;
    let timeout = if agent.container_inactivity_timeout.is_empty() {
        &agent.inactivity_timeout
    } else {
        &agent.container_inactivity_timeout
    };
    let inactivity_timeout = den_provider::expand_options(timeout, &opts);
    let inactivity_timeout = if inactivity_timeout.contains("${") { String::new() } else { inactivity_timeout };
    let credentials = credentials_of(&entry, &opts);
    Ok((
        Prepared {
            folder,
            id,
            entry,
            ws_options,
            docker,
            resolved,
            agent_paths,
            devcontainer_path,
            inactivity_timeout,
            credentials,
        },
        record,
    ))
}

/// Brings a workspace up: finds or makes its container, injects the agent,
/// runs setup and the lifecycle hooks that are due, records the workspace.
pub fn up(den: &Den, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<UpResult> {
    let src = &opts.workspace;
    reporter.phase("resolve", &src.source.display().to_string());
    let folder = canonical_folder(&src.source)?;
    let id = src.id.clone().unwrap_or_else(|| crate::workspace_id_for(&folder));
    id::validate(&id).map_err(WorkspaceError::Invalid)?;
    // The lock comes first: the record prepare reads is the one it guards.
    let _lock = den.lock_workspace(&id, reporter)?;
    let src = Source { source: folder, id: Some(id), ..src.clone() };
    if let Some(r) = other_driver_up(den, opts, &src, reporter)? {
        return Ok(r);
    }
    let (p, record) = prepare(den, &src, reporter)?;
    let docker = &p.docker;
    if !opts.skip_initialize {
        run_initialize_command(&p.resolved, reporter)?;
    }

    let name = container_name(den, &p.id);
    let mut container = docker.inspect_container(&name)?;
    if let Some(owner) = container.as_ref().and_then(|c| c.label(HOME_LABEL)) {
        if owner != home_tag(den) {
            return Err(WorkspaceError::Invalid(format!(
                "container {name} belongs to another den state folder (DEN_HOME); choose another id with --id"
            )));
        }
    }
    if opts.reset {
        if container.is_some() {
            reporter.phase("create", "removing the old container (--reset)");
            docker.remove(&name)?;
        }
        container = None;
        crate::record::remove_dir(&den.home.workspace_dir(&den.context, &p.id))?;
    } else if opts.recreate {
        if container.is_some() {
            reporter.phase("create", "removing the old container (--recreate)");
            docker.remove(&name)?;
        }
        container = None;
    }
    let record = if opts.reset { None } else { record };

    let (mut created, mut started) = (false, false);
    let (meta, image, container_user) = match &container {
        Some(c) => {
            if !c.state.running {
                reporter.phase("create", &format!("starting {name}"));
                docker.start(&name)?;
                started = true;
            }
            (container_metadata(c), c.config.image.clone(), c.config.user.clone())
        }
        None => {
            let (image, info) = prepare_image(docker, &p.resolved, &name, reporter)?;
            let meta = image_metadata(&info)?;
            let merged = den_devcontainer::merge(&meta, &p.resolved.config);
            reporter.phase("create", &format!("container {name} from {image}"));
            create_container(docker, &home_tag(den), &name, &p.id, &p.resolved, &image, &meta, &merged)?;
            created = true;
            let user = merged.container_user.clone().unwrap_or(info.config.user.clone());
            (meta, image, user)
        }
    };
    let merged = den_devcontainer::merge(&meta, &p.resolved.config);
    let remote_user = merged
        .remote_user
        .clone()
        .or_else(|| merged.container_user.clone())
        .or_else(|| Some(container_user).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "root".into());
    let (host_uid, host_gid) = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&p.folder).map_err(WorkspaceError::io(format!("reading {}", p.folder.display())))?;
        (m.uid(), m.gid())
    };

    // From here on a container exists: record it first, so that `den
    // delete` can always clean up, even if setup fails below.
    let origin = Origin {
        id: &p.id,
        provider: &p.entry.name,
        options: &p.ws_options,
        folder: &p.folder,
        devcontainer_path: p.devcontainer_path.as_ref(),
        config_file: &p.resolved.config_file,
    };
    let mut rec = WorkspaceRecord::for_up(record.as_ref(), den, origin);
    rec.container_name = name.clone();
    rec.image = image;
    rec.remote_user = remote_user.clone();
    rec.workspace_folder = p.resolved.workspace_folder.clone();
    rec.forward_ports = merged.forward_ports.clone();
    rec.credentials = opts.credentials.unwrap_or(p.credentials);
    if created || started || record.as_ref() != Some(&rec) {
        rec.last_used_at = now();
        rec.save(den)?;
    }

    let req = SetupRequest {
        authorized_key: authorized_key(den, opts, &p.id)?,
        inactivity_timeout: p.inactivity_timeout.clone(),
        credentials: rec.credentials,
        ..setup_request(&p.id, &p.resolved, &merged, remote_user, (host_uid, host_gid))
    };
    reporter.phase("inject", "");
    let run = inject_and_setup(docker, &name, &p.agent_paths, &req, reporter)?;
    if run.agent_path != rec.agent_path {
        rec.agent_path = run.agent_path.clone();
        rec.save(den)?;
    }
    let result = run.result;
    finish_setup(den, &mut rec, &result, opts.ssh_config.as_deref(), reporter)?;
    Ok(UpResult {
        record: rec,
        created,
        started,
        uploaded_agent: run.uploaded,
        hooks_ran: result.ran,
        host_key: result.host_key,
    })
}

/// After the agent's setup: pins its host key, writes the ssh config entry,
/// and turns a failed setup into the error den reports.
pub(crate) fn finish_setup(
    den: &Den,
    rec: &mut WorkspaceRecord,
    result: &den_agent::protocol::SetupResult,
    ssh_config: Option<&Path>,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    if !result.host_key.is_empty() {
        let user = result.user.as_ref().map(|u| u.name.clone()).unwrap_or_else(|| rec.remote_user.clone());
        crate::ssh::publish(den, rec, &result.host_key, &user, ssh_config)?;
    }
    if let Some(msg) = result.error.as_ref().filter(|m| !m.contains("failed with exit code")) {
        reporter.line(msg);
    }
    if !result.ok {
        return Err(match (result.hook.clone(), result.exit_code) {
            (Some(hook), Some(code)) => WorkspaceError::HookFailed { hook, code },
            _ => WorkspaceError::Agent(result.error.clone().unwrap_or_else(|| "setup failed".into())),
        });
    }
    Ok(())
}

/// The setup request for a container, from the merged configuration (the
/// caller adds the key, the timeout and the credentials choice).
pub(crate) fn setup_request(
    id: &str,
    resolved: &Resolved,
    merged: &MergedConfig,
    remote_user: String,
    host: (u32, u32),
) -> SetupRequest {
    SetupRequest {
        workspace_id: id.to_string(),
        workspace_folder: resolved.workspace_folder.clone(),
        remote_user,
        update_remote_user_uid: merged.update_remote_user_uid.unwrap_or(true),
        host_uid: host.0,
        host_gid: host.1,
        remote_env: merged.remote_env.clone(),
        user_env_probe: merged.user_env_probe,
        hooks: hooks_of(merged),
        started_at: String::new(),
        agent_path: String::new(),
        authorized_key: String::new(),
        inactivity_timeout: String::new(),
        credentials: Credentials::default(),
    }
}

/// The key that may log in: the one given, else the workspace's own.
pub(crate) fn authorized_key(den: &Den, opts: &UpOptions, id: &str) -> Result<String> {
    match &opts.authorized_key {
        Some(k) => Ok(k.clone()),
        None => den_ssh::keys::load_or_create(&crate::ssh::client_key_path(den, id))
            .map(|key| den_ssh::keys::public_openssh(key.public_key()))
            .map_err(|e| WorkspaceError::Agent(format!("making the workspace's SSH key: {e}"))),
    }
}

/// `up` through a remote provider or the kubernetes driver: `None` when
/// the provider uses the local docker driver.
fn other_driver_up(den: &Den, opts: &UpOptions, src: &Source, reporter: &mut dyn Reporter) -> Result<Option<UpResult>> {
    let id = src.id.clone().expect("set by up");
    let record = WorkspaceRecord::load(den, &id)?;
    let entry = pick_provider(den, src, record.as_ref())?;
    let kind = driver_kind(&entry);
    if kind == DriverKind::Docker {
        return Ok(None);
    }
    if let Some(r) = &record {
        if r.local_folder != src.source {
            return Err(WorkspaceError::Invalid(format!(
                "workspace `{id}` already belongs to {}; choose another id with --id",
                r.local_folder.display()
            )));
        }
        if r.provider != entry.name {
            return Err(WorkspaceError::Invalid(format!(
                "workspace `{id}` runs on provider `{}`; delete it first to move it to `{}`",
                r.provider, entry.name
            )));
        }
    }
    let ws_options = providers::workspace_options(den, &entry, record.as_ref(), &src.provider_options)?;
    let devcontainer_path =
        src.devcontainer_path.clone().or_else(|| record.as_ref().and_then(|r| r.devcontainer_path.clone()));
    let cfg = DenConfig::load(&den.home)?;
    let fallback = src.fallback_image.clone().unwrap_or_else(|| cfg.fallback_image().to_string());
    // Read here too: a bad config fails before any machine is touched, with
    // its position in the local file, and initializeCommand runs here.
    let resolved = load_config(&src.source, devcontainer_path.as_deref(), &fallback)?;
    check_supported(&resolved.config, reporter)?;
    run_initialize_command(&resolved, reporter)?;
    let p = Plan {
        folder: src.source.clone(),
        id,
        entry,
        record,
        ws_options,
        devcontainer_path,
        fallback_image: fallback,
        resolved,
    };
    match kind {
        DriverKind::Remote => crate::remote::up(den, opts, p, reporter).map(Some),
        _ => crate::kube::up(den, opts, p, reporter).map(Some),
    }
}

impl Plan {
    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin {
            id: &self.id,
            provider: &self.entry.name,
            options: &self.ws_options,
            folder: &self.folder,
            devcontainer_path: self.devcontainer_path.as_ref(),
            config_file: &self.resolved.config_file,
        }
    }
}

/// What `up` knows before a driver other than the local docker one takes
/// over.
pub(crate) struct Plan {
    pub folder: PathBuf,
    pub id: String,
    pub entry: ProviderEntry,
    pub record: Option<WorkspaceRecord>,
    pub ws_options: IndexMap<String, String>,
    pub devcontainer_path: Option<PathBuf>,
    pub fallback_image: String,
    pub resolved: Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DriverKind {
    /// Containers of this machine's (or DOCKER_HOST's) engine.
    Docker,
    /// Pods through kubectl.
    Kubernetes,
    /// Another machine, reached through the provider's `command`.
    Remote,
}

/// How a provider's workspaces are made.
pub(crate) fn driver_kind(entry: &ProviderEntry) -> DriverKind {
    let m = &entry.manifest;
    if m.is_machine_provider() || !m.agent.local.is_true_or(false) {
        DriverKind::Remote
    } else if m.agent.driver.trim() == "kubernetes" {
        DriverKind::Kubernetes
    } else {
        DriverKind::Docker
    }
}

/// Builds (or fetches) the workspace's image without starting anything.
/// Returns the image reference.
pub fn build(den: &Den, src: &Source, reporter: &mut dyn Reporter) -> Result<String> {
    reporter.phase("resolve", &src.source.display().to_string());
    let (p, _) = prepare(den, src, reporter)?;
    let name = container_name(den, &p.id);
    let (image, _) = prepare_image(&p.docker, &p.resolved, &name, reporter)?;
    Ok(image)
}
