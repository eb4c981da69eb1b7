//! Compose workspaces (`dockerComposeFile` + `service`) on the local
//! engine: the user's files are never changed; den adds its own override
//! file (in its data) that names the service's container as den names
//! containers, labels it, mounts the project when the service does not,
//! installs Features on the service's image and keeps it alive when
//! `overrideCommand` asks. Everything else about the workspace (agent,
//! setup, hooks, ssh) is the same as for an image workspace.

use std::path::{Path, PathBuf};

use den_devcontainer::{MergedConfig, MetadataEntry, Resolved};
use den_driver::compose::{replaces, to_json, untag, Project};
use den_driver::{Compose, Docker, Image};
use serde_json::{json, Map, Value};

use den_driver::{HOME_LABEL, WORKSPACE_LABEL};

use super::local::Engine;
use super::project::{exited, project_name, remove_project, FOLDER_LABEL, SHUTDOWN_LABEL};
use super::sequence::{Made, Setup, UpSteps};
use crate::features::LockMode;
use crate::plan::Plan;
use crate::record::WorkspaceRecord;
use crate::{Den, Reporter, Result, UpOptions, WorkspaceError};

/// What `up` needs to run a compose workspace.
pub(crate) struct ComposeRun<'a> {
    pub den: &'a Den,
    pub docker: &'a Docker,
    pub id: &'a str,
    /// The service container's name (den's container name).
    pub name: &'a str,
    pub compose_path: Option<String>,
    pub lock: LockMode,
    pub recreate: bool,
    /// The labels den puts on every workspace container.
    pub labels: Vec<(String, String)>,
    /// The folder of den's binary the service mounts.
    pub agent: Option<crate::agent_mount::AgentMount>,
}

/// The project files, checked to exist.
fn files(resolved: &Resolved) -> Result<Vec<PathBuf>> {
    let listed = resolved.config.docker_compose_file.as_ref().map(|f| f.to_vec()).unwrap_or_default();
    if listed.is_empty() {
        return Err(resolved
            .invalid_at("/dockerComposeFile", "dockerComposeFile", "names no compose file".into())
            .into());
    }
    listed
        .iter()
        .map(|f| {
            let p = resolved.config_dir().join(f);
            if p.is_file() {
                Ok(p)
            } else {
                Err(WorkspaceError::BadInput(format!(
                    "the compose file {} (dockerComposeFile in {}) does not exist",
                    p.display(),
                    resolved.config_file.display()
                )))
            }
        })
        .collect()
}

/// The parts of the project den needs (each service's `image`, `build`
/// and `volumes`, the `version`, the names of the top-level `volumes`),
/// read from the files directly: later files override `image` and `build`
/// and add `volumes`, as compose merges them (`!reset` and `!override`
/// replace them). `None` when compose's own reading is needed: `${VAR}`,
/// `extends`, `include` or a merge key in what den reads. A YAML error is
/// located.
fn read_files(project: &Project, service: &str) -> Result<Option<Value>> {
    let mut services = Map::new();
    let mut volumes = Map::new();
    let mut version = None;
    for f in &project.files {
        let text = std::fs::read_to_string(f).map_err(WorkspaceError::io(format!("reading {}", f.display())))?;
        let doc: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            WorkspaceError::BadInput(format!("{}{at}: not valid compose YAML: {e}", f.display()))
        })?;
        if doc.get("include").is_some() {
            return Ok(None);
        }
        if version.is_none() {
            version = doc.get("version").map(to_json);
        }
        if let Some(top) = doc.get("volumes") {
            merge_map(&mut volumes, top);
        }
        let Some(list) = doc.get("services").and_then(|s| untag(s).as_mapping()) else { continue };
        for (name, svc) in list {
            let (Some(name), Some(svc)) = (name.as_str(), untag(svc).as_mapping()) else { continue };
            if svc.contains_key("extends") || svc.contains_key("<<") {
                return Ok(None);
            }
            let entry = services.entry(name.to_string()).or_insert_with(|| json!({}));
            for key in ["image", "build"] {
                if let Some(v) = svc.get(key) {
                    entry[key] = to_json(v);
                }
            }
            if let Some(vols) = svc.get("volumes") {
                let mut all = match entry.get("volumes") {
                    Some(Value::Array(a)) if !replaces(vols) => a.clone(),
                    _ => vec![],
                };
                all.extend(to_json(vols).as_array().into_iter().flatten().cloned());
                entry["volumes"] = Value::Array(all);
            }
        }
    }
    let Some(own) = services.get_mut(service) else {
        return Ok(Some(json!({ "version": version, "services": services, "volumes": volumes })));
    };
    if own.to_string().contains('$') {
        return Ok(None);
    }
    // Bind sources relative to the project folder, as compose reads them.
    if let Some(Value::Array(vols)) = own.get_mut("volumes") {
        for v in vols.iter_mut() {
            let source = match v {
                Value::String(s) => s.split(':').next().map(String::from),
                Value::Object(o) => o.get("source").and_then(|s| s.as_str()).map(String::from),
                _ => None,
            };
            let Some(src) = source.filter(|s| s.starts_with('.')) else { continue };
            let abs = project.directory.join(&src);
            let abs = std::fs::canonicalize(&abs).unwrap_or(abs).display().to_string();
            match v {
                Value::String(s) => *s = format!("{abs}{}", &s[src.len()..]),
                Value::Object(o) => {
                    o.insert("source".into(), json!(abs));
                }
                _ => {}
            }
        }
    }
    let mut doc = json!({ "services": services, "volumes": volumes });
    if let Some(v) = version {
        doc["version"] = v;
    }
    Ok(Some(doc))
}

/// A top-level map of a later file merged into what the earlier ones gave
/// (replacing it with `!reset` or `!override`).
fn merge_map(into: &mut Map<String, Value>, later: &serde_norway::Value) {
    if replaces(later) {
        into.clear();
    }
    if let Value::Object(m) = to_json(later) {
        into.extend(m);
    }
}

/// A service's bind mount sources, from `compose config` (short
/// `src:dst[:mode]` strings or long-syntax objects).
fn bind_sources(service: &Value) -> Vec<String> {
    service
        .get("volumes")
        .and_then(|v| v.as_array())
        .map(|vols| {
            vols.iter()
                .filter_map(|v| match v {
                    Value::String(s) => s.split(':').next().map(String::from),
                    Value::Object(o) => o.get("source").and_then(|s| s.as_str()).map(String::from),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compose reads `$` in every value of a file as the start of a variable:
/// den's own values are written with `$$`.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) => *s = s.replace('$', "$$"),
        Value::Array(items) => items.iter_mut().for_each(escape_dollars),
        Value::Object(map) => map.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// A `--mount` string as a compose long-syntax volume.
fn volume_of(mount: &str) -> Option<Value> {
    let mut out = Map::new();
    for field in den_devcontainer::mount::split_fields(mount) {
        let (k, v) = field.split_once('=').unwrap_or((field.as_str(), "true"));
        match k {
            "type" => out.insert("type".into(), json!(v)),
            "source" | "src" => out.insert("source".into(), json!(v)),
            "target" | "dst" | "destination" => out.insert("target".into(), json!(v)),
            "readonly" | "ro" if v != "false" && v != "0" => out.insert("read_only".into(), json!(true)),
            "consistency" => out.insert("consistency".into(), json!(v)),
            _ => None,
        };
    }
    // `--mount`'s own default.
    out.entry("type").or_insert_with(|| json!("volume"));
    out.contains_key("target").then_some(Value::Object(out))
}

/// The named volumes among den's mounts that the project's files do not
/// declare, for the override's top-level `volumes:` (compose refuses a
/// service volume that names an undeclared one). Declared as the reference
/// CLI declares them: the project's own (`<project>_<name>`); one the files
/// declare keeps their definition.
fn undeclared_volumes(mounts: &[Value], config: &Value) -> Map<String, Value> {
    let declared = config.get("volumes").and_then(Value::as_object);
    mounts
        .iter()
        .filter(|m| m["type"] == "volume")
        .filter_map(|m| m["source"].as_str().filter(|s| !s.is_empty()))
        .filter(|s| !declared.is_some_and(|d| d.contains_key(*s)))
        .map(|s| (s.to_string(), json!({})))
        .collect()
}

fn write_override(path: &Path, mut doc: Value) -> Result<()> {
    escape_dollars(&mut doc);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(WorkspaceError::io(format!("making {}", parent.display())))?;
    }
    // JSON is YAML: both compose versions read it.
    std::fs::write(path, serde_json::to_string_pretty(&doc).expect("override serializes"))
        .map_err(WorkspaceError::io(format!("writing {}", path.display())))
}

/// `up` of a compose project: the configuration's service is the
/// workspace's container, and compose makes (or starts) the project.
pub(crate) struct ComposeUp {
    engine: Engine,
    project: String,
}

impl UpSteps for ComposeUp {
    fn open(den: &Den, plan: &Plan, _opts: &UpOptions, _reporter: &mut dyn Reporter) -> Result<Self> {
        Ok(ComposeUp { engine: Engine::open(den, plan)?, project: project_name(den, &plan.id) })
    }

    fn credentials(&self, _plan: &Plan) -> den_protocol::Credentials {
        self.engine.credentials()
    }

    fn prepare(&mut self, den: &Den, plan: &mut Plan, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<()> {
        self.engine.look(den, plan, opts)?;
        // compose makes the project's containers again itself (its images
        // go with the old project, so they are built after this).
        if opts.reset {
            reporter.phase("create", "removing the old project (--reset)");
            remove_project(&self.engine.docker, &self.project, false)?;
            crate::record::remove_dir(&den.home.workspace_dir(&den.context, &plan.id))?;
            plan.record = None;
        }
        if opts.reset || opts.recreate {
            self.engine.container = None;
        }
        Ok(())
    }

    fn record_first(&self) -> bool {
        false
    }

    fn create(
        &mut self,
        den: &Den,
        plan: &mut Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        reporter: &mut dyn Reporter,
    ) -> Result<Made> {
        let mut made = Made::default();
        let found = match self.engine.take(den, plan, &mut made, reporter)? {
            Some(found) => found,
            None => self.run_project(den, plan, opts, &mut made, reporter)?,
        };
        self.engine.describe(plan, rec, found);
        Ok(made)
    }

    fn setup(
        &mut self,
        den: &Den,
        plan: &Plan,
        opts: &UpOptions,
        rec: &mut WorkspaceRecord,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<Setup> {
        let e = &self.engine;
        match e.setup(den, plan, opts, rec, reporter) {
            // A service whose command ended at once: said as such, and
            // nothing of the project or the workspace is left.
            Err(err) if made.created => match exited(&e.docker, &e.name, &self.project)? {
                Some(why) => {
                    crate::record::remove_dir(&den.home.workspace_dir(&den.context, &plan.id))?;
                    Err(why)
                }
                None => Err(err),
            },
            other => other,
        }
    }
}

impl ComposeUp {
    /// The project made (or made again) by compose, with den's override of
    /// the workspace service: its metadata, image and user.
    fn run_project(
        &self,
        den: &Den,
        plan: &mut Plan,
        opts: &UpOptions,
        made: &mut Made,
        reporter: &mut dyn Reporter,
    ) -> Result<(Vec<MetadataEntry>, String, String)> {
        let e = &self.engine;
        let labels = vec![
            (WORKSPACE_LABEL.to_string(), plan.id.clone()),
            ("devcontainer.local_folder".into(), plan.resolved.local_folder.display().to_string()),
            ("devcontainer.config_file".into(), plan.resolved.config_file.display().to_string()),
            (HOME_LABEL.into(), crate::plan::home_tag(den)),
        ];
        let run = ComposeRun {
            den,
            docker: &e.docker,
            id: &plan.id,
            name: &e.name,
            compose_path: e.options.get("COMPOSE_PATH").map(|o| o.value.clone()),
            lock: opts.lockfile,
            recreate: opts.recreate || opts.reset,
            labels,
            agent: e.agent_mount(den, reporter),
        };
        let (image, info, meta) = up(&run, &mut plan.resolved, reporter)?;
        made.created = true;
        let merged = crate::plan::merge(&plan.resolved, &meta);
        let user = merged.container_user.clone().unwrap_or(info.config.user.clone());
        Ok((meta, image, user))
    }
}

/// What den reads of a compose project for `up`.
struct ProjectRead {
    compose: Compose,
    project: Project,
    /// The project's configuration (den's read, or compose's own).
    config: Value,
    /// The workspace's service, by name and as configured.
    service: String,
    svc: Value,
    services: Map<String, Value>,
    /// The services to start (the workspace's own among them), and whether
    /// the configuration named them (`runServices`).
    run_services: Vec<String>,
    named: bool,
}

impl ProjectRead {
    /// A compose file of den's (the `version` of the project's files, if
    /// they have one, and `services`).
    fn document(&self, services: Value) -> Value {
        let mut doc = json!({ "services": services });
        if let Some(v) = self.config.get("version") {
            doc["version"] = v.clone();
        }
        doc
    }
}

/// The service's container, started with the rest of the project. Returns
/// the image it runs (with its inspect data) and the metadata entries of
/// that image.
pub(crate) fn up(
    c: &ComposeRun<'_>,
    resolved: &mut Resolved,
    reporter: &mut dyn Reporter,
) -> Result<(String, Image, Vec<MetadataEntry>)> {
    let read = read_project(c, resolved, reporter)?;
    let data = c.den.home.workspace_dir(&c.den.context, c.id).join("compose");
    let base = build_images(c, &read, &data, reporter)?;
    reporter.phase("build", &format!("image {base}"));
    let base_info = c.docker.ensure_image(&base)?;
    let (image, info) = crate::features::install(c.den, c.docker, resolved, (base, base_info), c.lock, reporter)?;
    let meta: Vec<MetadataEntry> = match info.label("devcontainer.metadata") {
        Some(t) => den_devcontainer::parse_metadata_label(t)
            .map_err(|e| WorkspaceError::BadInput(format!("image {image}: {e}")))?,
        None => vec![],
    };
    let merged = crate::plan::merge(resolved, &meta);
    let (mut volumes, chosen_folder) = project_volumes(resolved, &read.svc, &merged);
    volumes.extend(c.agent.as_ref().map(|a| a.compose_volume()));
    let line = crate::line::for_new_container(c.den, c.id, c.docker)?;
    volumes.extend(line.map(|d| crate::line::compose_volume(&d)));
    let own = service_override(c, resolved, &meta, &merged, &image, &volumes, chosen_folder.as_deref());
    let mut up_doc = read.document(json!({ read.service.clone(): own }));
    let declare = undeclared_volumes(&volumes, &read.config);
    if !declare.is_empty() {
        up_doc["volumes"] = Value::Object(declare);
    }
    let up_file = data.join("den-up.json");
    write_override(&up_file, up_doc)?;
    compose_up(c, &read, &up_file, reporter)?;
    Ok((image, info, meta))
}

/// The project's files, its configuration, the workspace's service and
/// the services to start.
fn read_project(c: &ComposeRun<'_>, resolved: &Resolved, reporter: &mut dyn Reporter) -> Result<ProjectRead> {
    let cfg = &resolved.config;
    let service = cfg.service.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
        WorkspaceError::from(resolved.invalid_at(
            "/dockerComposeFile",
            "service",
            "a compose configuration names its \"service\"".into(),
        ))
    })?;
    let files = files(resolved)?;
    let compose = Compose::detect(c.docker, c.compose_path.as_deref())?;
    let project = Project {
        name: project_name(c.den, c.id),
        directory: files[0].parent().map(Path::to_path_buf).unwrap_or_default(),
        files,
    };
    reporter.phase("compose", &format!("{} ({})", project.name, compose.display()));
    let config = match read_files(&project, &service)? {
        Some(c) => c,
        // What den does not read itself (variables, extends, includes,
        // merge keys in what it needs): compose's own reading.
        None => compose.config(&project)?,
    };
    let services = config.get("services").and_then(|s| s.as_object()).cloned().unwrap_or_default();
    let Some(svc) = services.get(&service).cloned() else {
        let names: Vec<&str> = services.keys().map(String::as_str).collect();
        return Err(resolved
            .invalid_at(
                "/service",
                "service",
                format!("service `{service}` is not in the compose files (they have: {})", names.join(", ")),
            )
            .into());
    };
    // Without runServices, compose itself picks what starts (profiles
    // keep theirs off); den names services only when told which.
    let mut run_services = match &cfg.run_services {
        Some(list) => {
            if let Some(s) = list.iter().find(|s| !services.contains_key(*s)) {
                return Err(resolved
                    .invalid_at("/runServices", "runServices", format!("service `{s}` is not in the compose files"))
                    .into());
            }
            list.clone()
        }
        None => services.keys().cloned().collect(),
    };
    if !run_services.contains(&service) {
        run_services.push(service.clone());
    }
    let named = cfg.run_services.is_some();
    Ok(ProjectRead { compose, project, config, service, svc, services, run_services, named })
}

/// Builds the services with `build:` (the workspace's own under a name den
/// knows, for its Features to go on); the workspace service's base image.
fn build_images(c: &ComposeRun<'_>, read: &ProjectRead, data: &Path, reporter: &mut dyn Reporter) -> Result<String> {
    let (service, svc) = (&read.service, &read.svc);
    let own_build = svc.get("build").is_some();
    let base_tag = format!("{}-{}:den-base", read.project.name, service.to_ascii_lowercase().replace(['.', '_'], "-"));
    let to_build: Vec<String> = read
        .run_services
        .iter()
        .filter(|s| read.services.get(*s).is_some_and(|v| v.get("build").is_some()))
        .cloned()
        .collect();
    if !to_build.is_empty() {
        let build_file = data.join("den-build.json");
        let mut over = Map::new();
        if own_build {
            over.insert(service.clone(), json!({ "image": base_tag }));
        }
        write_override(&build_file, read.document(Value::Object(over)))?;
        reporter.phase("build", &format!("compose build {}", to_build.join(" ")));
        let mut cmd = read.compose.cmd(&read.project, std::slice::from_ref(&build_file)).arg("build");
        if read.named {
            cmd = cmd.args(&to_build);
        }
        let (log, failure) = c.docker.stream(&cmd, &mut |l| reporter.line(&format!("  │ {l}")))?;
        if let Some(e) = failure {
            return Err(WorkspaceError::BadInput(format!(
                "`compose build` failed:\n{}\n({})",
                den_process::last_lines(&log, 15),
                e
            )));
        }
    }
    if own_build {
        return Ok(base_tag);
    }
    svc.get("image").and_then(|i| i.as_str()).map(String::from).ok_or_else(|| {
        WorkspaceError::BadInput(format!("compose service `{service}` has neither \"image\" nor \"build\""))
    })
}

/// The workspace service's volumes: the project folder (unless the
/// service mounts it, or a folder above it, itself) and the configuration's
/// mounts; the workspace folder den chose, when it chose one.
fn project_volumes(resolved: &mut Resolved, svc: &Value, merged: &MergedConfig) -> (Vec<Value>, Option<String>) {
    let local = resolved.local_folder.clone();
    let mounted = bind_sources(svc).iter().any(|s| {
        let p = Path::new(s);
        p.is_absolute() && local.starts_with(p)
    });
    let mut volumes: Vec<Value> = Vec::new();
    let mut chosen_folder = None;
    if !mounted {
        if resolved.workspace_folder == "/" {
            resolved.workspace_folder = format!(
                "/workspaces/{}",
                local.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            );
            chosen_folder = Some(resolved.workspace_folder.clone());
        }
        volumes.push(json!({"type": "bind", "source": local, "target": resolved.workspace_folder}));
    }
    volumes.extend(merged.mounts.iter().filter_map(|m| volume_of(&m.to_docker_arg())));
    (volumes, chosen_folder)
}

/// den's override of the workspace service: its image, name, labels,
/// volumes and what the configuration says of the container.
fn service_override(
    c: &ComposeRun<'_>,
    resolved: &Resolved,
    meta: &[MetadataEntry],
    merged: &MergedConfig,
    image: &str,
    volumes: &[Value],
    chosen_folder: Option<&str>,
) -> Value {
    let cfg = &resolved.config;
    let mut label_entries: Vec<Value> = meta.iter().map(MetadataEntry::to_label_value).collect();
    label_entries.push(resolved.label_entry());
    let mut labels: Map<String, Value> = c.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    labels.insert("devcontainer.metadata".into(), json!(Value::Array(label_entries).to_string()));
    labels.insert(den_driver::IMAGE_ENTRIES_LABEL.into(), json!(meta.len().to_string()));
    if let Some(f) = chosen_folder {
        labels.insert(FOLDER_LABEL.into(), json!(f));
    }
    labels.insert(
        SHUTDOWN_LABEL.into(),
        json!(match cfg.shutdown_action {
            Some(den_devcontainer::model::ShutdownAction::None) => "none",
            _ => "stopCompose",
        }),
    );
    let mut own = json!({ "image": image, "container_name": c.name, "labels": labels });
    let mut set = |key: &str, value: Value, when: bool| {
        if when {
            own[key] = value;
        }
    };
    set("volumes", json!(volumes), !volumes.is_empty());
    set("environment", json!(merged.container_env), !merged.container_env.is_empty());
    set("init", json!(true), merged.init);
    set("privileged", json!(true), merged.privileged);
    set("cap_add", json!(merged.cap_add), !merged.cap_add.is_empty());
    set("security_opt", json!(merged.security_opt), !merged.security_opt.is_empty());
    set("user", json!(cfg.container_user), cfg.container_user.is_some());
    // Compose services keep their own command unless the configuration
    // says otherwise (the specification's default for compose).
    if merged.override_command == Some(true) {
        own["entrypoint"] = json!(["/bin/sh", "-c", den_driver::keep_alive_loop(&merged.entrypoints), "-"]);
        own["command"] = json!([]);
    }
    own
}

/// `compose up` of the services to start; a failure, or a workspace
/// service that ended at once, removes the project again.
fn compose_up(c: &ComposeRun<'_>, read: &ProjectRead, up_file: &Path, reporter: &mut dyn Reporter) -> Result<()> {
    reporter.phase("create", &format!("compose up {}", read.run_services.join(" ")));
    let mut cmd =
        read.compose.cmd(&read.project, std::slice::from_ref(&up_file.to_path_buf())).args(["up", "-d", "--no-build"]);
    if c.recreate {
        cmd = cmd.arg("--force-recreate");
    }
    if read.named {
        cmd = cmd.args(&read.run_services);
    }
    let (log, failure) = c.docker.stream(&cmd, &mut |l| reporter.line(&format!("  │ {l}")))?;
    if let Some(e) = failure {
        let _ = remove_project(c.docker, &read.project.name, false);
        return Err(WorkspaceError::BadInput(format!(
            "`compose up` failed; the project's containers were removed again:\n{}\n({})",
            den_process::last_lines(&log, 15),
            e
        )));
    }
    match exited(c.docker, c.name, &read.project.name)? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_become_long_syntax_volumes() {
        assert_eq!(
            volume_of("type=bind,source=/a b,target=/x,readonly").unwrap(),
            json!({"type": "bind", "source": "/a b", "target": "/x", "read_only": true})
        );
        assert_eq!(
            volume_of("type=volume,src=cache,dst=/cache").unwrap(),
            json!({"type": "volume", "source": "cache", "target": "/cache"})
        );
        assert!(volume_of("type=tmpfs").is_none());
    }

    #[test]
    fn dollars_are_escaped_for_compose() {
        let mut v = json!({"a": ["${localEnv:X}", {"b": "$HOME"}], "n": 1});
        escape_dollars(&mut v);
        assert_eq!(v, json!({"a": ["$${localEnv:X}", {"b": "$$HOME"}], "n": 1}));
    }

    #[test]
    fn files_are_read_and_merged_and_variables_go_to_compose() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(".devcontainer");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yml"), "version: '3.8'\nservices:\n  app:\n    image: one\n    volumes: ['..:/workspace:cached']\n  db:\n    image: postgres\n").unwrap();
        std::fs::write(
            dir.join("b.yml"),
            "services:\n  app:\n    build: .\n    volumes: [{type: volume, source: cache, target: /c}]\n",
        )
        .unwrap();
        let project =
            Project { name: "p".into(), directory: dir.clone(), files: vec![dir.join("a.yml"), dir.join("b.yml")] };
        let doc = read_files(&project, "app").unwrap().unwrap();
        assert_eq!(doc["version"], "3.8");
        assert_eq!(doc["services"]["app"]["image"], "one");
        assert_eq!(doc["services"]["app"]["build"], ".");
        let root = std::fs::canonicalize(d.path()).unwrap().display().to_string();
        assert_eq!(bind_sources(&doc["services"]["app"]), vec![root, "cache".to_string()]);
        assert_eq!(doc["services"]["db"]["image"], "postgres");
        // What only compose can read is left to it.
        std::fs::write(dir.join("b.yml"), "services:\n  app:\n    image: reg/${TAG}\n").unwrap();
        assert!(read_files(&project, "app").unwrap().is_none());
        std::fs::write(dir.join("b.yml"), "services:\n  app:\n    extends: {file: c.yml, service: x}\n").unwrap();
        assert!(read_files(&project, "app").unwrap().is_none());
        // A variable in another service is compose's business, not den's.
        std::fs::write(dir.join("b.yml"), "services:\n  db:\n    image: pg:${V}\n").unwrap();
        assert!(read_files(&project, "app").unwrap().is_some());
        std::fs::write(dir.join("b.yml"), "services:\n  app:\n    image: [open\n").unwrap();
        let e = read_files(&project, "app").unwrap_err().to_string();
        assert!(e.contains("b.yml:4:1") && e.contains("flow sequence at line 3 column 12"), "{e}");
    }

    #[test]
    fn named_volumes_are_declared_unless_the_files_declare_them() {
        let mounts: Vec<Value> = [
            "type=volume,source=cache,target=/x",
            "source=home,target=/home/me",
            "type=volume,source=shared,target=/s",
            "type=bind,source=/h,target=/h",
            "type=volume,target=/anonymous",
        ]
        .iter()
        .filter_map(|m| volume_of(m))
        .collect();
        assert_eq!(mounts[1]["type"], "volume", "--mount's default type");
        let config = json!({"volumes": {"shared": {"external": true}}});
        let named = undeclared_volumes(&mounts, &config);
        assert_eq!(Value::Object(named), json!({"cache": {}, "home": {}}));
        assert!(undeclared_volumes(&mounts[3..], &json!({})).is_empty());
    }

    #[test]
    fn tags_are_read_past_and_reset_replaces() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        std::fs::write(
            dir.join("a.yml"),
            "services:\n  app:\n    image: one\n    ports: ['80:80']\n    volumes: ['/a:/a']\nvolumes:\n  old: {}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("b.yml"),
            "services:\n  app:\n    image: !override two\n    ports: !reset []\n    volumes: !reset []\n    environment: !override {A: b}\nvolumes: !override\n  new: {}\n",
        )
        .unwrap();
        std::fs::write(dir.join("c.yml"), "services:\n  app:\n    volumes: !override ['/c:/c']\n").unwrap();
        let files = |names: &[&str]| Project {
            name: "p".into(),
            directory: dir.clone(),
            files: names.iter().map(|n| dir.join(n)).collect(),
        };
        let doc = read_files(&files(&["a.yml", "b.yml"]), "app").unwrap().unwrap();
        assert_eq!(doc["services"]["app"], json!({"image": "two", "volumes": []}));
        assert_eq!(doc["volumes"], json!({"new": {}}));
        let doc = read_files(&files(&["a.yml", "c.yml"]), "app").unwrap().unwrap();
        assert_eq!(doc["services"]["app"]["volumes"], json!(["/c:/c"]));
        assert_eq!(doc["volumes"], json!({"old": {}}));
        // A real YAML error after a tag is still located.
        std::fs::write(dir.join("c.yml"), "services:\n  app:\n    ports: !reset []\n    image: [open\n").unwrap();
        let e = read_files(&files(&["c.yml"]), "app").unwrap_err().to_string();
        assert!(e.contains("c.yml:5:1"), "{e}");
    }

    #[test]
    fn bind_sources_of_both_syntaxes() {
        let svc = json!({"volumes": ["/p:/workspace:cached", {"type": "bind", "source": "/q", "target": "/w"}, "named:/data"]});
        assert_eq!(bind_sources(&svc), vec!["/p", "/q", "named"]);
    }
}
