//! What `up` knows before a backend takes over: the workspace's id and
//! folder, its record, its provider and options, and its configuration
//! read and substituted. Also the pieces every backend's `up` shares: the
//! setup request, and what happens after the agent answers.

use std::path::{Path, PathBuf};

use den_devcontainer::{DevContainer, MergedConfig, Resolved};
use den_protocol::{Credentials, Hooks, Outcome, SetupRequest};
use den_provider::ResolvedOption;
use indexmap::IndexMap;

use crate::providers::{self, ProviderEntry};
use crate::record::{Origin, WorkspaceRecord};
use crate::{id, Den, DenConfig, Reporter, Result, WorkspaceError};

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
    /// What to do with devcontainer-lock.json.
    pub lockfile: crate::features::LockMode,
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
    /// Where prebuilt images are looked for (and, for `build`, tagged and
    /// pushed); default: the context's PREBUILD_REPOSITORY option.
    pub prebuild: Option<crate::features::Prebuild>,
    /// A git repository or image instead of a local folder (`source` is
    /// then den's clone or empty folder for it).
    pub remote: Option<RemoteSource>,
    /// `--workspace-env`: variables for every session and hook (kept for
    /// the workspace; given again, they replace the kept ones).
    pub workspace_env: Vec<(String, String)>,
    /// `--devcontainer-image`: the image, whatever the configuration says.
    pub devcontainer_image: Option<String>,
    /// The environment of the git that clones a git SOURCE (den on a
    /// machine: the clone relay's helpers).
    pub git_env: Vec<(String, String)>,
}

/// The workspace a [`Source`] names once `up` (or `build`) has chosen its
/// id and, for a git or image SOURCE, fetched it under the workspace's
/// lock.
#[derive(Debug, Clone)]
pub(crate) struct Identified {
    pub id: String,
    /// The project folder, canonical: the user's, or den's clone or empty
    /// folder for a git or image SOURCE (where den's clone would be, for
    /// one cloned on the machine).
    pub folder: PathBuf,
    /// As the user gave it.
    pub src: Source,
    pub fetched: Fetched,
}

/// How a git or image SOURCE came (nothing, for a folder).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fetched {
    /// Where the files came from.
    pub info: Option<crate::record::SourceInfo>,
    /// A git SOURCE that den on the provider's machine clones (the
    /// configuration is read there, not here).
    pub clone_on_machine: bool,
    /// A git SOURCE cloned in the pod, into its volume (the folder holds
    /// a clone of the configuration only).
    pub clone_in_pod: bool,
    /// An image SOURCE: its image.
    pub image: Option<String>,
}

/// A SOURCE that is not a local folder, with how to clone it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    /// A git repository or an image.
    pub spec: den_source::Spec,
    pub strategy: den_source::Strategy,
    pub recursive_submodules: bool,
}

impl Source {
    /// The workspace a record describes, to bring it up again (`den ssh`
    /// and `den open` of a stopped workspace): its folder, or its git or
    /// image SOURCE (whose clone is there already, wherever it was made).
    pub fn of_record(rec: &WorkspaceRecord) -> Source {
        let remote = rec.source.as_ref().and_then(|s| match s.kind.as_str() {
            "git" => {
                let reference = if s.reference.is_empty() {
                    den_source::GitRef::Default
                } else if let Some(c) = s.reference.strip_prefix("sha256:") {
                    den_source::GitRef::Commit(c.to_string())
                } else if let Some(n) =
                    s.reference.strip_prefix("pull/").and_then(|r| r.strip_suffix("/head")).and_then(|n| n.parse().ok())
                {
                    den_source::GitRef::PullRequest(n)
                } else {
                    den_source::GitRef::Branch(s.reference.clone())
                };
                let subpath = Some(s.subpath.clone()).filter(|p| !p.is_empty());
                Some(RemoteSource {
                    spec: den_source::Spec::Git(den_source::GitSource { url: s.url.clone(), reference, subpath }),
                    strategy: Default::default(),
                    recursive_submodules: false,
                })
            }
            "image" => Some(RemoteSource {
                spec: den_source::Spec::Image(s.url.clone()),
                strategy: Default::default(),
                recursive_submodules: false,
            }),
            _ => None,
        });
        Source { source: rec.local_folder.clone(), id: Some(rec.id.clone()), remote, ..Default::default() }
    }
}

impl RemoteSource {
    /// A git SOURCE as den on a machine is asked to clone it.
    pub fn to_git_clone(&self) -> Option<den_protocol::transfer::GitClone> {
        use den_source::GitRef;
        let den_source::Spec::Git(g) = &self.spec else { return None };
        let mut c = den_protocol::transfer::GitClone {
            url: g.url.clone(),
            subpath: g.subpath.clone().unwrap_or_default(),
            strategy: self.strategy.as_str().into(),
            recursive_submodules: self.recursive_submodules,
            ..Default::default()
        };
        match &g.reference {
            GitRef::Default => {}
            GitRef::Branch(b) => c.branch = b.clone(),
            GitRef::Commit(x) => c.commit = x.clone(),
            GitRef::PullRequest(n) => c.pull_request = *n,
        }
        Some(c)
    }

    /// The SOURCE den on a machine was asked to clone, checked again there.
    pub fn from_git_clone(c: &den_protocol::transfer::GitClone) -> Result<RemoteSource> {
        use den_source::GitRef;
        let bad = |e: String| WorkspaceError::BadInput(e);
        let reference = match (c.branch.as_str(), c.commit.as_str(), c.pull_request) {
            ("", "", 0) => GitRef::Default,
            (b, "", 0) => GitRef::Branch(b.into()),
            ("", x, 0) => {
                den_source::check_commit(x).map_err(bad)?;
                GitRef::Commit(x.into())
            }
            ("", "", n) => GitRef::PullRequest(n),
            _ => return Err(bad("a clone names more than one of branch, commit and pull request".into())),
        };
        let subpath = match c.subpath.as_str() {
            "" => None,
            s => Some(den_source::check_subpath(s).map_err(bad)?),
        };
        Ok(RemoteSource {
            spec: den_source::Spec::Git(den_source::GitSource { url: c.url.clone(), reference, subpath }),
            strategy: c.strategy.parse().map_err(bad)?,
            recursive_submodules: c.recursive_submodules,
        })
    }
}

/// The container (and built image) name of a workspace.
pub(crate) fn container_name(den: &Den, id: &str) -> String {
    if den.context == "default" {
        format!("den-{id}")
    } else {
        format!("den-{}-{id}", id::normalize(&den.context))
    }
}

/// The provider's `agent.injectGitCredentials` and
/// `injectDockerCredentials`: each on unless it says false.
pub(crate) fn credentials_of(
    manifest: &den_provider::Manifest,
    opts: &IndexMap<String, ResolvedOption>,
) -> Credentials {
    let on =
        |b: &den_provider::StrBool| den_provider::StrBool(den_provider::expand_options(&b.0, opts)).is_true_or(true);
    Credentials {
        git: on(&manifest.agent.inject_git_credentials),
        docker: on(&manifest.agent.inject_docker_credentials),
    }
}

pub(crate) use crate::merging::{local_env, merge};

/// The project's configuration, or the fallback image's when it has none.
pub(crate) fn load_config(folder: &Path, devcontainer_path: Option<&Path>, fallback: &str) -> Result<Resolved> {
    let env = local_env;
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

/// The configuration of a workspace whose files are elsewhere: nothing to
/// run here (no `initializeCommand`).
fn unread_config(folder: &Path, fallback: &str) -> Result<Resolved> {
    let text = serde_json::json!({ "image": fallback }).to_string();
    let loaded = den_devcontainer::load_str(&text, &folder.join(".devcontainer.json"))?;
    let mut r = den_devcontainer::resolve(&loaded, folder, &|_: &str| None);
    r.config_file = PathBuf::new();
    Ok(r)
}

pub(crate) fn check_supported(cfg: &DevContainer) -> Result<()> {
    if cfg.docker_compose_file.is_some() {
        return Ok(());
    }
    if cfg.image.is_none()
        && cfg.build.as_ref().and_then(|b| b.dockerfile.as_ref()).is_none()
        && cfg.docker_file.is_none()
    {
        return Err(WorkspaceError::BadInput(
            "the configuration names no container: set \"image\" or \"build\": {\"dockerfile\": …}".into(),
        ));
    }
    Ok(())
}

pub(crate) fn canonical_folder(source: &Path) -> Result<PathBuf> {
    let folder = std::fs::canonicalize(source).map_err(WorkspaceError::io(format!("reading {}", source.display())))?;
    if !folder.is_dir() {
        return Err(WorkspaceError::BadInput(format!("{} is not a folder", folder.display())));
    }
    Ok(folder)
}

fn run_initialize_command(resolved: &Resolved, reporter: &mut dyn Reporter) -> Result<()> {
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

/// What `up` knows before a backend takes over.
pub(crate) struct Plan {
    pub folder: PathBuf,
    pub id: String,
    pub entry: ProviderEntry,
    pub record: Option<WorkspaceRecord>,
    pub ws_options: IndexMap<String, String>,
    pub devcontainer_path: Option<PathBuf>,
    pub fallback_image: String,
    pub resolved: Resolved,
    /// The option values given with this command (`--provider-option`).
    pub given: Vec<(String, String)>,
    pub prebuild: Option<crate::features::Prebuild>,
    pub source_info: Option<crate::record::SourceInfo>,
    /// The repository den on the machine clones (see [`Source::clone_on_machine`]).
    pub clone_on_machine: Option<den_protocol::transfer::GitClone>,
    /// The repository the pod clones (see [`Source::clone_in_pod`]).
    pub clone_in_pod: Option<den_protocol::transfer::GitClone>,
    pub workspace_env: IndexMap<String, String>,
    pub devcontainer_image: Option<String>,
    /// The values of `global` options given now: the provider's, saved for
    /// it once the command made something with them ([`Plan::save_globals`]).
    pub globals: Vec<(String, String)>,
    /// The provider's saved options.
    pub saved: IndexMap<String, String>,
}

impl Plan {
    /// Reads everything `up` (and `build`) needs for the workspace `w`,
    /// whose record (read under its lock) is `record`. A bad configuration
    /// fails here, with its position in the local file, before any backend
    /// touches an engine or a machine.
    pub(crate) fn load(den: &Den, w: &Identified, record: Option<WorkspaceRecord>) -> Result<Plan> {
        let (src, folder, id) = (&w.src, w.folder.clone(), w.id.clone());
        if let Some(r) = &record {
            if r.local_folder != folder {
                return Err(WorkspaceError::Conflict(format!(
                    "workspace `{id}` already belongs to {}; choose another id with --id",
                    r.local_folder.display()
                )));
            }
        }
        let entry = pick_provider(den, src, record.as_ref())?;
        let saved = providers::saved_options(den, &entry.name)?;
        let providers::Given { own: ws_options, globals } =
            providers::workspace_options(&entry, record.as_ref(), &src.provider_options);
        let devcontainer_path =
            src.devcontainer_path.clone().or_else(|| record.as_ref().and_then(|r| r.devcontainer_path.clone()));
        let (fallback_image, mut resolved) = read_config(den, w, devcontainer_path.as_deref())?;
        if let Some(image) = &src.devcontainer_image {
            use_image(&mut resolved, image);
        }
        let workspace_env: IndexMap<String, String> = if src.workspace_env.is_empty() {
            record.as_ref().map(|r| r.workspace_env.clone()).unwrap_or_default()
        } else {
            src.workspace_env.iter().cloned().collect()
        };
        if !workspace_env.is_empty() {
            let env = resolved.config.remote_env.get_or_insert_with(Default::default);
            for (k, v) in &workspace_env {
                env.insert(k.clone(), Some(v.clone()));
            }
        }
        Ok(Plan {
            clone_on_machine: if w.fetched.clone_on_machine {
                src.remote.as_ref().and_then(RemoteSource::to_git_clone)
            } else {
                None
            },
            clone_in_pod: if w.fetched.clone_in_pod {
                src.remote.as_ref().and_then(RemoteSource::to_git_clone)
            } else {
                None
            },
            prebuild: prebuild_of(den, src)?,
            source_info: w.fetched.info.clone(),
            workspace_env,
            devcontainer_image: src.devcontainer_image.clone(),
            folder,
            id,
            entry,
            record,
            ws_options,
            devcontainer_path,
            fallback_image,
            resolved,
            given: src.provider_options.clone(),
            globals,
            saved,
        })
    }

    /// Saves the `global` option values this command was given, for the
    /// provider: once it has made something with them, they say where it is.
    pub(crate) fn save_globals(&self, den: &Den) -> Result<()> {
        providers::save_globals(den, &self.entry, &self.globals)
    }

    /// The workspace's option values with the `global` ones given now.
    pub(crate) fn given_options(&self) -> providers::Given {
        providers::Given { own: self.ws_options.clone(), globals: self.globals.clone() }
    }

    /// `initializeCommand`, on this machine, unless the caller runs it
    /// elsewhere (den on a machine: it ran where the user is).
    pub(crate) fn initialize(&self, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<()> {
        if opts.skip_initialize {
            return Ok(());
        }
        run_initialize_command(&self.resolved, reporter)
    }

    /// The owner of the project folder (the UID the remote user follows).
    pub(crate) fn folder_owner(&self) -> Result<(u32, u32)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.folder)
            .map_err(WorkspaceError::io(format!("reading {}", self.folder.display())))?;
        Ok((m.uid(), m.gid()))
    }

    /// The provider's inactivity timeout for the container, unexpanded:
    /// `containerInactivityTimeout`, else `inactivityTimeout`.
    pub(crate) fn container_inactivity_timeout(&self) -> &str {
        let agent = &self.entry.manifest.agent;
        if agent.container_inactivity_timeout.is_empty() {
            &agent.inactivity_timeout
        } else {
            &agent.container_inactivity_timeout
        }
    }

    /// Where an option's value came from, for an error that may be its
    /// fault: given now, saved for the provider, or the workspace's own.
    pub(crate) fn option_origin(&self, name: &str) -> Option<String> {
        let provider = &self.entry.name;
        if let Some((_, v)) = self.given.iter().rev().find(|(k, _)| k == name) {
            return Some(format!("{name}={v:?} was given with --provider-option"));
        }
        if let Some(v) = self.ws_options.get(name) {
            return Some(format!(
                "{name}={v:?} is this workspace's own (from an earlier `den up --provider-option`; give another value to change it)"
            ));
        }
        self.saved.get(name).filter(|v| !v.is_empty()).map(|v| {
            format!(
                "{name}={v:?} comes from the options saved for provider `{provider}` (`den provider set-options {provider} -o {name}=` clears it)"
            )
        })
    }

    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin {
            id: &self.id,
            provider: &self.entry.name,
            options: &self.ws_options,
            folder: &self.folder,
            devcontainer_path: self.devcontainer_path.as_ref(),
            config_file: &self.resolved.config_file,
            source: self.source_info.as_ref(),
            workspace_env: &self.workspace_env,
        }
    }

    /// A workspace on a machine or in a cluster stays on its provider: its
    /// container is there, not where another provider would look.
    pub(crate) fn refuse_provider_change(&self) -> Result<()> {
        match &self.record {
            Some(r) if r.provider != self.entry.name => Err(WorkspaceError::Conflict(format!(
                "workspace `{}` runs on provider `{}`; delete it first to move it to `{}`",
                self.id, r.provider, self.entry.name
            ))),
            _ => Ok(()),
        }
    }
}

/// The fallback image and the configuration of workspace `w`: read here,
/// or (a clone on the machine) read there, nothing here.
fn read_config(den: &Den, w: &Identified, devcontainer_path: Option<&Path>) -> Result<(String, Resolved)> {
    let cfg = DenConfig::load(&den.home)?;
    let fallback_image = (w.fetched.image.clone())
        .or_else(|| w.src.fallback_image.clone())
        .unwrap_or_else(|| cfg.fallback_image().to_string());
    if w.fetched.clone_on_machine {
        return Ok((fallback_image.clone(), unread_config(&w.folder, &fallback_image)?));
    }
    let resolved = load_config(&w.folder, devcontainer_path, &fallback_image)?;
    check_supported(&resolved.config)?;
    Ok((fallback_image, resolved))
}

/// `--devcontainer-image`: this image, not the configuration's own image
/// or Dockerfile.
fn use_image(resolved: &mut Resolved, image: &str) {
    resolved.config.image = Some(image.to_string());
    resolved.config.build = None;
    resolved.config.docker_file = None;
    if let Some(raw) = resolved.raw.as_object_mut() {
        raw.insert("image".into(), serde_json::Value::String(image.to_string()));
        raw.remove("build");
        raw.remove("dockerFile");
    }
}

/// Where prebuilt images are looked for: the one given, else the
/// context's PREBUILD_REPOSITORY option.
fn prebuild_of(den: &Den, src: &Source) -> Result<Option<crate::features::Prebuild>> {
    if let Some(p) = &src.prebuild {
        return Ok(Some(p.clone()));
    }
    match crate::context::options(den, &den.context)?.get("PREBUILD_REPOSITORY") {
        Some(r) if !r.trim().is_empty() => Ok(Some(crate::features::Prebuild::new(r, false)?)),
        _ => Ok(None),
    }
}

/// The provider: the one asked for, else the workspace's, else the
/// context's default.
pub(crate) fn pick_provider(den: &Den, src: &Source, record: Option<&WorkspaceRecord>) -> Result<ProviderEntry> {
    let name = match (&src.provider, record) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) => r.provider.clone(),
        (None, None) => providers::default_provider(den)?,
    };
    providers::get(den, &name)
}

/// What an outcome from the far side (`place`) means here.
pub(crate) fn outcome_result(outcome: Outcome, place: crate::Place) -> Result<()> {
    let failed = |message: String| WorkspaceError::Failed { place, message };
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::HookFailed { hook, code, .. } => Err(WorkspaceError::HookFailed { hook, code }),
        Outcome::Failed { message } => Err(failed(message)),
        Outcome::NoGit => Err(failed(den_protocol::transfer::NO_GIT.into())),
    }
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
        authorized_key: String::new(),
        inactivity_timeout: String::new(),
        credentials: Credentials::default(),
        vscode_settings: vscode_settings(merged),
        vscode_extensions: merged.vscode_extensions(),
    }
}

/// `customizations.vscode.settings` of every metadata entry and the config,
/// merged in order (a later entry's value wins).
fn vscode_settings(merged: &MergedConfig) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for entry in merged.customizations.get("vscode").into_iter().flatten() {
        if let Some(serde_json::Value::Object(settings)) = entry.get("settings") {
            out.extend(settings.clone());
        }
    }
    out
}

/// The key that may log in: the one given, else the workspace's own.
pub(crate) fn authorized_key(den: &Den, opts: &UpOptions, id: &str) -> Result<String> {
    match &opts.authorized_key {
        Some(k) => Ok(k.clone()),
        None => den_ssh::keys::load_or_create(&crate::publish::client_key_path(den, id))
            .map(|key| den_ssh::keys::public_openssh(key.public_key()))
            .map_err(|e| WorkspaceError::here(format!("making the workspace's SSH key: {e}"))),
    }
}
