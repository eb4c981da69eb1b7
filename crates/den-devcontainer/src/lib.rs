//! devcontainer.json as the Dev Container specification means it.
//!
//! Parse JSONC with positions ([`jsonc`]), find the file ([`find_config`]),
//! check it against the typed model ([`DevContainer`]), substitute variables
//! ([`substitute`]) and merge image metadata ([`merge`]). Reading files is the
//! only I/O here; nothing knows about docker.

pub mod discover;
pub mod error;
pub mod jsonc;
pub mod lifecycle;
pub mod merge;
pub mod model;
pub mod mount;
pub mod substitute;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use discover::find_config;
pub use error::{ConfigError, Pos};
pub use jsonc::Document;
pub use lifecycle::{LifecycleCommand, Step};
pub use merge::{merge, parse_metadata_label, MergedConfig, MetadataEntry};
pub use model::DevContainer;
pub use mount::Mount;

/// A configuration file, parsed and checked, before substitution.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub document: Document,
    pub config: DevContainer,
}

/// Reads, parses and checks one devcontainer.json.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    use std::io::Read;
    let io = |source| ConfigError::Io { path: path.to_path_buf(), source };
    // One byte past the limit at most, so that a huge (or endless) file is
    // refused without being read whole; its size is checked before its
    // text, so a character cut at the limit does not hide the real reason.
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(jsonc::MAX_BYTES as u64 + 1).read_to_end(&mut bytes)).map_err(io)?;
    if bytes.len() > jsonc::MAX_BYTES {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            pos: Pos { line: 1, column: 1 },
            message: format!("the file has more than {} bytes; at most that many are read", jsonc::MAX_BYTES),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        // Located like any other syntax error: where the valid text ends.
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).expect("valid up to here");
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::Syntax {
            path: path.to_path_buf(),
            pos: Pos { line, column },
            message: "the file is not valid UTF-8 here".into(),
        }
    })?;
    load_str(&text, path)
}

/// Parses and checks configuration text; `path` names it in errors.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let document = jsonc::parse(text, path)?;
    let config = typecheck(&document, path)?;
    Ok(Loaded { path: path.to_path_buf(), document, config })
}

/// Checks the document against the typed model; a mismatch names the
/// property and where it is in the file.
fn typecheck(doc: &Document, path: &Path) -> Result<DevContainer, ConfigError> {
    if !doc.value.is_object() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            pos: doc.position(""),
            property: "(root)".into(),
            message: format!("expected a JSON object, found {}", error::kind(&doc.value)),
        });
    }
    serde_path_to_error::deserialize::<_, DevContainer>(&doc.value).map_err(|e| {
        let mut pointer = String::new();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&jsonc::pointer_token(key));
                }
                _ => {}
            }
        }
        ConfigError::Invalid {
            path: path.to_path_buf(),
            pos: doc.position(&pointer),
            property: e.path().to_string(),
            message: e.inner().to_string(),
        }
    })
}

/// A configuration with everything substituted that is known before a
/// container exists. `${containerEnv:…}` stays for the agent.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config_file: PathBuf,
    pub local_folder: PathBuf,
    /// The whole document after substitution, unknown properties included.
    pub raw: Value,
    pub config: DevContainer,
    /// Where the project is inside the container.
    pub workspace_folder: String,
    /// The mount that puts the project there (`None` for compose, which
    /// mounts it itself).
    pub workspace_mount: Option<String>,
    pub devcontainer_id: String,
    /// The file as parsed, for pointing at a value in it.
    pub document: Document,
    /// `remoteEnv` as written, before substitution (see [`Resolved::label_entry`]).
    remote_env_as_written: Option<Value>,
}

impl Resolved {
    /// What den records of the configuration in the container's
    /// `devcontainer.metadata` label: the substituted document, except
    /// `remoteEnv`, which keeps its `${localEnv:…}` text. Its values are
    /// often tokens, and labels are readable by anyone who may `docker
    /// inspect`; the agent gets the values through den's private channel.
    pub fn label_entry(&self) -> Value {
        let mut entry = self.raw.clone();
        if let (Some(obj), Some(env)) = (entry.as_object_mut(), &self.remote_env_as_written) {
            obj.insert("remoteEnv".into(), env.clone());
        }
        entry
    }

    /// A located error about the value at `pointer` (`/features/x`).
    pub fn invalid_at(&self, pointer: &str, property: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.config_file.clone(),
            pos: self.document.position(pointer),
            property: property.to_string(),
            message,
        }
    }

    /// Substitutes the variables known before the container exists, as
    /// in the configuration itself, in text from elsewhere (a Feature's
    /// `containerEnv`).
    pub fn substitute_text(&self, text: &str, local_env: substitute::EnvLookup<'_>) -> String {
        self.with_context(local_env, |ctx| substitute::substitute_str(text, ctx))
    }

    /// Image metadata entries (a base image's, each Feature's) with the
    /// configuration's variables substituted, mounts field by field, as
    /// the reference CLI substitutes them before it merges them. The
    /// image label keeps them as written.
    pub fn substitute_metadata(
        &self,
        entries: &[MetadataEntry],
        local_env: substitute::EnvLookup<'_>,
    ) -> Vec<MetadataEntry> {
        self.with_context(local_env, |ctx| {
            entries
                .iter()
                .map(|e| {
                    let mut v = e.to_label_value();
                    substitute_config(&mut v, ctx);
                    serde_json::from_value(v).unwrap_or_else(|_| e.clone())
                })
                .collect()
        })
    }

    fn with_context<T>(
        &self,
        local_env: substitute::EnvLookup<'_>,
        f: impl FnOnce(&substitute::Context<'_>) -> T,
    ) -> T {
        let local = self.local_folder.to_string_lossy();
        f(&substitute::Context {
            local_env,
            local_workspace_folder: Some(&local),
            container_workspace_folder: Some(&self.workspace_folder),
            devcontainer_id: Some(&self.devcontainer_id),
            container_env: None,
        })
    }

    pub fn is_compose(&self) -> bool {
        self.config.docker_compose_file.is_some()
    }

    /// The folder of the configuration file, which `build.dockerfile`,
    /// `build.context` and `dockerComposeFile` are relative to.
    pub fn config_dir(&self) -> &Path {
        self.config_file.parent().unwrap_or(Path::new("."))
    }
}

/// Substitutes the host-side variables in a loaded configuration.
pub fn resolve(loaded: &Loaded, local_folder: &Path, local_env: &dyn Fn(&str) -> Option<String>) -> Resolved {
    let local = local_folder.to_string_lossy().into_owned();
    let config_file = loaded.path.to_string_lossy().into_owned();
    let id = substitute::devcontainer_id(&local, &config_file);
    let first = substitute::Context {
        local_env,
        local_workspace_folder: Some(&local),
        container_workspace_folder: None,
        devcontainer_id: Some(&id),
        container_env: None,
    };
    // The workspace folder may itself use local variables; once known it is
    // what `${containerWorkspaceFolder}` means everywhere else.
    let workspace_folder = match &loaded.config.workspace_folder {
        Some(f) if !f.is_empty() => substitute::substitute_str(f, &first),
        _ if loaded.config.docker_compose_file.is_some() => "/".to_string(),
        _ => format!("/workspaces/{}", substitute::basename(&local)),
    };
    let ctx = substitute::Context { container_workspace_folder: Some(&workspace_folder), ..first };
    let mut raw = loaded.document.value.clone();
    substitute_config(&mut raw, &ctx);
    move_legacy_vscode_properties(&mut raw);
    // Substitution only rewrites strings inside strings, so the shape that
    // passed the check still passes.
    let config: DevContainer = serde_json::from_value(raw.clone()).unwrap_or_else(|_| loaded.config.clone());
    let workspace_mount = match &config.workspace_mount {
        Some(m) => Some(m.clone()),
        None if config.docker_compose_file.is_some() => None,
        None => Some(mount::join_fields(&[
            "type=bind".to_string(),
            format!("source={local}"),
            format!("target={workspace_folder}"),
            "consistency=cached".to_string(),
        ])),
    };
    Resolved {
        config_file: loaded.path.clone(),
        local_folder: local_folder.to_path_buf(),
        raw,
        config,
        workspace_folder,
        workspace_mount,
        devcontainer_id: id,
        document: loaded.document.clone(),
        remote_env_as_written: loaded.document.value.get("remoteEnv").cloned(),
    }
}

/// Top-level `extensions`, `settings` and `devPort` are the old spelling
/// of `customizations.vscode`'s; they move there as the reference CLI moves
/// them: extensions after the ones already there, settings under the ones
/// already there (those win), devPort unless one is there.
fn move_legacy_vscode_properties(raw: &mut Value) {
    let Value::Object(map) = raw else { return };
    let (extensions, settings, dev_port) = (map.remove("extensions"), map.remove("settings"), map.remove("devPort"));
    if extensions.is_none() && settings.is_none() && dev_port.is_none() {
        return;
    }
    let customizations = map.entry("customizations").or_insert_with(|| Value::Object(Default::default()));
    let Value::Object(customizations) = customizations else { return };
    let vscode = customizations.entry("vscode").or_insert_with(|| Value::Object(Default::default()));
    let Value::Object(vscode) = vscode else { return };
    if let Some(Value::Array(legacy)) = extensions {
        match vscode.get_mut("extensions") {
            Some(Value::Array(current)) => current.extend(legacy),
            _ => {
                vscode.insert("extensions".into(), Value::Array(legacy));
            }
        }
    }
    if let Some(Value::Object(mut legacy)) = settings {
        if let Some(Value::Object(current)) = vscode.get("settings") {
            legacy.extend(current.clone());
        }
        vscode.insert("settings".into(), Value::Object(legacy));
    }
    if let Some(port) = dev_port {
        // One already under customizations.vscode wins, as in the reference.
        vscode.entry("devPort").or_insert(port);
    }
}

/// Substitutes a whole configuration. Mount strings are substituted field
/// by field, so that a value (a folder named `p,source=/etc`) can never add
/// a field to the `--mount` option docker reads.
fn substitute_config(raw: &mut Value, ctx: &substitute::Context<'_>) {
    let Value::Object(map) = raw else { return substitute::substitute_value(raw, ctx) };
    let mount_text = |v: &mut Value| match v {
        Value::String(s) => *s = mount::map_fields(s, |f| substitute::substitute_str(f, ctx)),
        other => substitute::substitute_value(other, ctx),
    };
    for (key, value) in map.iter_mut() {
        match (key.as_str(), value) {
            ("workspaceMount", v) => mount_text(v),
            ("mounts", Value::Array(items)) => items.iter_mut().for_each(mount_text),
            (_, v) => substitute::substitute_value(v, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load_text(t: &str) -> Result<Loaded, ConfigError> {
        load_str(t, Path::new("/p/.devcontainer/devcontainer.json"))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn metadata_entries_are_substituted_like_the_configuration() {
        let loaded = load_text(r#"{"image": "x"}"#).unwrap();
        let env = |n: &str| (n == "X").then(|| "from-host".to_string());
        let r = resolve(&loaded, Path::new("/src/app"), &env);
        let entries = parse_metadata_label(
            r#"[{"id": "./f", "mounts": ["source=vol-${devcontainerId},target=/v,type=volume",
                 {"source": "m-${devcontainerId}", "target": "${containerWorkspaceFolder}/m", "type": "volume"}],
                 "postCreateCommand": "echo ${localEnv:X} ${containerEnv:HOME} ${localWorkspaceFolderBasename}",
                 "containerEnv": {"A": "${localEnv:X}"}}]"#,
        )
        .unwrap();
        let out = r.substitute_metadata(&entries, &env);
        let v = out[0].to_label_value();
        let id = &r.devcontainer_id;
        assert_eq!(v["mounts"][0], json!(format!("source=vol-{id},target=/v,type=volume")));
        assert_eq!(v["mounts"][1]["source"], json!(format!("m-{id}")));
        assert_eq!(v["mounts"][1]["target"], json!("/workspaces/app/m"));
        assert_eq!(v["postCreateCommand"], json!("echo from-host ${containerEnv:HOME} app"));
        assert_eq!(v["containerEnv"]["A"], json!("from-host"));
        assert_eq!(entries[0].to_label_value()["containerEnv"]["A"], json!("${localEnv:X}"), "the input is kept");
        assert_eq!(r.substitute_text("${localEnv:X}:${devcontainerId}", &env), format!("from-host:{id}"));
    }

    #[test]
    fn wrong_type_names_the_property_and_its_place() {
        let e = load_text("{\n  \"image\": \"x\",\n  \"forwardPorts\": \"x\"\n}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/p/.devcontainer/devcontainer.json:3:19: property `forwardPorts`: invalid type: string \"x\", expected a sequence"
        );
    }

    #[test]
    fn nested_wrong_type_is_located() {
        let e = load_text("{\n \"build\": {\n  \"args\": {\n   \"A\": 1\n  }\n }\n}").unwrap_err();
        let (_, pos) = e.location().unwrap();
        assert_eq!(pos, Pos { line: 4, column: 9 });
        assert!(e.to_string().contains("property `build.args.A`"), "{e}");
        let e = load_text("{\"forwardPorts\": [1, \"bad port\"]}").unwrap_err();
        assert!(e.to_string().contains("property `forwardPorts[1]`"), "{e}");
        assert!(e.to_string().contains(":1:22:"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("devcontainer.json");
        std::fs::write(&p, b"{\n  \"image\": \"caf\xc3\xa9-\xff\"\n}\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert_eq!(e, format!("{}:2:18: the file is not valid UTF-8 here", p.display()));
    }

    #[test]
    fn root_must_be_an_object() {
        let e = load_text("[1]").unwrap_err().to_string();
        assert!(e.contains("expected a JSON object, found an array"), "{e}");
    }

    #[test]
    fn resolve_defaults_and_substitutes_everywhere() {
        let l = load_text(
            r#"{"image": "img", "remoteEnv": {"W": "${containerWorkspaceFolder}", "P": "${containerEnv:PATH}"},
               "mounts": ["source=${localWorkspaceFolder}/cache,target=/c,type=bind"], "x-tool": "${localWorkspaceFolderBasename}"}"#,
        )
        .unwrap();
        let r = resolve(&l, Path::new("/src/api"), &no_env);
        assert_eq!(r.workspace_folder, "/workspaces/api");
        assert_eq!(
            r.workspace_mount.as_deref(),
            Some("type=bind,source=/src/api,target=/workspaces/api,consistency=cached")
        );
        assert_eq!(r.raw["remoteEnv"], json!({"W": "/workspaces/api", "P": "${containerEnv:PATH}"}));
        assert_eq!(r.raw["x-tool"], json!("api"));
        assert_eq!(r.config.mounts.unwrap()[0].to_docker_arg(), "source=/src/api/cache,target=/c,type=bind");
    }

    #[test]
    fn a_hostile_folder_name_stays_inside_its_mount_field() {
        let l = load_text(
            r#"{"image": "i", "mounts": ["type=bind,source=${localWorkspaceFolder}/c,target=/c"],
                "workspaceMount": "type=bind,source=${localWorkspaceFolder},target=/w"}"#,
        )
        .unwrap();
        let r = resolve(&l, Path::new("/tmp/m/y,source=/etc"), &no_env);
        let ws = r.workspace_mount.unwrap();
        assert_eq!(ws, r#"type=bind,"source=/tmp/m/y,source=/etc",target=/w"#);
        assert_eq!(mount::mount_field(&ws, &["source"]).as_deref(), Some("/tmp/m/y,source=/etc"));
        let m = r.config.mounts.unwrap()[0].to_docker_arg();
        assert_eq!(mount::split_fields(&m), vec!["type=bind", "source=/tmp/m/y,source=/etc/c", "target=/c"]);

        let default = resolve(&load_text(r#"{"image": "i"}"#).unwrap(), Path::new("/p/q\"uote,x"), &no_env);
        assert_eq!(
            mount::split_fields(&default.workspace_mount.unwrap()),
            vec!["type=bind", "source=/p/q\"uote,x", "target=/workspaces/q\"uote,x", "consistency=cached"]
        );
    }

    #[test]
    fn the_label_keeps_remote_env_as_written() {
        let l = load_text(
            r#"{"image": "i", "remoteEnv": {"T": "${localEnv:TOKEN}"}, "containerEnv": {"A": "${localEnv:TOKEN}"}}"#,
        )
        .unwrap();
        let r = resolve(&l, Path::new("/p"), &|k| (k == "TOKEN").then(|| "s3cret".to_string()));
        assert_eq!(r.raw["remoteEnv"]["T"], json!("s3cret"));
        let label = r.label_entry();
        assert_eq!(label["remoteEnv"]["T"], json!("${localEnv:TOKEN}"));
        assert_eq!(label["containerEnv"]["A"], json!("s3cret"), "containerEnv is in docker inspect anyway");
    }

    #[test]
    fn workspace_folder_can_use_local_variables() {
        let l = load_text(r#"{"image": "i", "workspaceFolder": "/w/${localWorkspaceFolderBasename}", "name": "${containerWorkspaceFolderBasename}"}"#).unwrap();
        let r = resolve(&l, Path::new("/src/web"), &no_env);
        assert_eq!(r.workspace_folder, "/w/web");
        assert_eq!(r.raw["name"], json!("web"));
    }

    #[test]
    fn compose_defaults() {
        let l = load_text(r#"{"dockerComposeFile": ["a.yml", "b.yml"], "service": "app"}"#).unwrap();
        let r = resolve(&l, Path::new("/src/c"), &no_env);
        assert!(r.is_compose());
        assert_eq!(r.workspace_folder, "/");
        assert_eq!(r.workspace_mount, None);
    }
}
