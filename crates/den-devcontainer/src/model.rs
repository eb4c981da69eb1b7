//! The typed model of devcontainer.json, following the Dev Container
//! specification's schema (containers.dev, `devContainer.base.schema.json`).
//!
//! Every property is optional. Properties den does not know are not an error:
//! they stay in the raw document and are passed through untouched.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::kind;
use crate::lifecycle::LifecycleCommand;
use crate::mount::Mount;

/// One devcontainer.json (or one entry of an image's `devcontainer.metadata`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DevContainer {
    pub name: Option<String>,

    // --- where the container comes from -----------------------------------
    pub image: Option<String>,
    pub build: Option<Build>,
    /// Legacy spelling of `build.dockerfile` at the top level.
    pub docker_file: Option<String>,
    /// Legacy spelling of `build.context` at the top level.
    pub context: Option<String>,
    pub docker_compose_file: Option<StringOrList>,
    pub service: Option<String>,
    pub run_services: Option<Vec<String>>,

    // --- the workspace -----------------------------------------------------
    pub workspace_folder: Option<String>,
    pub workspace_mount: Option<String>,

    // --- how the container runs --------------------------------------------
    pub run_args: Option<Vec<String>>,
    pub override_command: Option<bool>,
    pub shutdown_action: Option<ShutdownAction>,
    pub init: Option<bool>,
    pub privileged: Option<bool>,
    pub cap_add: Option<Vec<String>>,
    pub security_opt: Option<Vec<String>>,
    pub mounts: Option<Vec<Mount>>,
    pub container_env: Option<IndexMap<String, String>>,
    pub container_user: Option<String>,
    pub host_requirements: Option<HostRequirements>,

    // --- the user inside ---------------------------------------------------
    pub remote_user: Option<String>,
    #[serde(rename = "updateRemoteUserUID")]
    pub update_remote_user_uid: Option<bool>,
    /// `null` unsets a variable.
    pub remote_env: Option<IndexMap<String, Option<String>>>,
    pub user_env_probe: Option<UserEnvProbe>,

    // --- lifecycle ---------------------------------------------------------
    pub initialize_command: Option<LifecycleCommand>,
    pub on_create_command: Option<LifecycleCommand>,
    pub update_content_command: Option<LifecycleCommand>,
    pub post_create_command: Option<LifecycleCommand>,
    pub post_start_command: Option<LifecycleCommand>,
    pub post_attach_command: Option<LifecycleCommand>,
    pub wait_for: Option<WaitFor>,

    // --- ports ---------------------------------------------------------------
    pub forward_ports: Option<Vec<ForwardPort>>,
    pub ports_attributes: Option<IndexMap<String, PortAttributes>>,
    pub other_ports_attributes: Option<PortAttributes>,
    pub app_port: Option<AppPort>,

    // --- features and tools --------------------------------------------------
    /// Feature id → options (a string version, a boolean, or an object).
    pub features: Option<IndexMap<String, Value>>,
    pub override_feature_install_order: Option<Vec<String>>,
    /// Tool-specific settings (`vscode`, `jetbrains`, `devpod` …), kept as they are.
    pub customizations: Option<IndexMap<String, Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Build {
    pub dockerfile: Option<String>,
    pub context: Option<String>,
    pub target: Option<String>,
    pub args: Option<IndexMap<String, String>>,
    pub cache_from: Option<StringOrList>,
    pub options: Option<Vec<String>>,
}

/// A property that takes one string or a list of them (`cacheFrom`,
/// `dockerComposeFile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s.clone()],
            StringOrList::Many(v) => v.clone(),
        }
    }
}

impl TryFrom<Value> for StringOrList {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(StringOrList::One(s)),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Value::String(s) => Ok(s),
                    other => Err(format!("item {i}: expected a string, found {}", kind(&other))),
                })
                .collect::<Result<_, _>>()
                .map(StringOrList::Many),
            other => Err(format!("expected a string or an array of strings, found {}", kind(&other))),
        }
    }
}

impl From<StringOrList> for Value {
    fn from(s: StringOrList) -> Value {
        match s {
            StringOrList::One(s) => Value::String(s),
            StringOrList::Many(v) => Value::from(v),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShutdownAction {
    None,
    StopContainer,
    StopCompose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserEnvProbe {
    None,
    InteractiveShell,
    LoginShell,
    LoginInteractiveShell,
}

/// Which lifecycle command `up` waits for before it reports the workspace
/// ready (the rest go on in the background). Default: `updateContentCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitFor {
    InitializeCommand,
    OnCreateCommand,
    UpdateContentCommand,
    PostCreateCommand,
    PostStartCommand,
}

/// A port to forward: a number (a port of the container) or `"host:port"`
/// (a port of another service, e.g. in a compose project).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum ForwardPort {
    Port(u16),
    HostPort { host: String, port: u16 },
}

impl TryFrom<Value> for ForwardPort {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .map(ForwardPort::Port)
                .ok_or_else(|| format!("{n} is not a port number (0-65535)")),
            Value::String(s) => {
                let bad = || format!("`{s}` is not a port: expected a number or \"host:port\"");
                // The reference CLI takes a port written as a string too.
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                    return s.parse::<u16>().map(ForwardPort::Port).map_err(|_| bad());
                }
                let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
                if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                    return Err(bad());
                }
                let port = port.parse::<u16>().map_err(|_| bad())?;
                Ok(ForwardPort::HostPort { host: host.to_string(), port })
            }
            other => Err(format!("expected a port number or \"host:port\", found {}", kind(&other))),
        }
    }
}

impl From<ForwardPort> for Value {
    fn from(p: ForwardPort) -> Value {
        match p {
            ForwardPort::Port(p) => Value::from(p),
            ForwardPort::HostPort { host, port } => Value::String(format!("{host}:{port}")),
        }
    }
}

/// `appPort`: one port or several, each a number or a docker `-p` string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct AppPort(pub Vec<String>);

impl TryFrom<Value> for AppPort {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        let one = |x: Value| match x {
            Value::Number(n) if n.as_u64().is_some_and(|p| p <= 65535) => Ok(n.to_string()),
            Value::String(s) => Ok(s),
            other => Err(format!("expected a port number or a string, found {}", kind(&other))),
        };
        match v {
            Value::Array(items) => items.into_iter().map(one).collect::<Result<_, _>>().map(AppPort),
            x => one(x).map(|s| AppPort(vec![s])),
        }
    }
}

impl From<AppPort> for Value {
    fn from(p: AppPort) -> Value {
        Value::from(p.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortAttributes {
    pub label: Option<String>,
    pub on_auto_forward: Option<OnAutoForward>,
    pub elevate_if_needed: Option<bool>,
    pub require_local_port: Option<bool>,
    pub protocol: Option<PortProtocol>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnAutoForward {
    Notify,
    OpenBrowser,
    OpenBrowserOnce,
    OpenPreview,
    Silent,
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    Http,
    Https,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostRequirements {
    pub cpus: Option<u32>,
    /// e.g. `"4gb"`; see [`parse_size`].
    pub memory: Option<String>,
    pub storage: Option<String>,
    pub gpu: Option<GpuRequirement>,
}

/// `hostRequirements.gpu`: `true`, `false`, `"optional"`, or `{cores, memory}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GpuRequirement {
    Required(bool),
    Optional(GpuOptional),
    Detailed {
        #[serde(default)]
        cores: Option<u32>,
        #[serde(default)]
        memory: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuOptional {
    Optional,
}

impl<'de> Deserialize<'de> for GpuRequirement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Detailed {
            #[serde(default)]
            cores: Option<u32>,
            #[serde(default)]
            memory: Option<String>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = GpuRequirement;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, \"optional\" or {\"cores\", \"memory\"}")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(GpuRequirement::Required(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                match s {
                    "optional" => Ok(GpuRequirement::Optional(GpuOptional::Optional)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let d = Detailed::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(GpuRequirement::Detailed { cores: d.cores, memory: d.memory })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a size of `hostRequirements` (`"512mb"`, `"4gb"`, `"1tb"`, bare
/// bytes) into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s.as_str(), ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit {
        "" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dc(v: Value) -> Result<DevContainer, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn forward_ports_both_forms() {
        let c = dc(json!({"forwardPorts": [3000, "db:5432"]})).unwrap();
        assert_eq!(
            c.forward_ports.unwrap(),
            vec![ForwardPort::Port(3000), ForwardPort::HostPort { host: "db".into(), port: 5432 }]
        );
        assert!(dc(json!({"forwardPorts": [70000]})).is_err());
        assert!(dc(json!({"forwardPorts": ["nope"]})).is_err());
        assert!(dc(json!({"forwardPorts": "x"})).is_err());
    }

    #[test]
    fn forward_ports_numeric_strings_are_ports() {
        let c = dc(json!({"forwardPorts": [4000, "3000", "db:8080"]})).unwrap();
        assert_eq!(
            c.forward_ports.unwrap(),
            vec![
                ForwardPort::Port(4000),
                ForwardPort::Port(3000),
                ForwardPort::HostPort { host: "db".into(), port: 8080 }
            ]
        );
        assert!(dc(json!({"forwardPorts": ["70000"]})).is_err());
        assert!(dc(json!({"forwardPorts": ["+30"]})).is_err());
        assert!(dc(json!({"forwardPorts": [""]})).is_err());
        let c = dc(json!({"appPort": ["3000"], "portsAttributes": {"3000": {"label": "web"}}})).unwrap();
        assert_eq!(c.app_port.unwrap().0, vec!["3000"]);
        assert_eq!(c.ports_attributes.unwrap()["3000"].label.as_deref(), Some("web"));
    }

    #[test]
    fn app_port_forms() {
        assert_eq!(dc(json!({"appPort": 3000})).unwrap().app_port.unwrap().0, vec!["3000"]);
        assert_eq!(dc(json!({"appPort": [3000, "8080:80"]})).unwrap().app_port.unwrap().0, vec!["3000", "8080:80"]);
    }

    #[test]
    fn build_and_cache_from() {
        let c = dc(json!({"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"A": "1"},
            "target": "dev", "cacheFrom": "img:cache", "options": ["--network=host"]}}))
        .unwrap();
        let b = c.build.unwrap();
        assert_eq!(b.cache_from.unwrap().to_vec(), vec!["img:cache"]);
        assert_eq!(b.args.unwrap()["A"], "1");
        assert_eq!(b.options.unwrap(), vec!["--network=host"]);
    }

    #[test]
    fn enums_and_unknown_values() {
        let c = dc(json!({"shutdownAction": "stopCompose", "userEnvProbe": "loginInteractiveShell",
            "waitFor": "postCreateCommand"}))
        .unwrap();
        assert_eq!(c.shutdown_action, Some(ShutdownAction::StopCompose));
        assert_eq!(c.user_env_probe, Some(UserEnvProbe::LoginInteractiveShell));
        assert_eq!(c.wait_for, Some(WaitFor::PostCreateCommand));
        let e = dc(json!({"shutdownAction": "halt"})).unwrap_err().to_string();
        assert!(e.contains("unknown variant `halt`"), "{e}");
    }

    #[test]
    fn remote_env_null_unsets() {
        let c = dc(json!({"remoteEnv": {"A": "x", "B": null}})).unwrap();
        let env = c.remote_env.unwrap();
        assert_eq!(env["A"], Some("x".into()));
        assert_eq!(env["B"], None);
    }

    #[test]
    fn host_requirements() {
        let c = dc(json!({"hostRequirements": {"cpus": 2, "memory": "4gb", "storage": "32gb", "gpu": "optional"}}))
            .unwrap();
        let h = c.host_requirements.unwrap();
        assert_eq!(h.gpu, Some(GpuRequirement::Optional(GpuOptional::Optional)));
        assert_eq!(parse_size(h.memory.as_deref().unwrap()), Some(4 << 30));
        let c = dc(json!({"hostRequirements": {"gpu": {"cores": 2, "memory": "8gb"}}})).unwrap();
        assert!(matches!(c.host_requirements.unwrap().gpu, Some(GpuRequirement::Detailed { cores: Some(2), .. })));
        assert_eq!(parse_size("512MB"), Some(512 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1pb"), None);
    }

    #[test]
    fn unknown_properties_are_not_errors() {
        let c = dc(json!({"image": "x", "somethingNew": {"a": 1}})).unwrap();
        assert_eq!(c.image.as_deref(), Some("x"));
    }
}
