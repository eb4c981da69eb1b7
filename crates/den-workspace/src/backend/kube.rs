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
use crate::plan::Plan;
use crate::record::{now, WorkspaceRecord};
use crate::{Den, Reporter, Result, Status, UpOptions, UpResult, WorkspaceError};
use den_protocol::Outcome;

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

pub(crate) fn up(den: &Den, opts: &UpOptions, p: Plan, reporter: &mut dyn Reporter) -> Result<UpResult> {
    p.initialize(opts, reporter)?;
    let run = exec::run_for(den, &p.entry, &p.ws_options, &exec::workspace_subject(den, &p.id, p.folder.clone()))?;
    exec::init(den, &run)?;
    let k = kubectl(&run);
    let cfg = &p.resolved.config;
    let image = match prebuilt(den, &p, reporter)? {
        Some(image) => image,
        None => {
            if cfg.features.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(WorkspaceError::Unsupported(
                    "the kubernetes driver does not build images in the cluster, and this configuration has Features: build and push it with `den build --repository REGISTRY/NAME --push`, then `den up --prebuild-repository REGISTRY/NAME`".into(),
                ));
            }
            cfg.image.clone().ok_or_else(|| WorkspaceError::Unsupported(
                "the kubernetes driver runs configs that name an \"image\"; build and push the Dockerfile's image (`den build --repository REGISTRY/NAME --push`), then `den up --prebuild-repository REGISTRY/NAME`"
                    .into(),
            ))?
        }
    };
    let name = crate::plan::container_name(den, &p.id);
    let merged = den_devcontainer::merge(&[], cfg);

    let mut rec = WorkspaceRecord::for_up(p.record.as_ref(), den, p.origin());
    rec.container_name = name.clone();
    rec.image = image.clone();
    rec.workspace_folder = p.resolved.workspace_folder.clone();
    rec.set_from_config(&merged, &p.resolved.config);
    rec.credentials = crate::plan::credentials_of(&p.entry.manifest, &run.options);
    rec.last_used_at = now();
    rec.save(den)?;

    if opts.reset {
        reporter.phase("create", "removing the old pod and its volume (--reset)");
        k.delete_pod(&name)?;
        k.delete_claim(&name)?;
    } else if opts.recreate {
        reporter.phase("create", "removing the old pod (--recreate)");
        k.delete_pod(&name)?;
    }
    let phase = k.pod_phase(&name)?;
    let fresh_claim = !k.claim_exists(&name)?;
    let (mut created, mut started) = (false, false);
    if phase.as_deref() != Some("Running") {
        if phase.is_some() {
            k.delete_pod(&name)?; // Succeeded, Failed or stuck: make it anew
        }
        reporter.phase("create", &format!("pod {name} from {image}"));
        k.apply(&den_driver::render_pod(&settings(&run, &name, &p.id, &image), &pod_container(&p.resolved, &merged))?)?;
        let timeout = run.expand(&p.entry.manifest.agent.timeout);
        k.wait_ready(&name, if timeout.is_empty() { "10m" } else { &timeout })?;
        created = fresh_claim;
        started = !fresh_claim;
    }
    let candidates: Vec<String> = POD_AGENT_PATHS.iter().map(|s| s.to_string()).collect();
    // The files go into the volume once; a marker in the agent's state (on
    // the volume too) says they arrived, so an `up` that failed before that
    // sends them again.
    let marker = format!("{}/{}", den_protocol::DATA_DIR, den_protocol::transfer::CONTENT_MARKER);
    let need_files = fresh_claim
        || opts.reset
        || (phase.as_deref() != Some("Running")
            && k.exec(&name, &["test".into(), "-e".into(), marker]).output().is_err());
    if need_files {
        let in_pod = match &p.clone_in_pod {
            Some(g) => {
                let argv = content_argv(&candidates, "clone-content", &p.resolved.workspace_folder)?;
                let feed = Feed {
                    request: serde_json::to_string(g).expect("serialises"),
                    content: Box::new(|_| Ok(())),
                    clone_url: Some(g.url.clone()),
                };
                let r =
                    run_agent::<den_protocol::transfer::RemoteUpResult>(&k.exec(&name, &argv), Some(feed), reporter)?
                        .result;
                match r.outcome {
                    Outcome::Done => {
                        if let Some(source) = rec.source.as_mut() {
                            source.commit = r.commit;
                        }
                        rec.save(den)?;
                        true
                    }
                    Outcome::NoGit => {
                        reporter
                            .line(&format!("{}: den clones here and sends the files", den_protocol::transfer::NO_GIT));
                        false
                    }
                    failed => {
                        crate::plan::outcome_result(failed)?;
                        false
                    }
                }
            }
            None => false,
        };
        if !in_pod {
            match &p.clone_in_pod {
                Some(g) => {
                    // The whole repository, here, for this once.
                    let source = crate::plan::RemoteSource::from_git_clone(g)?;
                    let den_source::Spec::Git(git) = &source.spec else { unreachable!("a git clone") };
                    let clone = crate::record::source_dir(den, &p.id).with_extension("den-full");
                    crate::record::remove_dir(&clone)?;
                    let sent = den_source::clone(git, source.strategy, source.recursive_submodules, &clone, &mut |l| {
                        reporter.line(&format!("  │ {l}"))
                    })
                    .map_err(|e| WorkspaceError::BadInput(e.to_string()))
                    .and_then(|_| {
                        let folder = match &git.subpath {
                            Some(sub) => clone.join(sub),
                            None => clone.clone(),
                        };
                        send_files(&k, &name, &candidates, &folder, &p.resolved.workspace_folder, reporter)
                    });
                    crate::record::remove_dir(&clone)?;
                    sent?;
                }
                None => send_files(&k, &name, &candidates, &p.folder, &p.resolved.workspace_folder, reporter)?,
            }
        }
    }
    let remote_user =
        merged.remote_user.clone().or_else(|| merged.container_user.clone()).unwrap_or_else(|| "root".into());
    rec.remote_user = remote_user.clone();
    let host = p.folder_owner()?;
    let timeout = run.expand(p.container_inactivity_timeout());
    let req = den_protocol::SetupRequest {
        authorized_key: crate::plan::authorized_key(den, opts, &p.id)?,
        inactivity_timeout: timeout,
        credentials: rec.credentials,
        ..crate::plan::setup_request(&p.id, &p.resolved, &merged, remote_user, host)
    };
    let argv = inject_argv(&candidates, "setup")?;
    reporter.phase("inject", "");
    let agent_run =
        run_agent::<den_protocol::SetupResult>(&k.exec(&name, &argv), Some(crate::inject::setup_feed(&req)), reporter)?;
    rec.agent_path = agent_run.agent_path.clone();
    rec.save(den)?;
    let result = agent_run.result;
    crate::plan::finish_setup(den, &mut rec, &result, opts.ssh_config.as_deref(), reporter)?;
    Ok(UpResult {
        record: rec,
        created,
        started,
        uploaded_agent: agent_run.uploaded,
        hooks_ran: result.ran,
        host_key: result.host_key,
    })
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
    crate::plan::outcome_result(sent.result.outcome)
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
