//! The `provider.yaml` model, compatible with DevPod's schema.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ProviderError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Manifest {
    pub name: String,
    #[serde(deserialize_with = "scalar")]
    pub version: String,
    pub description: String,
    pub icon: String,
    pub icon_dark: String,
    pub home: String,
    pub source: Option<serde_norway::Value>,
    pub option_groups: Vec<OptionGroup>,
    pub options: IndexMap<String, ProviderOption>,
    pub agent: AgentConfig,
    #[serde(deserialize_with = "exec_commands")]
    pub exec: IndexMap<String, StrArray>,
    pub binaries: IndexMap<String, Vec<Binary>>,
    /// DevPod's `exec.proxy` (proxy providers hand whole commands to another
    /// tool); kept so that such manifests load, refused when used.
    #[serde(skip)]
    pub exec_proxy: bool,
    /// `exec` entries that are maps of commands (`proxy`, `daemon` …): den
    /// runs none of them; their names, so that a manifest using them loads.
    #[serde(skip)]
    pub exec_groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OptionGroup {
    pub name: String,
    pub options: Vec<String>,
    pub default_visible: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderOption {
    pub description: String,
    pub display_name: String,
    #[serde(deserialize_with = "scalar")]
    pub default: String,
    #[serde(deserialize_with = "str_bool")]
    pub required: bool,
    #[serde(deserialize_with = "str_bool")]
    pub password: bool,
    #[serde(deserialize_with = "str_bool")]
    pub mutable: bool,
    #[serde(deserialize_with = "str_bool")]
    pub hidden: bool,
    #[serde(deserialize_with = "str_bool")]
    pub local: bool,
    /// Shared by every workspace of the provider, not set per workspace.
    #[serde(deserialize_with = "str_bool")]
    pub global: bool,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    pub sub_options_command: String,
    pub cache: String,
    pub validation_pattern: String,
    pub validation_message: String,
    pub suggestions: Vec<String>,
    #[serde(rename = "enum")]
    pub enum_values: Vec<OptionEnum>,
}

/// An allowed value: `- a` or `- {value: a, displayName: A}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionEnum {
    pub value: String,
    #[serde(skip_serializing_if = "String::is_empty", rename = "displayName")]
    pub display_name: String,
}

impl<'de> Deserialize<'de> for OptionEnum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Full {
            #[serde(deserialize_with = "scalar")]
            value: String,
            #[serde(default)]
            display_name: String,
        }
        let v = serde_norway::Value::deserialize(d)?;
        if let Some(s) = scalar_text(&v) {
            return Ok(OptionEnum { value: s, display_name: String::new() });
        }
        let f: Full = serde_norway::from_value(v).map_err(serde::de::Error::custom)?;
        Ok(OptionEnum { value: f.value, display_name: f.display_name })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentConfig {
    pub path: String,
    pub data_path: String,
    pub driver: String,
    pub local: StrBool,
    pub inactivity_timeout: String,
    pub container_inactivity_timeout: String,
    pub inject_git_credentials: StrBool,
    pub inject_docker_credentials: StrBool,
    pub docker: AgentDocker,
    pub binaries: IndexMap<String, Vec<Binary>>,
    pub kubernetes: Option<serde_norway::Value>,
    pub custom: Option<serde_norway::Value>,
    pub dockerless: Option<serde_norway::Value>,
    pub timeout: String,
    #[serde(rename = "downloadURL")]
    pub download_url: String,
    pub exec: AgentExec,
}

/// Commands the agent runs on the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentExec {
    /// How the machine turns itself off after `inactivityTimeout`.
    pub shutdown: StrArray,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentDocker {
    pub path: String,
    pub install: StrBool,
    pub builder: String,
    pub env: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Binary {
    pub os: String,
    pub arch: String,
    pub path: String,
    pub checksum: String,
    pub archive_path: String,
    pub name: String,
}

/// A boolean that manifests may write as `true` or `"true"` (or as an option
/// reference like `"${INJECT}"`, resolved later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StrBool(#[serde(deserialize_with = "scalar")] pub String);

impl StrBool {
    /// The value after option expansion; empty means `default`.
    pub fn is_true_or(&self, default: bool) -> bool {
        match self.0.trim().to_ascii_lowercase().as_str() {
            "" => default,
            "true" | "yes" | "1" => true,
            _ => false,
        }
    }
}

/// A command that manifests may write as one string or as a list of lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StrArray(pub Vec<String>);

impl StrArray {
    /// The script to give `sh -c`: the lines joined by newlines.
    pub fn script(&self) -> String {
        self.0.join("\n")
    }
}

impl<'de> Deserialize<'de> for StrArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_norway::Value::deserialize(d)?;
        if let Some(s) = scalar_text(&v) {
            return Ok(StrArray(vec![s]));
        }
        match v {
            serde_norway::Value::Sequence(items) => items
                .iter()
                .map(|i| scalar_text(i).ok_or_else(|| serde::de::Error::custom("expected a list of strings")))
                .collect::<Result<_, _>>()
                .map(StrArray),
            serde_norway::Value::Null => Ok(StrArray::default()),
            _ => Err(serde::de::Error::custom("expected a string or a list of strings")),
        }
    }
}

fn scalar_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A string field that YAML may give as a number or boolean (as Go's yaml
/// decoding into a string field accepts).
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_norway::Value::deserialize(d)?;
    scalar_text(&v).ok_or_else(|| serde::de::Error::custom("expected a string, number or boolean"))
}

/// `exec`: named commands; `proxy` (a map of commands) is set aside.
fn exec_commands<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, StrArray>, D::Error> {
    let raw: IndexMap<String, serde_norway::Value> = Option::deserialize(d)?.unwrap_or_default();
    let mut out = IndexMap::new();
    for (name, v) in raw {
        if matches!(v, serde_norway::Value::Mapping(_)) {
            out.insert(name, StrArray(vec![GROUP_MARKER.to_string()]));
            continue;
        }
        let cmd: StrArray =
            serde_norway::from_value(v).map_err(|e| serde::de::Error::custom(format!("exec.{name}: {e}")))?;
        out.insert(name, cmd);
    }
    Ok(out)
}

const GROUP_MARKER: &str = "\0group";

fn str_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(StrBool(scalar(d)?).is_true_or(false))
}

impl Binary {
    /// The file name the binary is installed as: `name`, else the last part
    /// of `archivePath` or `path`, else the binary's key. Never a path: a
    /// derived part that is not a plain file name gives way to the key.
    pub fn file_name(&self, key: &str) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        let from = if self.archive_path.is_empty() { &self.path } else { &self.archive_path };
        from.rsplit('/').next().filter(|s| is_plain_file_name(s)).unwrap_or(key).to_string()
    }
}

/// A name that stays inside the folder it is joined to: one path component,
/// not `.` or `..`, no NUL.
pub fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])
}

/// A provider's name: letters, digits, `-` and `_` (it names a folder).
pub fn is_provider_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Limits on a manifest, which may come from a stranger: far above any real
/// one (DevPod's largest are tens of KiB with a few dozen options), low
/// enough that parsing stays fast and small.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
pub const MAX_FLOW_DEPTH: usize = 64;
pub const MAX_OPTIONS: usize = 512;
pub const MAX_PATTERN_BYTES: usize = 4096;

/// Refuses text whose `[`/`{` nesting is deeper than [`MAX_FLOW_DEPTH`]
/// before the YAML parser sees it (its time grows with the square of the
/// depth). Brackets inside quoted strings are not told apart: a real
/// manifest has nowhere near that many open at once.
fn check_flow_depth(text: &str) -> Result<(), (usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    for c in text.chars() {
        col += 1;
        match c {
            '\n' => {
                line += 1;
                col = 0;
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err((line, col));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl Manifest {
    /// Parses a manifest; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ProviderError> {
        let bad = |message: String| ProviderError::Manifest { origin: origin.to_string(), message };
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(bad(format!("it has {} bytes; a manifest may have at most {MAX_MANIFEST_BYTES}", text.len())));
        }
        if let Err((line, col)) = check_flow_depth(text) {
            return Err(bad(format!("line {line} column {col}: nested deeper than {MAX_FLOW_DEPTH} levels")));
        }
        let mut m: Manifest = serde_norway::from_str(text)
            .map_err(|e| ProviderError::Manifest { origin: origin.to_string(), message: e.to_string() })?;
        let groups: Vec<String> = m
            .exec
            .iter()
            .filter(|(_, c)| c.0.first().is_some_and(|l| l == GROUP_MARKER))
            .map(|(n, _)| n.clone())
            .collect();
        for g in &groups {
            m.exec.shift_remove(g);
        }
        m.exec_proxy = groups.iter().any(|g| g == "proxy");
        m.exec_groups = groups;
        if m.name.trim().is_empty() {
            return Err(ProviderError::Manifest { origin: origin.into(), message: "`name` is missing".into() });
        }
        if !is_provider_name(&m.name) {
            return Err(ProviderError::Manifest {
                origin: origin.into(),
                message: format!("name `{}` may only hold letters, digits, - and _", m.name),
            });
        }
        if m.options.len() > MAX_OPTIONS {
            return Err(bad(format!("it has {} options; a manifest may have at most {MAX_OPTIONS}", m.options.len())));
        }
        for (name, o) in &m.options {
            if !o.validation_pattern.is_empty() {
                validation_regex(&o.validation_pattern)
                    .map_err(|e| bad(format!("option {name}: validationPattern: {e}")))?;
            }
        }
        for (key, entries) in &m.binaries {
            if !is_plain_file_name(key) {
                return Err(bad(format!("binaries: `{key}` must be a plain name (no `/`, not `.` or `..`)")));
            }
            for (i, b) in entries.iter().enumerate() {
                if !b.name.is_empty() && !is_plain_file_name(&b.name) {
                    return Err(bad(format!(
                        "binaries.{key}[{i}].name: `{}` must be a plain file name (no `/`, not `.` or `..`)",
                        b.name
                    )));
                }
            }
        }
        Ok(m)
    }

    /// An `exec` command by name (`command`, `create`, `status` …).
    pub fn exec(&self, name: &str) -> Option<&StrArray> {
        self.exec.get(name).filter(|c| !c.0.iter().all(|l| l.trim().is_empty()))
    }

    /// A machine provider makes machines (it has `exec.create`).
    pub fn is_machine_provider(&self) -> bool {
        self.exec("create").is_some()
    }
}

/// A `validationPattern`, compiled within bounds: a pattern of a few KiB
/// at most, whose compiled form may not grow past 1 MiB.
pub(crate) fn validation_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!("{} bytes long; at most {MAX_PATTERN_BYTES} are allowed", pattern.len()));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| e.to_string())
}

const BUILTIN: &[(&str, &str)] = &[
    ("docker", include_str!("../../../providers/docker/provider.yaml")),
    ("podman", include_str!("../../../providers/podman/provider.yaml")),
    ("ssh", include_str!("../../../providers/ssh/provider.yaml")),
    ("kubernetes", include_str!("../../../providers/kubernetes/provider.yaml")),
];

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}

/// A built-in provider's manifest text.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_docker_loads() {
        let m = Manifest::parse(builtin("docker").unwrap(), "docker").unwrap();
        assert_eq!(m.name, "docker");
        assert_eq!(m.options["DOCKER_PATH"].default, "docker");
        assert!(m.options.contains_key("DOCKER_HOST"));
        assert!(m.options.contains_key("INACTIVITY_TIMEOUT"));
        assert!(m.agent.local.is_true_or(false));
        assert_eq!(m.agent.docker.path, "${DOCKER_PATH}");
        assert!(!m.is_machine_provider());
        assert!(m.exec("command").unwrap().script().contains("${COMMAND}"));
    }

    #[test]
    fn builtin_podman_loads() {
        let m = Manifest::parse(builtin("podman").unwrap(), "podman").unwrap();
        assert_eq!(m.options["PODMAN_PATH"].default, "podman");
        assert_eq!(m.agent.docker.path, "${PODMAN_PATH}");
        assert!(m.agent.local.is_true_or(false));
    }

    #[test]
    fn builtin_ssh_loads() {
        let m = Manifest::parse(builtin("ssh").unwrap(), "ssh").unwrap();
        assert!(m.options["HOST"].required);
        assert!(!m.agent.local.is_true_or(false), "its workspaces are on another host");
        assert!(!m.is_machine_provider());
        assert_eq!(m.agent.path, "${AGENT_PATH}");
        assert!(m.exec("command").unwrap().script().contains("\"${COMMAND}\""));
    }

    #[test]
    fn builtin_kubernetes_loads() {
        let m = Manifest::parse(builtin("kubernetes").unwrap(), "kubernetes").unwrap();
        assert!(m.agent.local.is_true_or(false));
        assert_eq!(m.agent.driver, "kubernetes");
        let k = m.agent.kubernetes.as_ref().unwrap();
        assert_eq!(k.get("namespace").and_then(|v| v.as_str()), Some("${KUBERNETES_NAMESPACE}"));
        assert_eq!(m.options["DISK_SIZE"].default, "10Gi");
    }

    /// A manifest in DevPod's style with every schema field, unchanged.
    #[test]
    fn devpod_style_manifest_with_every_field() {
        let text = r#"
name: my-cloud
version: v0.0.1
description: a test
icon: https://x/icon.svg
iconDark: https://x/icon-dark.svg
home: https://x
source:
  github: org/repo
optionGroups:
  - name: Machine
    defaultVisible: true
    options: [REGION, SIZE]
options:
  REGION:
    description: where
    required: true
    default: eu-1
    enum: [eu-1, {value: us-1, displayName: US}]
    global: true
    mutable: false
  SIZE:
    default: 4
    validationPattern: ^[0-9]+$
    validationMessage: a number
    suggestions: ["2", "4"]
    type: number
  TOKEN:
    password: true
    command: echo secret
    hidden: "true"
    local: true
    cache: 5m
    subOptionsCommand: echo
    displayName: Token
agent:
  path: /var/lib/toolbox/devpod
  dataPath: /var/lib/devpod
  driver: docker
  local: "false"
  inactivityTimeout: 10m
  containerInactivityTimeout: 1h
  injectGitCredentials: true
  injectDockerCredentials: "${INJECT}"
  timeout: 5m
  downloadURL: https://x/agent
  exec:
    shutdown: |-
      ${CLOUD_CLI} stop self
  docker:
    path: docker
    install: false
    builder: buildkit
    env:
      DOCKER_HOST: unix:///x
  kubernetes:
    namespace: x
  custom:
    findDevContainer: echo
  binaries:
    CLOUD_CLI:
      - os: linux
        arch: amd64
        path: https://x/cli
        checksum: abc
        archivePath: bin/cli
        name: cli
binaries:
  CLOUD_CLI:
    - os: linux
      arch: amd64
      path: ./cli
exec:
  init: ${CLOUD_CLI} version
  command: ${CLOUD_CLI} ssh "${MACHINE_ID}" -- "${COMMAND}"
  create:
    - ${CLOUD_CLI} create "${MACHINE_ID}"
    - echo done
  delete: ${CLOUD_CLI} delete "${MACHINE_ID}"
  start: ${CLOUD_CLI} start "${MACHINE_ID}"
  stop: ${CLOUD_CLI} stop "${MACHINE_ID}"
  status: ${CLOUD_CLI} status "${MACHINE_ID}"
  proxy:
    up: ${CLOUD_CLI} up
    ssh: ${CLOUD_CLI} ssh
  daemon:
    start: ${CLOUD_CLI} daemon start
somethingFromTheFuture: 1
"#;
        let m = Manifest::parse(text, "test").unwrap();
        assert!(m.is_machine_provider());
        assert_eq!(m.options["SIZE"].default, "4");
        assert!(m.options["REGION"].required);
        assert!(m.options["TOKEN"].hidden);
        assert_eq!(m.options["REGION"].enum_values[1].value, "us-1");
        assert_eq!(m.options["REGION"].enum_values[1].display_name, "US");
        assert_eq!(m.exec("create").unwrap().script(), "${CLOUD_CLI} create \"${MACHINE_ID}\"\necho done");
        assert!(!m.agent.local.is_true_or(true));
        assert!(m.agent.inject_git_credentials.is_true_or(false));
        assert_eq!(m.agent.binaries["CLOUD_CLI"][0].archive_path, "bin/cli");
        assert_eq!(m.binaries["CLOUD_CLI"][0].path, "./cli");
        assert_eq!(m.option_groups[0].options, vec!["REGION", "SIZE"]);
        assert_eq!(m.agent.exec.shutdown.script(), "${CLOUD_CLI} stop self");
        assert_eq!(m.agent.download_url, "https://x/agent");
        assert!(m.exec_proxy && m.exec("proxy").is_none());
        assert_eq!(m.exec_groups, ["proxy", "daemon"]);
    }

    #[test]
    fn bad_manifests() {
        assert!(Manifest::parse("name: [", "x")
            .unwrap_err()
            .to_string()
            .starts_with("x: not a valid provider manifest"));
        assert!(Manifest::parse("version: 1", "x").unwrap_err().to_string().contains("`name` is missing"));
        assert!(Manifest::parse("name: a b", "x").is_err());
        let e = Manifest::parse("name: a\noptions:\n  X:\n    validationPattern: '('\n", "x").unwrap_err();
        assert!(e.to_string().contains("option X: validationPattern"), "{e}");
    }

    #[test]
    fn binary_names_must_stay_in_their_folder() {
        let with = |key: &str, name: &str| {
            format!("name: p\nbinaries:\n  {key}:\n    - os: linux\n      arch: amd64\n      path: /x/tool\n      name: '{name}'\n")
        };
        for bad in ["/etc/cron.d/x", "../../../x", "..", "a/b"] {
            let e = Manifest::parse(&with("TOOL", bad), "m").unwrap_err().to_string();
            assert!(e.contains("binaries.TOOL[0].name"), "{bad}: {e}");
        }
        let e = Manifest::parse(&with("'..'", "ok"), "m").unwrap_err().to_string();
        assert!(e.contains("binaries: `..`"), "{e}");
        assert!(Manifest::parse(&with("TOOL", "tool-v2"), "m").is_ok());
        let derived = Binary { path: "https://h/dl/..".into(), ..Default::default() };
        assert_eq!(derived.file_name("TOOL"), "TOOL");
        let derived = Binary { path: "https://h/dl/kubectl".into(), ..Default::default() };
        assert_eq!(derived.file_name("TOOL"), "kubectl");
    }

    #[test]
    fn hostile_sizes_are_refused_quickly() {
        let start = std::time::Instant::now();
        let deep = format!("name: p\nx: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = Manifest::parse(&deep, "m").unwrap_err().to_string();
        assert!(e.contains("line 2 column") && e.contains("nested deeper than"), "{e}");
        let big = format!("name: p\nx: '{}'\n", "a".repeat(MAX_MANIFEST_BYTES));
        assert!(Manifest::parse(&big, "m").unwrap_err().to_string().contains("at most"));
        let pattern = format!("name: p\noptions:\n  X:\n    validationPattern: '{}'\n", "a{1000}".repeat(200));
        let e = Manifest::parse(&pattern, "m").unwrap_err().to_string();
        assert!(e.contains("option X: validationPattern"), "{e}");
        let mut many = String::from("name: p\noptions:\n");
        for i in 0..=MAX_OPTIONS {
            many.push_str(&format!("  O{i}:\n    default: x\n"));
        }
        assert!(Manifest::parse(&many, "m").unwrap_err().to_string().contains("options; a manifest may have at most"));
        // Not a timing assertion: a hang would show as a stuck test.
        eprintln!("hostile manifests refused in {:?}", start.elapsed());
    }
}
