//! Merging an image's `devcontainer.metadata` label with the local config.
//!
//! The label holds an array of partial configs (one per base image layer or
//! feature), oldest first; the local devcontainer.json comes last. The spec's
//! rules: booleans like `init`/`privileged` are true if any is; `capAdd`,
//! `securityOpt` and `forwardPorts` are unions; `mounts` are collected and a
//! later mount replaces an earlier one at the same target; lifecycle commands
//! and `customizations` are collected in order (all of them run / apply);
//! `containerEnv`, `remoteEnv` and `portsAttributes` merge per key with the
//! last one winning; `hostRequirements` take the maximum of each; everything
//! else (`remoteUser`, `containerUser`, `userEnvProbe`, `waitFor`,
//! `overrideCommand`, `shutdownAction`, `updateRemoteUserUID`,
//! `otherPortsAttributes`) is the last one set.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lifecycle::LifecycleCommand;
use crate::model::{
    parse_size, DevContainer, ForwardPort, GpuRequirement, HostRequirements, PortAttributes, ShutdownAction,
    UserEnvProbe, WaitFor,
};
use crate::mount::Mount;

/// One entry of the `devcontainer.metadata` label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataEntry {
    /// The feature this entry came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(flatten)]
    pub config: DevContainer,
}

impl MetadataEntry {
    /// The entry as the label holds it: only the properties it sets.
    pub fn to_label_value(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(map) = &mut v {
            map.retain(|_, x| !x.is_null());
        }
        v
    }
}

/// Parses the label's text: an array of entries, or (older images) one object.
pub fn parse_metadata_label(text: &str) -> Result<Vec<MetadataEntry>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("devcontainer.metadata label is not JSON: {e}"))?;
    let items = match v {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        Value::Null => vec![],
        _ => return Err("devcontainer.metadata label must be an array of objects".into()),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, x)| serde_json::from_value(x).map_err(|e| format!("devcontainer.metadata entry {i}: {e}")))
        .collect()
}

/// The configuration the container is made and set up with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergedConfig {
    pub init: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub security_opt: Vec<String>,
    pub entrypoints: Vec<String>,
    pub mounts: Vec<Mount>,
    pub customizations: IndexMap<String, Vec<Value>>,
    pub on_create_commands: Vec<LifecycleCommand>,
    pub update_content_commands: Vec<LifecycleCommand>,
    pub post_create_commands: Vec<LifecycleCommand>,
    pub post_start_commands: Vec<LifecycleCommand>,
    pub post_attach_commands: Vec<LifecycleCommand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<WaitFor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_env_probe: Option<UserEnvProbe>,
    pub remote_env: IndexMap<String, Option<String>>,
    pub container_env: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_command: Option<bool>,
    pub ports_attributes: IndexMap<String, PortAttributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_ports_attributes: Option<PortAttributes>,
    pub forward_ports: Vec<ForwardPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_action: Option<ShutdownAction>,
    #[serde(rename = "updateRemoteUserUID", skip_serializing_if = "Option::is_none")]
    pub update_remote_user_uid: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_requirements: Option<HostRequirements>,
}

impl MergedConfig {
    /// `customizations.vscode.extensions` of every metadata entry and the
    /// config, in order, each once (a `-id` entry removes `id`, as the
    /// reference CLI reads it).
    pub fn vscode_extensions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in self.customizations.get("vscode").into_iter().flatten() {
            for e in entry.get("extensions").and_then(|v| v.as_array()).into_iter().flatten() {
                let Some(id) = e.as_str().map(str::trim).filter(|s| !s.is_empty()) else { continue };
                if let Some(removed) = id.strip_prefix('-') {
                    out.retain(|x| !x.eq_ignore_ascii_case(removed));
                } else if !out.iter().any(|x| x.eq_ignore_ascii_case(id)) {
                    out.push(id.to_string());
                }
            }
        }
        out
    }
}

/// Merges image metadata (oldest first) with the local config (last).
pub fn merge(metadata: &[MetadataEntry], local: &DevContainer) -> MergedConfig {
    let mut m = MergedConfig::default();
    let local_entry = MetadataEntry { config: local.clone(), ..Default::default() };
    let mut mounts: Vec<Mount> = Vec::new();
    for entry in metadata.iter().chain(std::iter::once(&local_entry)) {
        let c = &entry.config;
        m.init |= c.init.unwrap_or(false);
        m.privileged |= c.privileged.unwrap_or(false);
        union(&mut m.cap_add, c.cap_add.iter().flatten().cloned());
        union(&mut m.security_opt, c.security_opt.iter().flatten().cloned());
        union(&mut m.forward_ports, c.forward_ports.iter().flatten().cloned());
        if let Some(e) = &entry.entrypoint {
            m.entrypoints.push(e.clone());
        }
        mounts.extend(c.mounts.iter().flatten().cloned());
        for (tool, settings) in c.customizations.iter().flatten() {
            m.customizations.entry(tool.clone()).or_default().push(settings.clone());
        }
        for (list, cmd) in [
            (&mut m.on_create_commands, &c.on_create_command),
            (&mut m.update_content_commands, &c.update_content_command),
            (&mut m.post_create_commands, &c.post_create_command),
            (&mut m.post_start_commands, &c.post_start_command),
            (&mut m.post_attach_commands, &c.post_attach_command),
        ] {
            if let Some(cmd) = cmd {
                list.push(cmd.clone());
            }
        }
        last(&mut m.wait_for, c.wait_for);
        last(&mut m.remote_user, c.remote_user.clone());
        last(&mut m.container_user, c.container_user.clone());
        last(&mut m.user_env_probe, c.user_env_probe);
        last(&mut m.override_command, c.override_command);
        last(&mut m.shutdown_action, c.shutdown_action);
        last(&mut m.update_remote_user_uid, c.update_remote_user_uid);
        last(&mut m.other_ports_attributes, c.other_ports_attributes.clone());
        m.remote_env.extend(c.remote_env.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        m.container_env.extend(c.container_env.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        m.ports_attributes.extend(c.ports_attributes.iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(h) = &c.host_requirements {
            m.host_requirements = Some(max_requirements(m.host_requirements.take(), h));
        }
    }
    // A later mount at the same target replaces an earlier one, keeping the
    // position of the later one.
    for (i, mount) in mounts.iter().enumerate() {
        let target = mount.target();
        if !mounts[i + 1..].iter().any(|later| later.target() == target) {
            m.mounts.push(mount.clone());
        }
    }
    m
}

fn union<T: PartialEq>(into: &mut Vec<T>, items: impl Iterator<Item = T>) {
    for x in items {
        if !into.contains(&x) {
            into.push(x);
        }
    }
}

fn last<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn max_requirements(a: Option<HostRequirements>, b: &HostRequirements) -> HostRequirements {
    let Some(a) = a else { return b.clone() };
    let max_size = |x: Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => Some(if parse_size(y) > parse_size(&x) { y.clone() } else { x }),
        (x, y) => x.or_else(|| y.clone()),
    };
    let gpu_rank = |g: &Option<GpuRequirement>| match g {
        None | Some(GpuRequirement::Required(false)) => 0,
        Some(GpuRequirement::Optional(_)) => 1,
        Some(GpuRequirement::Required(true)) => 2,
        Some(GpuRequirement::Detailed { .. }) => 3,
    };
    HostRequirements {
        cpus: a.cpus.max(b.cpus),
        memory: max_size(a.memory, &b.memory),
        storage: max_size(a.storage, &b.storage),
        gpu: if gpu_rank(&b.gpu) > gpu_rank(&a.gpu) { b.gpu.clone() } else { a.gpu },
    }
}

#[cfg(test)]
mod vscode_extension_tests {
    use super::*;

    #[test]
    fn extensions_in_order_once_and_removed_with_a_dash() {
        let mut m = MergedConfig::default();
        let entry = |list: serde_json::Value| serde_json::json!({"extensions": list});
        m.customizations.insert(
            "vscode".into(),
            vec![
                entry(serde_json::json!(["a.one", "b.two"])),
                entry(serde_json::json!(["A.ONE", "-b.two", "c.three", 5])),
            ],
        );
        assert_eq!(m.vscode_extensions(), ["a.one", "c.three"]);
        assert!(MergedConfig::default().vscode_extensions().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deeply_nested_label_is_an_error_not_a_crash() {
        for n in [200, 100_000] {
            let label = format!("[{{\"customizations\": {}1{}}}]", "{\"a\":".repeat(n), "}".repeat(n));
            let e = parse_metadata_label(&label).unwrap_err();
            assert!(e.contains("recursion limit"), "{e}");
        }
    }

    fn cfg(v: Value) -> DevContainer {
        serde_json::from_value(v).unwrap()
    }

    fn meta(v: Value) -> Vec<MetadataEntry> {
        parse_metadata_label(&v.to_string()).unwrap()
    }

    #[test]
    fn label_forms() {
        assert_eq!(meta(json!([{"remoteUser": "a"}, {"id": "f", "init": true}])).len(), 2);
        assert_eq!(meta(json!({"remoteUser": "a"}))[0].config.remote_user.as_deref(), Some("a"));
        assert!(parse_metadata_label("nope").is_err());
        assert!(parse_metadata_label("[1]").is_err());
        assert!(parse_metadata_label("null").unwrap().is_empty());
    }

    #[test]
    fn booleans_are_true_if_any() {
        let m = merge(&meta(json!([{"init": true}, {"privileged": false}])), &cfg(json!({"init": false})));
        assert!(m.init);
        assert!(!m.privileged);
    }

    #[test]
    fn lists_are_unions() {
        let m = merge(
            &meta(json!([{"capAdd": ["SYS_PTRACE"], "securityOpt": ["seccomp=unconfined"], "forwardPorts": [3000]}])),
            &cfg(json!({"capAdd": ["SYS_PTRACE", "NET_ADMIN"], "forwardPorts": [3000, "db:5432"]})),
        );
        assert_eq!(m.cap_add, vec!["SYS_PTRACE", "NET_ADMIN"]);
        assert_eq!(m.security_opt, vec!["seccomp=unconfined"]);
        assert_eq!(m.forward_ports.len(), 2);
    }

    #[test]
    fn lifecycle_commands_are_collected_in_order() {
        let m = merge(
            &meta(json!([{"postCreateCommand": "from-image"}, {"id": "feat", "postCreateCommand": ["feat", "x"]}])),
            &cfg(json!({"postCreateCommand": {"a": "local"}, "postStartCommand": "start"})),
        );
        assert_eq!(m.post_create_commands.len(), 3);
        assert_eq!(m.post_create_commands[0], LifecycleCommand::Shell("from-image".into()));
        assert!(matches!(m.post_create_commands[2], LifecycleCommand::Parallel(_)));
        assert_eq!(m.post_start_commands.len(), 1);
        assert!(m.on_create_commands.is_empty());
    }

    #[test]
    fn maps_merge_per_key_last_wins() {
        let m = merge(
            &meta(json!([{"containerEnv": {"A": "1", "B": "1"}, "remoteEnv": {"X": "img", "Y": "img"}}])),
            &cfg(json!({"containerEnv": {"B": "2"}, "remoteEnv": {"Y": null}})),
        );
        assert_eq!(m.container_env["A"], "1");
        assert_eq!(m.container_env["B"], "2");
        assert_eq!(m.remote_env["X"], Some("img".into()));
        assert_eq!(m.remote_env["Y"], None);
    }

    #[test]
    fn scalars_last_one_set_wins() {
        let m = merge(
            &meta(json!([{"remoteUser": "vscode", "containerUser": "root", "overrideCommand": false}])),
            &cfg(json!({"remoteUser": "me"})),
        );
        assert_eq!(m.remote_user.as_deref(), Some("me"));
        assert_eq!(m.container_user.as_deref(), Some("root"));
        assert_eq!(m.override_command, Some(false));
    }

    #[test]
    fn mounts_later_target_wins() {
        let m = merge(
            &meta(json!([{"mounts": ["type=volume,src=a,dst=/cache", "type=volume,src=b,dst=/other"]}])),
            &cfg(json!({"mounts": [{"type": "bind", "source": "/host", "target": "/cache"}]})),
        );
        let targets: Vec<_> = m.mounts.iter().map(|x| x.target()).collect();
        assert_eq!(targets, vec!["/other", "/cache"]);
        assert_eq!(m.mounts[1].to_docker_arg(), "type=bind,src=/host,dst=/cache");
    }

    #[test]
    fn customizations_collected_per_tool() {
        let m = merge(
            &meta(json!([{"customizations": {"vscode": {"extensions": ["a"]}}}])),
            &cfg(json!({"customizations": {"vscode": {"extensions": ["b"]}, "den": {"x": 1}}})),
        );
        assert_eq!(m.customizations["vscode"].len(), 2);
        assert_eq!(m.customizations["den"], vec![json!({"x": 1})]);
    }

    #[test]
    fn host_requirements_take_the_max() {
        let m = merge(
            &meta(json!([{"hostRequirements": {"cpus": 4, "memory": "8gb", "gpu": "optional"}}])),
            &cfg(json!({"hostRequirements": {"cpus": 2, "memory": "16gb", "storage": "10gb"}})),
        );
        let h = m.host_requirements.unwrap();
        assert_eq!(h.cpus, Some(4));
        assert_eq!(h.memory.as_deref(), Some("16gb"));
        assert_eq!(h.storage.as_deref(), Some("10gb"));
        assert!(matches!(h.gpu, Some(GpuRequirement::Optional(_))));
    }

    #[test]
    fn entrypoints_from_features() {
        let m = merge(
            &meta(json!([{"id": "docker-in-docker", "entrypoint": "/usr/local/share/dind.sh"}])),
            &cfg(json!({})),
        );
        assert_eq!(m.entrypoints, vec!["/usr/local/share/dind.sh"]);
    }
}
