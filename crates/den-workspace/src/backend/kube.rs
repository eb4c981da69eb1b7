//! The kubernetes driver (`agent.driver: kubernetes`): a workspace is a pod
//! running the config's image, with a persistent volume claim holding the
//! workspace folder. Everything goes through `kubectl`: `apply` of what
//! [`den_driver::render_pod`] makes, `wait`, `exec -i` for the agent (the same inject
//! script as docker), `delete`. Stopping deletes the pod and keeps the
//! claim; `up` makes the pod again.

use den_devcontainer::{MergedConfig, Resolved};
use den_driver::{Kubectl, PodContainer, PodSettings};
use den_process::Cmd;

use crate::exec::{self, ProviderRun};
use crate::inject::{inject_argv, run_agent, Feed};
use den_protocol::Outcome;

use super::sequence::{self, Made, Setup, UpSteps};
use crate::plan::Plan;
use crate::record::WorkspaceRecord;
use crate::{Den, Reporter, Result, Status, UpOptions, WorkspaceError};

/// A field of the manifest's `agent.kubernetes`, expanded (empty when
/// absent).
fn agent_field(run: &ProviderRun, name: &str) -> String {
    let k = run.manifest.agent.kubernetes.as_ref();
    k.and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(|s| run.expand(s)).unwrap_or_default()
}

/// kubectl as the provider configures it.
pub(crate) fn kubectl(run: &ProviderRun) -> Kubectl {
    let field = |name: &str| agent_field(run, name);
    let path = field("path");
    Kubectl {
        path: if path.is_empty() { "kubectl".into() } else { path },
        context: field("context"),
        config: field("config"),
        namespace: field("namespace"),
    }
}

/// Where the agent goes in a pod.
const POD_AGENT_PATHS: [&str; 2] = ["/usr/local/bin/den", "/tmp/den-agent/den"];

/// The workspace's container in the pod, from its configuration.
fn pod_container(resolved: &Resolved, merged: &MergedConfig) -> PodContainer {
    PodContainer {
        workspace_folder: resolved.workspace_folder.clone(),
        agent_data_dir: den_protocol::DATA_DIR.into(),
        env: merged.container_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        entrypoints: merged.entrypoints.clone(),
        privileged: merged.privileged,
        cap_add: merged.cap_add.clone(),
    }
}

fn settings(run: &ProviderRun, name: &str, id: &str, image: &str) -> PodSettings {
    let field = |f: &str| agent_field(run, f);
    PodSettings {
        name: name.into(),
        workspace_id: id.into(),
        image: image.into(),
        resources: field("resources"),
        node_selector: field("nodeSelector"),
        service_account: field("serviceAccount"),
        storage_class: field("storageClassName"),
        volume_size: field("persistentVolumeSize"),
    }
}

pub(crate) fn run_for(den: &Den, rec: &WorkspaceRecord) -> Result<ProviderRun> {
    let entry = crate::providers::get(den, &rec.provider)?;
    exec::run_for(den, &entry, &rec.provider_options, &exec::workspace_subject(den, &rec.id, rec.local_folder.clone()))
}

/// `up` in a cluster: a pod from a prebuilt image or the config's, its
/// files in a volume once, the agent through `kubectl exec`.
pub(crate) struct KubeUp {
    run: ProviderRun,
    k: Kubectl,
    name: String,
    image: String,
    merged: MergedConfig,
    candidates: Vec<String>,
}

impl UpSteps for KubeUp {
    fn check(plan: &Plan) -> Result<()> {
        plan.refuse_provider_change()
    }

    fn open(den: &Den, p: &Plan, _opts: &UpOptions, _reporter: &mut dyn Reporter) -> Result<Self> {
        let subject = exec::workspace_subject(den, &p.id, p.folder.clone());
        let run = exec::run_given(den, &p.entry, &p.ws_options, &p.globals, &subject)?;
        exec::init(den, &run)?;
        Ok(KubeUp {
            k: kubectl(&run),
            run,
            name: crate::plan::container_name(den, &p.id),
            image: String::new(),
            merged: MergedConfig::default(),
            candidates: POD_AGENT_PATHS.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn credentials(&self, p: &Plan) -> den_protocol::Credentials {
        crate::plan::credentials_of(&p.entry.manifest, &self.run.options)
    }

    fn prepare(&mut self, den: &Den, p: &mut Plan, _opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<()> {
        self.image = image_of(den, p, reporter)?;
        self.merged = den_devcontainer::merge(&[], &p.resolved.config);
        Ok(())
    }

    fn record_first(&self) -> bool {
        true
    }

    fn describe(&self, p: &Plan, rec: &mut WorkspaceRecord) {
        rec.container_name = self.name.clone();
        rec.image = self.image.clone();
        rec.workspace_folder = p.resolved.workspace_folder.clone();
        rec.set_from_config(&self.merged, &p.resolved.config);
    }

    fn create(
        &mut self,
        den: &Den,
        p: &mut Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<Made> {
        let (k, name) = (&self.k, &self.name);
        if opts.reset {
            reporter.phase("create", "removing the old pod and its volume (--reset)");
            k.delete_pod(name)?;
            k.delete_claim(name)?;
        } else if opts.recreate {
            reporter.phase("create", "removing the old pod (--recreate)");
            k.delete_pod(name)?;
        }
        let phase = k.pod_phase(name)?;
        let fresh_claim = !k.claim_exists(name)?;
        let mut made = Made::default();
        if phase.as_deref() != Some("Running") {
            if phase.is_some() {
                k.delete_pod(name)?; // Succeeded, Failed or stuck: make it anew
            }
            reporter.phase("create", &format!("pod {name} from {}", self.image));
            let pod = den_driver::render_pod(
                &settings(&self.run, name, &p.id, &self.image),
                &pod_container(&p.resolved, &self.merged),
            )?;
            k.apply(&pod)?;
            let timeout = self.run.expand(&p.entry.manifest.agent.timeout);
            k.wait_ready(name, if timeout.is_empty() { "10m" } else { &timeout })?;
            made = Made { created: fresh_claim, started: !fresh_claim };
        }
        // The files go into the volume once; a marker in the agent's state
        // (on the volume too) says they arrived, so an `up` that failed
        // before that sends them again.
        let marker = format!("{}/{}", den_protocol::DATA_DIR, den_protocol::transfer::CONTENT_MARKER);
        let need_files = fresh_claim
            || opts.reset
            || (phase.as_deref() != Some("Running")
                && k.exec(name, &["test".into(), "-e".into(), marker]).output().is_err());
        if need_files {
            self.files(den, p, rec, reporter)?;
        }
        rec.remote_user = self
            .merged
            .remote_user
            .clone()
            .or_else(|| self.merged.container_user.clone())
            .unwrap_or_else(|| "root".into());
        Ok(made)
    }

    fn setup(
        &mut self,
        den: &Den,
        p: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        _made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup> {
        let req = den_protocol::SetupRequest {
            authorized_key: crate::plan::authorized_key(den, opts, &p.id)?,
            inactivity_timeout: self.run.expand(p.container_inactivity_timeout()),
            credentials: rec.credentials,
            ..crate::plan::setup_request(&p.id, &p.resolved, &self.merged, rec.remote_user.clone(), p.folder_owner()?)
        };
        let argv = inject_argv(&self.candidates, "setup")?;
        reporter.phase("inject", "");
        let feed = Some(crate::inject::setup_feed(&req));
        let agent_run = run_agent::<den_protocol::SetupResult>(&self.k.exec(&self.name, &argv), feed, reporter)?;
        rec.agent_path = agent_run.agent_path.clone();
        Ok(sequence::setup_of(agent_run.result, rec, agent_run.uploaded))
    }
}

impl KubeUp {
    /// The workspace's files into the pod's volume: cloned there (through
    /// the clone relay), or sent from here.
    fn files(&self, den: &Den, p: &Plan, rec: &mut WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
        let (k, name, candidates) = (&self.k, &self.name, &self.candidates);
        let Some(g) = &p.clone_in_pod else {
            return send_files(k, name, candidates, &p.folder, &p.resolved.workspace_folder, reporter);
        };
        let argv = content_argv(candidates, "clone-content", &p.resolved.workspace_folder)?;
        let feed = Feed {
            request: serde_json::to_string(g).expect("serialises"),
            content: Box::new(|_| Ok(())),
            clone_url: Some(g.url.clone()),
        };
        let r = run_agent::<den_protocol::transfer::RemoteUpResult>(&k.exec(name, &argv), Some(feed), reporter)?.result;
        match r.outcome {
            Outcome::Done => {
                if let Some(source) = rec.source.as_mut() {
                    source.commit = r.commit;
                }
                return rec.save(den);
            }
            Outcome::NoGit => {
                reporter.line(&format!("{}: den clones here and sends the files", den_protocol::transfer::NO_GIT))
            }
            failed => crate::plan::outcome_result(failed, crate::Place::Workspace)?,
        }
        // The whole repository, here, for this once.
        let source = crate::plan::RemoteSource::from_git_clone(g)?;
        let den_source::Spec::Git(git) = &source.spec else { unreachable!("a git clone") };
        let clone = crate::record::source_dir(den, &p.id).with_extension("den-full");
        crate::record::remove_dir(&clone)?;
        let sent = den_source::clone(git, source.strategy, source.recursive_submodules, &clone, &mut |l| {
            reporter.line(&format!("  │ {l}"))
        })
        .map_err(WorkspaceError::from)
        .and_then(|_| {
            let folder = match &git.subpath {
                Some(sub) => clone.join(sub),
                None => clone.clone(),
            };
            send_files(k, name, candidates, &folder, &p.resolved.workspace_folder, reporter)
        });
        crate::record::remove_dir(&clone)?;
        sent
    }
}

/// The pod's image: a prebuilt one, else the config's (the cluster builds
/// nothing).
fn image_of(den: &Den, p: &Plan, reporter: &mut dyn Reporter) -> Result<String> {
    if let Some(image) = prebuilt(den, p, reporter)? {
        return Ok(image);
    }
    let cfg = &p.resolved.config;
    if cfg.features.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(WorkspaceError::Unsupported(
            "the kubernetes driver does not build images in the cluster, and this configuration has Features: build and push it with `den build --repository REGISTRY/NAME --push`, then `den up --prebuild-repository REGISTRY/NAME`".into(),
        ));
    }
    cfg.image.clone().ok_or_else(|| WorkspaceError::Unsupported(
        "the kubernetes driver runs configs that name an \"image\"; build and push the Dockerfile's image (`den build --repository REGISTRY/NAME --push`), then `den up --prebuild-repository REGISTRY/NAME`"
            .into(),
    ))
}

pub(crate) fn status(den: &Den, rec: &WorkspaceRecord) -> Result<Status> {
    let k = kubectl(&run_for(den, rec)?);
    Ok(match k.pod_phase(&rec.container_name)? {
        Some(p) if p == "Running" => Status::Running,
        Some(_) => Status::Stopped,
        None if k.claim_exists(&rec.container_name)? => Status::Stopped,
        None => Status::NotFound,
    })
}

/// Stopping deletes the pod; the volume with the workspace stays.
pub(crate) fn stop(den: &Den, rec: &WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
    let k = kubectl(&run_for(den, rec)?);
    reporter.phase("stop", &format!("deleting pod {} (its volume stays)", rec.container_name));
    Ok(k.delete_pod(&rec.container_name)?)
}

pub(crate) fn delete(den: &Den, rec: &WorkspaceRecord, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let r = run_for(den, rec).map(|run| kubectl(&run)).and_then(|k| {
        k.delete_pod(&rec.container_name)?;
        Ok(k.delete_claim(&rec.container_name)?)
    });
    match r {
        Ok(()) => Ok(()),
        Err(e) if force => {
            reporter.line(&format!("warning: {e}; removing den's record anyway (--force)"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The agent's `sub` command in the pod, told to put the workspace's files
/// at `workspace_folder`.
fn content_argv(candidates: &[String], sub: &str, workspace_folder: &str) -> Result<Vec<String>> {
    let mut argv = vec!["env".to_string(), format!("{}={}", den_protocol::transfer::CONTENT_DIR_ENV, workspace_folder)];
    argv.extend(inject_argv(candidates, sub)?);
    Ok(argv)
}

/// Sends `folder` into the pod's volume at `workspace_folder`.
fn send_files(
    k: &Kubectl,
    name: &str,
    candidates: &[String],
    folder: &std::path::Path,
    workspace_folder: &str,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let argv = content_argv(candidates, "receive-content", workspace_folder)?;
    let folder = folder.to_path_buf();
    let feed = Feed {
        request: "{}".into(),
        content: Box::new(move |out| den_protocol::transfer::send_folder(&folder, out)),
        clone_url: None,
    };
    let sent = run_agent::<den_protocol::transfer::RemoteUpResult>(&k.exec(name, &argv), Some(feed), reporter)?;
    crate::plan::outcome_result(sent.result.outcome, crate::Place::Workspace)
}

/// The tunnel: the agent's SSH server through `kubectl exec -i`.
pub(crate) fn tunnel(run: &ProviderRun, rec: &WorkspaceRecord, workdir: Option<&str>) -> Cmd {
    kubectl(run).exec(&rec.container_name, &super::ssh_server_argv(rec, workdir))
}

/// The prebuilt image for this configuration, when a prebuild repository
/// is set and its registry has the image (asked through the registry API:
/// the cluster pulls it, not this machine).
fn prebuilt(den: &Den, p: &Plan, reporter: &mut dyn Reporter) -> Result<Option<String>> {
    let Some(pb) = &p.prebuild else { return Ok(None) };
    let reference = format!(
        "{}:{}",
        pb.repository,
        crate::features::prebuild_hash(den, &p.resolved, crate::features::LockMode::Read)?
    );
    let parsed = den_oci::Reference::parse(&reference).map_err(|e| WorkspaceError::BadInput(e.to_string()))?;
    match den_oci::Client::default().manifest(&parsed) {
        Ok(_) => {
            reporter.phase("build", &format!("prebuilt image {reference}"));
            Ok(Some(reference))
        }
        Err(e) if e.is_not_found() => {
            reporter.line(&format!("no prebuilt image {reference} in its registry"));
            Ok(None)
        }
        Err(e) => Err(WorkspaceError::Unreachable(format!("looking for the prebuilt image {reference}: {e}"))),
    }
}
