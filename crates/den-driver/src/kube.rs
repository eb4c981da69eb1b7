//! kubectl as den's pod driver: a workspace is one pod and one persistent
//! volume claim (the workspace folder and the agent's state), rendered as
//! JSON and applied with `kubectl apply -f -`.

use den_process::Cmd;
use serde_json::{json, Value};

use crate::{keep_alive_script, DriverError, WORKSPACE_LABEL};

/// The container's name in the pod.
pub const CONTAINER: &str = "devcontainer";

/// kubectl with the provider's context, kubeconfig and namespace.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub path: String,
    pub context: String,
    pub config: String,
    pub namespace: String,
}

/// What the pod is made from, from the provider.
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

/// What the workspace's container is made from, from its configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodContainer {
    pub workspace_folder: String,
    /// Where the agent keeps its state; on the volume too, so that a pod
    /// made again after a stop is the same workspace.
    pub agent_data_dir: String,
    pub env: Vec<(String, String)>,
    pub entrypoints: Vec<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
}

fn pairs(text: &str) -> Result<Vec<(String, String)>, DriverError> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| DriverError::Setting(format!("`{p}` is not KEY=VALUE")))
        })
        .collect()
}

fn resources(text: &str) -> Result<Value, DriverError> {
    let bad = |k: &str| DriverError::Setting(format!("resources: `{k}` must be requests.NAME or limits.NAME"));
    let mut out = json!({});
    for (k, v) in pairs(text)? {
        let (kind, what) = k.split_once('.').ok_or_else(|| bad(&k))?;
        if kind != "requests" && kind != "limits" {
            return Err(bad(&k));
        }
        out[kind][what] = Value::String(v);
    }
    Ok(out)
}

/// The persistent volume claim and the pod of a workspace, as one
/// `kind: List` for `kubectl apply -f -`.
pub fn render(s: &PodSettings, c: &PodContainer) -> Result<Value, DriverError> {
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
    let env: Vec<Value> = c.env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
    let mut container = json!({
        "name": CONTAINER,
        "image": s.image,
        "command": ["/bin/sh", "-c", keep_alive_script(&c.entrypoints)],
        "env": env,
        "workingDir": c.workspace_folder,
        "volumeMounts": [
            { "name": "workspace", "mountPath": c.workspace_folder, "subPath": "workspace" },
            { "name": "workspace", "mountPath": c.agent_data_dir, "subPath": "den" },
        ],
    });
    // Root, so that the agent can set users up; it runs the user's
    // processes as remoteUser.
    let mut security = json!({ "runAsUser": 0 });
    if c.privileged {
        security["privileged"] = json!(true);
    }
    if !c.cap_add.is_empty() {
        security["capabilities"] = json!({ "add": c.cap_add });
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

/// kubectl's word that the pod is gone: `pods "NAME" not found`.
pub fn says_pod_not_found(stderr: &str) -> bool {
    stderr.contains("pods \"") && stderr.contains("not found")
}

fn not_found(e: &den_process::ProcessError) -> bool {
    e.stderr().contains("NotFound") || e.stderr().contains("not found")
}

impl Kubectl {
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

    /// The pod's phase (`Running`, `Pending` …), or `None` when there is none.
    pub fn pod_phase(&self, pod: &str) -> Result<Option<String>, DriverError> {
        match self.cmd().args(["get", "pod", pod, "-o", "jsonpath={.status.phase}"]).output() {
            Ok(o) => Ok(Some(o.stdout.trim().to_string())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn claim_exists(&self, name: &str) -> Result<bool, DriverError> {
        match self.cmd().args(["get", "pvc", name, "-o", "name"]).output() {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn apply(&self, objects: &Value) -> Result<(), DriverError> {
        let text = serde_json::to_vec(objects).expect("serialises");
        self.cmd().args(["apply", "-f", "-"]).output_with_stdin(Some(&text))?;
        Ok(())
    }

    pub fn wait_ready(&self, pod: &str, timeout: &str) -> Result<(), DriverError> {
        self.cmd()
            .args(["wait", "--for=condition=Ready", &format!("pod/{pod}"), &format!("--timeout={timeout}")])
            .output()?;
        Ok(())
    }

    pub fn delete_pod(&self, pod: &str) -> Result<(), DriverError> {
        self.cmd().args(["delete", "pod", pod, "--ignore-not-found", "--wait=true"]).output()?;
        Ok(())
    }

    pub fn delete_claim(&self, name: &str) -> Result<(), DriverError> {
        self.cmd().args(["delete", "pvc", name, "--ignore-not-found"]).output()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_not_found_phrase() {
        assert!(says_pod_not_found("Error from server (NotFound): pods \"den-x\" not found"));
        assert!(!says_pod_not_found("error: container den is not valid for pod den-x"));
        assert!(!says_pod_not_found("Error: No such container: den-x"));
        assert!(!says_pod_not_found(""));
    }

    fn settings() -> PodSettings {
        PodSettings {
            name: "den-api".into(),
            workspace_id: "api".into(),
            image: "ghcr.io/x/dev:1".into(),
            ..Default::default()
        }
    }

    fn container() -> PodContainer {
        PodContainer {
            workspace_folder: "/work/api".into(),
            agent_data_dir: "/var/lib/den".into(),
            env: vec![("A".into(), "1".into()), ("B".into(), "two words".into())],
            ..Default::default()
        }
    }

    #[test]
    fn renders_claim_and_pod() {
        let v = render(&settings(), &container()).unwrap();
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
        let c = PodContainer { privileged: true, cap_add: vec!["SYS_PTRACE".into()], ..container() };
        let s = PodSettings {
            resources: "requests.cpu=500m, limits.memory=2Gi".into(),
            node_selector: "disk=ssd,zone=a".into(),
            service_account: "dev".into(),
            storage_class: "fast".into(),
            volume_size: "20Gi".into(),
            ..settings()
        };
        let v = render(&s, &c).unwrap();
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
        let e = render(&PodSettings { resources: "cpu=1".into(), ..settings() }, &container()).unwrap_err();
        assert!(e.to_string().contains("`cpu` must be requests.NAME or limits.NAME"), "{e}");
        let e = render(&PodSettings { node_selector: "ssd".into(), ..settings() }, &container()).unwrap_err();
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
