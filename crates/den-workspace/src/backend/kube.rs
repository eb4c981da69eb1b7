//! The kubernetes driver (`agent.driver: kubernetes`): a workspace is a pod
//! running the config's image, with a persistent volume claim holding the
//! workspace folder. Everything goes through `kubectl`: `apply` of what
//! [`render`] makes, `wait`, `exec -i` for the agent (the same inject
//! script as docker), `delete`. Stopping deletes the pod and keeps the
//! claim; `up` makes the pod again.

use den_devcontainer::{MergedConfig, Resolved};
use den_process::Cmd;
use serde_json::{json, Value};

use crate::exec::{ProviderRun, Subject};
use crate::inject::{inject_argv, run_agent, Feed};
use crate::plan::Plan;
use crate::record::{now, WorkspaceRecord};
use crate::{Den, Reporter, Result, Status, UpOptions, UpResult, WorkspaceError};

/// The label every object den makes carries.
pub const WORKSPACE_LABEL: &str = "den.workspace";

/// kubectl with the provider's context, kubeconfig and namespace.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub path: String,
    pub context: String,
    pub config: String,
    pub namespace: String,
}

/// A field of the manifest's `agent.kubernetes`, expanded (empty when
/// absent).
fn agent_field(run: &ProviderRun, name: &str) -> String {
    let k = run.entry.manifest.agent.kubernetes.as_ref();
    k.and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(|s| run.expand(s)).unwrap_or_default()
}

impl Kubectl {
    pub fn from_run(run: &ProviderRun) -> Kubectl {
        let field = |name: &str| agent_field(run, name);
        let path = field("path");
        Kubectl {
            path: if path.is_empty() { "kubectl".into() } else { path },
            context: field("context"),
            config: field("config"),
            namespace: field("namespace"),
        }
    }

    pub fn cmd(&self) -> Cmd {
        let mut c = Cmd::new(&self.path);
        if !self.context.is_empty() {
            c = c.arg("--context").arg(&self.context);
        }
        if !self.config.is_empty() {
            c = c.arg("--kubeconfig").arg(&self.config);
        }
        if !self.namespace.is_empty() {
            c = c.arg("--namespace").arg(&self.namespace);
        }
        c
    }

    /// `kubectl exec -i POD -- ARGV`.
    pub fn exec(&self, pod: &str, argv: &[String]) -> Cmd {
        self.cmd().args(["exec", "-i", pod, "-c", CONTAINER, "--"]).args(argv)
    }
}

/// The container's name in the pod.
pub const CONTAINER: &str = "devcontainer";

/// What the pod is made from, besides the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSettings {
    pub name: String,
    pub workspace_id: String,
    pub image: String,
    /// `requests.cpu=1,limits.memory=2Gi` (DevPod's `resources` syntax).
    pub resources: String,
    /// `key=value,key2=value2`.
    pub node_selector: String,
    pub service_account: String,
    pub storage_class: String,
    /// The claim's size, e.g. `10Gi`.
    pub volume_size: String,
}

fn pairs(text: &str) -> Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| WorkspaceError::Invalid(format!("`{p}` is not KEY=VALUE")))
        })
        .collect()
}

fn resources(text: &str) -> Result<Value> {
    let mut out = json!({});
    for (k, v) in pairs(text)? {
        let (kind, what) = k
            .split_once('.')
            .ok_or_else(|| WorkspaceError::Invalid(format!("resources: `{k}` must be requests.NAME or limits.NAME")))?;
        if kind != "requests" && kind != "limits" {
            return Err(WorkspaceError::Invalid(format!("resources: `{k}` must be requests.NAME or limits.NAME")));
        }
        out[kind][what] = Value::String(v);
    }
    Ok(out)
}

/// The persistent volume claim and the pod of a workspace, as one
/// `kind: List` for `kubectl apply -f -`.
pub fn render(s: &PodSettings, resolved: &Resolved, merged: &MergedConfig) -> Result<Value> {
    let labels = json!({ WORKSPACE_LABEL: s.workspace_id });
    let mut claim = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": { "name": s.name, "labels": labels },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": if s.volume_size.is_empty() { "10Gi" } else { &s.volume_size } } }
        }
    });
    if !s.storage_class.is_empty() {
        claim["spec"]["storageClassName"] = json!(s.storage_class);
    }
    let env: Vec<Value> = merged.container_env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
    let keep_alive = den_driver::keep_alive_script(&merged.entrypoints);
    let mut container = json!({
        "name": CONTAINER,
        "image": s.image,
        "command": ["/bin/sh", "-c", keep_alive],
        "env": env,
        "workingDir": resolved.workspace_folder,
        // The agent's state (host key, which hooks ran) lives on the volume
        // too, so a pod made again after a stop is the same workspace.
        "volumeMounts": [
            { "name": "workspace", "mountPath": resolved.workspace_folder, "subPath": "workspace" },
            { "name": "workspace", "mountPath": den_agent::DATA_DIR, "subPath": "den" },
        ],
    });
    // Root, so that the agent can set users up; it runs the user's
    // processes as remoteUser.
    let mut security = json!({ "runAsUser": 0 });
    if merged.privileged {
        security["privileged"] = json!(true);
    }
    if !merged.cap_add.is_empty() {
        security["capabilities"] = json!({ "add": merged.cap_add });
    }
    container["securityContext"] = security;
    if !s.resources.is_empty() {
        container["resources"] = resources(&s.resources)?;
    }
    let mut spec = json!({
        "containers": [container],
        "volumes": [{ "name": "workspace", "persistentVolumeClaim": { "claimName": s.name } }],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
    });
    if !s.node_selector.is_empty() {
        spec["nodeSelector"] =
            Value::Object(pairs(&s.node_selector)?.into_iter().map(|(k, v)| (k, json!(v))).collect());
    }
    if !s.service_account.is_empty() {
        spec["serviceAccountName"] = json!(s.service_account);
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": s.name, "labels": labels },
        "spec": spec,
    });
    Ok(json!({ "apiVersion": "v1", "kind": "List", "items": [claim, pod] }))
}

/// The pod's phase (`Running`, `Pending` …), or `None` when there is none.
pub fn pod_phase(k: &Kubectl, pod: &str) -> Result<Option<String>> {
    match k.cmd().args(["get", "pod", pod, "-o", "jsonpath={.status.phase}"]).output() {
        Ok(o) => Ok(Some(o.stdout.trim().to_string())),
        Err(e) if e.stderr().contains("NotFound") || e.stderr().contains("not found") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn claim_exists(k: &Kubectl, name: &str) -> Result<bool> {
    match k.cmd().args(["get", "pvc", name, "-o", "name"]).output() {
        Ok(_) => Ok(true),
        Err(e) if e.stderr().contains("NotFound") || e.stderr().contains("not found") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn apply(k: &Kubectl, objects: &Value) -> Result<()> {
    let text = serde_json::to_vec(objects).expect("serialises");
    k.cmd().args(["apply", "-f", "-"]).output_with_stdin(Some(&text))?;
    Ok(())
}

pub fn wait_ready(k: &Kubectl, pod: &str, timeout: &str) -> Result<()> {
    k.cmd().args(["wait", "--for=condition=Ready", &format!("pod/{pod}"), &format!("--timeout={timeout}")]).output()?;
    Ok(())
}

pub fn delete_pod(k: &Kubectl, pod: &str) -> Result<()> {
    k.cmd().args(["delete", "pod", pod, "--ignore-not-found", "--wait=true"]).output()?;
    Ok(())
}

pub fn delete_claim(k: &Kubectl, name: &str) -> Result<()> {
    k.cmd().args(["delete", "pvc", name, "--ignore-not-found"]).output()?;
    Ok(())
}

/// Where the agent goes in a pod.
const POD_AGENT_PATHS: [&str; 2] = ["/usr/local/bin/den", "/tmp/den-agent/den"];

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
    ProviderRun::new(den, &entry, &rec.provider_options, &Subject::workspace(den, &rec.id, rec.local_folder.clone()))
}

pub(crate) fn up(den: &Den, opts: &UpOptions, p: Plan, reporter: &mut dyn Reporter) -> Result<UpResult> {
    let run = ProviderRun::new(den, &p.entry, &p.ws_options, &Subject::workspace(den, &p.id, p.folder.clone()))?;
    run.init(den)?;
    let k = Kubectl::from_run(&run);
    let cfg = &p.resolved.config;
    let Some(image) = cfg.image.clone() else {
        return Err(WorkspaceError::Unsupported(
            "the kubernetes driver runs configs that name an \"image\"; build and push the Dockerfile's image, then name it"
                .into(),
        ));
    };
    let name = crate::plan::container_name(den, &p.id);
    let merged = den_devcontainer::merge(&[], cfg);

    let mut rec = WorkspaceRecord::for_up(p.record.as_ref(), den, p.origin());
    rec.container_name = name.clone();
    rec.image = image.clone();
    rec.workspace_folder = p.resolved.workspace_folder.clone();
    rec.forward_ports = merged.forward_ports.clone();
    rec.credentials = crate::plan::credentials_of(&p.entry, &run.options);
    rec.last_used_at = now();
    rec.save(den)?;

    if opts.reset {
        reporter.phase("create", "removing the old pod and its volume (--reset)");
        delete_pod(&k, &name)?;
        delete_claim(&k, &name)?;
    } else if opts.recreate {
        reporter.phase("create", "removing the old pod (--recreate)");
        delete_pod(&k, &name)?;
    }
    let phase = pod_phase(&k, &name)?;
    let fresh_claim = !claim_exists(&k, &name)?;
    let (mut created, mut started) = (false, false);
    if phase.as_deref() != Some("Running") {
        if phase.is_some() {
            delete_pod(&k, &name)?; // Succeeded, Failed or stuck: make it anew
        }
        reporter.phase("create", &format!("pod {name} from {image}"));
        apply(&k, &render(&settings(&run, &name, &p.id, &image), &p.resolved, &merged)?)?;
        let timeout = run.expand(&p.entry.manifest.agent.timeout);
        wait_ready(&k, &name, if timeout.is_empty() { "10m" } else { &timeout })?;
        created = fresh_claim;
        started = !fresh_claim;
    }
    let candidates: Vec<String> = POD_AGENT_PATHS.iter().map(|s| s.to_string()).collect();
    // The files go into the volume once; a marker in the agent's state (on
    // the volume too) says they arrived, so an `up` that failed before that
    // sends them again.
    let marker = format!("{}/{}", den_agent::DATA_DIR, crate::transfer::CONTENT_MARKER);
    let need_files = fresh_claim
        || opts.reset
        || (phase.as_deref() != Some("Running")
            && k.exec(&name, &["test".into(), "-e".into(), marker]).output().is_err());
    if need_files {
        let mut argv =
            vec!["env".to_string(), format!("{}={}", crate::transfer::CONTENT_DIR_ENV, p.resolved.workspace_folder)];
        argv.extend(inject_argv(&candidates, "receive-content")?);
        let folder = p.folder.clone();
        let feed =
            Feed { request: "{}".into(), content: Box::new(move |out| crate::transfer::send_folder(&folder, out)) };
        let sent = run_agent::<crate::transfer::RemoteUpResult>(&k.exec(&name, &argv), Some(feed), reporter)?;
        if !sent.result.ok {
            return Err(WorkspaceError::Agent(
                sent.result.error.unwrap_or_else(|| "the workspace's files did not arrive".into()),
            ));
        }
    }
    let remote_user =
        merged.remote_user.clone().or_else(|| merged.container_user.clone()).unwrap_or_else(|| "root".into());
    rec.remote_user = remote_user.clone();
    let host = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&p.folder).map_err(WorkspaceError::io(format!("reading {}", p.folder.display())))?;
        (m.uid(), m.gid())
    };
    let agent = &p.entry.manifest.agent;
    let timeout = run.expand(if agent.container_inactivity_timeout.is_empty() {
        &agent.inactivity_timeout
    } else {
        &agent.container_inactivity_timeout
    });
    let req = den_agent::protocol::SetupRequest {
        authorized_key: crate::plan::authorized_key(den, opts, &p.id)?,
        inactivity_timeout: timeout,
        credentials: rec.credentials,
        ..crate::plan::setup_request(&p.id, &p.resolved, &merged, remote_user, host)
    };
    let argv = inject_argv(&candidates, "setup")?;
    reporter.phase("inject", "");
    let agent_run = run_agent::<den_agent::protocol::SetupResult>(
        &k.exec(&name, &argv),
        Some(crate::inject::setup_feed(&req)),
        reporter,
    )?;
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
    let k = Kubectl::from_run(&run_for(den, rec)?);
    Ok(match pod_phase(&k, &rec.container_name)? {
        Some(p) if p == "Running" => Status::Running,
        Some(_) => Status::Stopped,
        None if claim_exists(&k, &rec.container_name)? => Status::Stopped,
        None => Status::NotFound,
    })
}

/// Stopping deletes the pod; the volume with the workspace stays.
pub(crate) fn stop(den: &Den, rec: &WorkspaceRecord, reporter: &mut dyn Reporter) -> Result<()> {
    let k = Kubectl::from_run(&run_for(den, rec)?);
    reporter.phase("stop", &format!("deleting pod {} (its volume stays)", rec.container_name));
    delete_pod(&k, &rec.container_name)
}

pub(crate) fn delete(den: &Den, rec: &WorkspaceRecord, force: bool, reporter: &mut dyn Reporter) -> Result<()> {
    let r = run_for(den, rec).map(|run| Kubectl::from_run(&run)).and_then(|k| {
        delete_pod(&k, &rec.container_name)?;
        delete_claim(&k, &rec.container_name)
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

/// The tunnel: the agent's SSH server through `kubectl exec -i`.
pub(crate) fn tunnel(run: &ProviderRun, rec: &WorkspaceRecord, workdir: Option<&str>) -> Cmd {
    let mut argv = vec![rec.agent_path.clone(), "agent".into(), "ssh-server".into(), "--stdio".into()];
    if let Some(w) = workdir {
        argv.push("--workdir".into());
        argv.push(w.into());
    }
    Kubectl::from_run(run).exec(&rec.container_name, &argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(config: &str) -> (tempfile::TempDir, Resolved) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".devcontainer.json");
        std::fs::write(&file, config).unwrap();
        let loaded = den_devcontainer::load(&file).unwrap();
        let r = den_devcontainer::resolve(&loaded, dir.path(), &|_| None);
        (dir, r)
    }

    fn settings() -> PodSettings {
        PodSettings {
            name: "den-api".into(),
            workspace_id: "api".into(),
            image: "ghcr.io/x/dev:1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn renders_claim_and_pod() {
        let (_d, r) = resolved(
            r#"{"image": "ghcr.io/x/dev:1", "containerEnv": {"A": "1", "B": "two words"}, "workspaceFolder": "/work/api"}"#,
        );
        let merged = den_devcontainer::merge(&[], &r.config);
        let v = render(&settings(), &r, &merged).unwrap();
        assert_eq!(v["kind"], "List");
        let (claim, pod) = (&v["items"][0], &v["items"][1]);
        assert_eq!(claim["kind"], "PersistentVolumeClaim");
        assert_eq!(claim["metadata"]["name"], "den-api");
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
        assert!(claim["spec"].get("storageClassName").is_none());
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["labels"]["den.workspace"], "api");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], "devcontainer");
        assert_eq!(c["image"], "ghcr.io/x/dev:1");
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two words"}]));
        assert_eq!(c["workingDir"], "/work/api");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/work/api");
        assert_eq!(c["volumeMounts"][1], json!({"name": "workspace", "mountPath": "/var/lib/den", "subPath": "den"}));
        assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "den-api");
        assert_eq!(c["command"][0], "/bin/sh");
        assert_eq!(c["securityContext"], json!({"runAsUser": 0}));
        assert!(pod["spec"].get("nodeSelector").is_none());
    }

    #[test]
    fn renders_settings_and_security() {
        let (_d, r) = resolved(r#"{"image": "i", "privileged": true, "capAdd": ["SYS_PTRACE"]}"#);
        let merged = den_devcontainer::merge(&[], &r.config);
        let s = PodSettings {
            resources: "requests.cpu=500m, limits.memory=2Gi".into(),
            node_selector: "disk=ssd,zone=a".into(),
            service_account: "dev".into(),
            storage_class: "fast".into(),
            volume_size: "20Gi".into(),
            ..settings()
        };
        let v = render(&s, &r, &merged).unwrap();
        let (claim, pod) = (&v["items"][0], &v["items"][1]);
        assert_eq!(claim["spec"]["storageClassName"], "fast");
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["resources"], json!({"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}}));
        assert_eq!(
            c["securityContext"],
            json!({"runAsUser": 0, "privileged": true, "capabilities": {"add": ["SYS_PTRACE"]}})
        );
        assert_eq!(pod["spec"]["nodeSelector"], json!({"disk": "ssd", "zone": "a"}));
        assert_eq!(pod["spec"]["serviceAccountName"], "dev");
    }

    #[test]
    fn bad_settings_are_named() {
        let (_d, r) = resolved(r#"{"image": "i"}"#);
        let merged = den_devcontainer::merge(&[], &r.config);
        let e = render(&PodSettings { resources: "cpu=1".into(), ..settings() }, &r, &merged).unwrap_err();
        assert!(e.to_string().contains("`cpu` must be requests.NAME or limits.NAME"), "{e}");
        let e = render(&PodSettings { node_selector: "ssd".into(), ..settings() }, &r, &merged).unwrap_err();
        assert!(e.to_string().contains("`ssd` is not KEY=VALUE"), "{e}");
    }

    #[test]
    fn kubectl_flags() {
        let k = Kubectl { path: "kubectl".into(), context: "dev".into(), config: "/k".into(), namespace: "ns".into() };
        let c = k.exec("den-api", &["true".into()]);
        assert_eq!(
            c.display(),
            "kubectl --context dev --kubeconfig /k --namespace ns exec -i den-api -c devcontainer -- true"
        );
    }
}
