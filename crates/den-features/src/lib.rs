//! Dev Container Features: reading the `features` of a configuration,
//! fetching each (a folder, an OCI artifact, a tarball URL) into den's
//! cache, checking options, following `dependsOn` and `installsAfter` to an
//! install order, pinning with `devcontainer-lock.json`, and writing the
//! image build that installs them.

pub mod feature;
pub mod layers;
pub mod lockfile;
pub mod options;
pub mod order;
pub mod publish;
pub mod source;

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

pub use feature::FeatureJson;
pub use lockfile::{LockEntry, Lockfile};
pub use source::{Fetched, Fetcher, Source};

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A value in the configuration's `features` (`option`: which of its
    /// options); the caller knows where it is in the file.
    #[error("Feature `{feature}`{}: {message}", option.as_ref().map(|o| format!(", option `{o}`")).unwrap_or_default())]
    Value { feature: String, option: Option<String>, message: String },
    #[error("Feature `{feature}`: {message}")]
    Fetch { feature: String, message: String },
    #[error("Feature `{feature}`: {message}")]
    Invalid { feature: String, message: String },
    #[error("{0}")]
    Order(String),
    #[error("{0}")]
    Lock(String),
}

/// A Feature ready to install.
#[derive(Debug, Clone)]
pub struct Feature {
    /// The id as the configuration (or a `dependsOn`) writes it.
    pub user_id: String,
    pub source: Source,
    pub fetched: Fetched,
    pub json: FeatureJson,
    /// Every option's value, as the install script gets it.
    pub options: IndexMap<String, String>,
    /// Which Feature asked for this one (`None`: the configuration).
    pub needed_by: Option<String>,
}

impl Feature {
    /// The `devcontainer.metadata` entry of this Feature.
    pub fn metadata(&self) -> Result<den_devcontainer::MetadataEntry, FeatureError> {
        self.json.metadata(&self.user_id)
    }

    /// The lockfile entry (registry and tarball Features).
    pub fn lock_entry(&self) -> Option<LockEntry> {
        let version = self.json.version.clone().unwrap_or_default();
        let depends_on = self.json.depends_on.keys().cloned().collect();
        match &self.source {
            Source::Oci(r) => {
                let digest = self.fetched.manifest_digest.clone()?;
                Some(LockEntry { version, resolved: format!("{}@{digest}", r.name()), integrity: digest, depends_on })
            }
            Source::Tarball(url) => {
                Some(LockEntry { version, resolved: url.clone(), integrity: self.fetched.digest.clone(), depends_on })
            }
            Source::Local(_) => None,
        }
    }

    /// The same, with the id as written in place of the resolved source,
    /// so that the same Features in another folder (another workspace, a
    /// teammate's clone) are the same install.
    pub fn portable_identity(&self) -> String {
        let opts: Vec<String> = self.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}@{}?{}", self.user_id, self.fetched.digest, opts.join("&"))
    }

    /// What identifies this Feature's install: its content and options.
    pub fn identity(&self) -> String {
        let opts: Vec<String> = self.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}@{}?{}", self.source.resource(), self.fetched.digest, opts.join("&"))
    }
}

/// The short ids of the retired vscode-dev-containers set that the
/// reference CLI still maps to the devcontainers collection, with the
/// options a merged one implies.
fn legacy(id: &str) -> Option<(String, Vec<(&'static str, Value)>)> {
    let name = match id {
        "aws-cli"
        | "azure-cli"
        | "desktop-lite"
        | "docker-in-docker"
        | "docker-from-docker"
        | "dotnet"
        | "git"
        | "git-lfs"
        | "github-cli"
        | "java"
        | "kubectl-helm-minikube"
        | "node"
        | "powershell"
        | "python"
        | "ruby"
        | "rust"
        | "sshd"
        | "terraform" => id,
        "golang" => "go",
        "common" => "common-utils",
        "gradle" => {
            return Some(("ghcr.io/devcontainers/features/java:1".into(), vec![("installGradle", Value::Bool(true))]))
        }
        "maven" => {
            return Some(("ghcr.io/devcontainers/features/java:1".into(), vec![("installMaven", Value::Bool(true))]))
        }
        "jupyterlab" => {
            return Some((
                "ghcr.io/devcontainers/features/python:1".into(),
                vec![("installJupyterlab", Value::Bool(true))],
            ))
        }
        _ => return None,
    };
    Some((format!("ghcr.io/devcontainers/features/{name}:1"), vec![]))
}

/// What to resolve.
pub struct Request<'a> {
    /// The folder of the configuration file (local Features are relative
    /// to it).
    pub config_dir: &'a Path,
    /// The configuration's `features`.
    pub features: &'a IndexMap<String, Value>,
    /// `overrideFeatureInstallOrder`.
    pub override_order: &'a [String],
    /// The lockfile, when there is one: its Features are fetched at the
    /// pinned digests and checked against them.
    pub lock: Option<&'a Lockfile>,
}

/// The Features to install, in install order, and notes worth showing.
#[derive(Debug, Default)]
pub struct Resolved {
    pub features: Vec<Feature>,
    pub notes: Vec<String>,
    /// Option values the Feature does not allow, passed on as given.
    pub warnings: Vec<OptionWarning>,
}

/// An option value outside the Feature's `enum` or of another type than
/// it declares: the reference CLI passes it to the install script, and so
/// does den, with this warning.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionWarning {
    /// The Feature as written in `features` (or in a `dependsOn`).
    pub feature: String,
    pub option: String,
    pub message: String,
    /// The Feature whose `dependsOn` gave the value (`None`: the
    /// configuration, where the value has a place).
    pub needed_by: Option<String>,
}

/// Most Features one configuration may bring in (its own and every
/// `dependsOn`), so that a dependency loop between ever new option values
/// ends.
const MAX_FEATURES: usize = 100;

/// Fetches the Features of a configuration and their dependencies, and
/// orders them.
pub fn resolve(fetcher: &Fetcher, req: &Request<'_>) -> Result<Resolved, FeatureError> {
    let mut notes = Vec::new();
    let mut resolved_warnings = Vec::new();
    // (user id, given options, needed by)
    let mut work: std::collections::VecDeque<(String, IndexMap<String, Value>, Option<String>)> = Default::default();
    for (id, value) in req.features {
        let value_err = |message: String| FeatureError::Value { feature: id.clone(), option: None, message };
        let Some(given) = options::given(value).map_err(value_err)? else {
            notes.push(format!("Feature `{id}` is set to false: not installed"));
            continue;
        };
        work.push_back((id.clone(), given, None));
    }
    let mut found: Vec<Feature> = Vec::new();
    let mut hard: Vec<Vec<usize>> = Vec::new();
    let mut fetched_sources: std::collections::HashMap<(Source, Option<String>), (Fetched, FeatureJson)> =
        Default::default();

    let mut queue_index = 0usize;
    let mut origins: Vec<Option<usize>> = Vec::new();
    let mut items: Vec<(String, IndexMap<String, Value>, Option<String>)> = work.drain(..).collect();
    origins.extend(std::iter::repeat_n(None, items.len()));
    while queue_index < items.len() {
        if found.len() >= MAX_FEATURES {
            return Err(FeatureError::Order(format!(
                "more than {MAX_FEATURES} Features with their dependencies; is a dependsOn chain endless?"
            )));
        }
        let (user_id, mut given, needed_by) = items[queue_index].clone();
        let origin = origins[queue_index];
        queue_index += 1;
        let at_config = needed_by.is_none();
        let value_err = |message: String| match &needed_by {
            None => FeatureError::Value { feature: user_id.clone(), option: None, message },
            Some(by) => FeatureError::Invalid {
                feature: user_id.clone(),
                message: format!("{message} (a dependsOn of `{by}`)"),
            },
        };
        let written = user_id.trim();
        let mapped = if written.contains('/') || written.starts_with('.') { None } else { legacy(written) };
        let source_id = match &mapped {
            Some((full, implied)) => {
                notes.push(format!("Feature `{written}` is a retired short id; installing `{full}` in its place"));
                for (k, v) in implied {
                    given.entry((*k).to_string()).or_insert(v.clone());
                }
                full.clone()
            }
            None => written.to_string(),
        };
        let source = Source::parse(&source_id, req.config_dir).map_err(value_err)?;
        // A Feature from a registry or a URL may not name folders of this
        // machine: only the configuration's own Features are local.
        if let (Some(parent), Source::Local(_)) = (origin, &source) {
            if !matches!(found[parent].source, Source::Local(_)) {
                return Err(FeatureError::Invalid {
                    feature: found[parent].user_id.clone(),
                    message: format!("its dependsOn names the local folder `{user_id}`; only the configuration's own Features may be folders"),
                });
            }
        }
        let pinned = match (&source, req.lock.and_then(|l| l.features.get(&user_id))) {
            (Source::Oci(_), Some(entry)) => {
                let digest = entry.resolved.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
                if digest != entry.integrity {
                    return Err(FeatureError::Lock(format!(
                        "devcontainer-lock.json: `{user_id}` resolves to {} but its integrity is {}",
                        entry.resolved, entry.integrity
                    )));
                }
                Some(digest)
            }
            _ => None,
        };
        let key = (source.clone(), pinned.clone());
        let (fetched, json) = match fetched_sources.get(&key) {
            Some(x) => x.clone(),
            None => {
                let fetched = fetcher.fetch(&user_id, &source, pinned.as_deref())?;
                let json = FeatureJson::read(&fetched.dir, &user_id)?;
                fetched_sources.insert(key, (fetched.clone(), json.clone()));
                (fetched, json)
            }
        };
        if let (Source::Tarball(_), Some(entry)) = (&source, req.lock.and_then(|l| l.features.get(&user_id))) {
            if entry.integrity != fetched.digest {
                return Err(FeatureError::Lock(format!(
                    "devcontainer-lock.json: `{user_id}` has integrity {} but the download is {}; if the change is wanted, update the lockfile (den up --lockfile write)",
                    entry.integrity, fetched.digest
                )));
            }
        }
        let options::Values { values, unknown, warnings } =
            options::resolve(&json.options, &given).map_err(|p| match &needed_by {
                None => FeatureError::Value { feature: user_id.clone(), option: Some(p.option), message: p.message },
                Some(by) => FeatureError::Invalid {
                    feature: user_id.clone(),
                    message: format!("option `{}`: {} (a dependsOn of `{by}`)", p.option, p.message),
                },
            })?;
        resolved_warnings.extend(warnings.into_iter().map(|w| OptionWarning {
            feature: user_id.clone(),
            option: w.option,
            message: w.message,
            needed_by: needed_by.clone(),
        }));
        if !unknown.is_empty() && at_config {
            notes.push(format!(
                "Feature `{user_id}` declares no option {}; passed to its install script as given",
                unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        let candidate = Feature { user_id: user_id.clone(), source, fetched, json, options: values, needed_by };
        // The same content with the same options is one Feature.
        let index = match found.iter().position(|f| f.identity() == candidate.identity()) {
            Some(i) => i,
            None => {
                found.push(candidate);
                hard.push(Vec::new());
                let i = found.len() - 1;
                for (dep_id, dep_value) in found[i].json.depends_on.clone() {
                    let dep_given = options::given(&dep_value)
                        .map_err(|m| FeatureError::Invalid {
                            feature: found[i].user_id.clone(),
                            message: format!("dependsOn `{dep_id}`: {m}"),
                        })?
                        .unwrap_or_default();
                    items.push((dep_id, dep_given, Some(found[i].user_id.clone())));
                    origins.push(Some(i));
                }
                i
            }
        };
        if let Some(parent) = origin {
            if !hard[parent].contains(&index) {
                hard[parent].push(index);
            }
        }
    }

    // Soft dependencies: `installsAfter` ids (and ids a Feature was once
    // known as) that match a Feature being installed, whatever its tag.
    let resource_of =
        |id: &str| Source::parse(id, req.config_dir).map(|s| s.resource()).unwrap_or_else(|_| id.to_string());
    let matches = |f: &Feature, resource: &str| {
        f.source.resource() == resource
            || match &f.source {
                Source::Oci(r) => {
                    let (ns, last) = resource.rsplit_once('/').unwrap_or(("", resource));
                    r.name().rsplit_once('/').is_some_and(|(fns, _)| fns == ns)
                        && f.json.legacy_ids.iter().any(|l| l == last)
                }
                _ => false,
            }
    };
    let n = found.len();
    let mut nodes: Vec<order::Node> = (0..n)
        .map(|i| {
            let f = &found[i];
            let soft = f
                .json
                .installs_after
                .iter()
                .flat_map(|a| {
                    let r = resource_of(a);
                    (0..n).filter(|&j| j != i && matches(&found[j], &r)).collect::<Vec<_>>()
                })
                .collect();
            let tag = match &f.source {
                Source::Oci(r) => r.tag.clone().unwrap_or_default(),
                _ => String::new(),
            };
            order::Node {
                name: f.user_id.clone(),
                key: format!("{}\u{0}{tag}\u{0}{}", f.source.resource(), f.identity()),
                hard: hard[i].clone(),
                soft,
                priority: 0,
            }
        })
        .collect();
    let total = req.override_order.len();
    for (pos, id) in req.override_order.iter().enumerate() {
        let r = resource_of(id);
        let hits: Vec<usize> = (0..n).filter(|&j| matches(&found[j], &r)).collect();
        if hits.is_empty() {
            notes.push(format!("overrideFeatureInstallOrder names `{id}`, which is not installed"));
        }
        for j in hits {
            nodes[j].priority = nodes[j].priority.max(total - pos);
        }
    }
    let order = order::install_order(&nodes).map_err(FeatureError::Order)?;
    let mut slots: Vec<Option<Feature>> = found.into_iter().map(Some).collect();
    let features = order.into_iter().map(|i| slots[i].take().expect("each once")).collect();
    Ok(Resolved { features, notes, warnings: resolved_warnings })
}

/// The lockfile for a set of Features (registry and tarball ones).
pub fn lockfile_of(features: &[Feature]) -> Lockfile {
    Lockfile { features: features.iter().filter_map(|f| f.lock_entry().map(|e| (f.user_id.clone(), e))).collect() }
}

/// A digest of everything that decides the Feature build's result: the
/// base image, each Feature's content and options in order, and the users
/// and build format. Two workspaces with the same inputs share the image.
pub fn build_hash(base_image_id: &str, features: &[Feature], users: &layers::Users) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"den-features-build-v1\0");
    for part in [base_image_id, &users.image_user, &users.container_user, &users.remote_user] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for f in features {
        h.update(f.portable_identity().as_bytes());
        h.update([0]);
        for (k, v) in &f.json.container_env {
            h.update(format!("{k}={v}").as_bytes());
            h.update([0]);
        }
        h.update([1]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feature(dir: &Path, name: &str, json: Value) {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("devcontainer-feature.json"), json.to_string()).unwrap();
        std::fs::write(d.join("install.sh"), "#!/bin/sh\necho hi\n").unwrap();
    }

    fn resolve_in(dir: &Path, features: Value, order: &[&str]) -> Result<Resolved, FeatureError> {
        let features: IndexMap<String, Value> = serde_json::from_value(features).unwrap();
        let order: Vec<String> = order.iter().map(|s| s.to_string()).collect();
        let fetcher = Fetcher::new(dir.join("cache"));
        resolve(&fetcher, &Request { config_dir: dir, features: &features, override_order: &order, lock: None })
    }

    fn ids(r: &Resolved) -> Vec<&str> {
        r.features.iter().map(|f| f.json.id.as_str()).collect()
    }

    #[test]
    fn local_features_follow_depends_on_installs_after_and_the_override() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        feature(p, "base", json!({"id": "base", "options": {"flavor": {"type": "string", "default": "plain"}}}));
        feature(p, "app", json!({"id": "app", "dependsOn": {"./base": {"flavor": "rich"}}}));
        feature(p, "tool", json!({"id": "tool", "installsAfter": ["./app"]}));
        feature(p, "zz", json!({"id": "zz"}));
        let r = resolve_in(p, json!({"./zz": {}, "./tool": true, "./app": {}}), &[]).unwrap();
        assert_eq!(ids(&r), ["base", "zz", "app", "tool"]);
        assert_eq!(r.features[0].options["flavor"], "rich", "the dependency gets the options dependsOn gives");
        assert_eq!(r.features[0].needed_by.as_deref(), Some("./app"));
        let r = resolve_in(p, json!({"./zz": {}, "./tool": true, "./app": {}}), &["./zz", "./base"]).unwrap();
        assert_eq!(ids(&r), ["zz", "base", "app", "tool"]);
        // The same dependency with other options is a second install.
        let r = resolve_in(p, json!({"./app": {}, "./base": {}}), &[]).unwrap();
        assert_eq!(ids(&r), ["base", "base", "app"]);
        let r = resolve_in(p, json!({"./app": {}, "./base": {"flavor": "rich"}}), &[]).unwrap();
        assert_eq!(ids(&r), ["base", "app"]);
    }

    #[test]
    fn cycles_missing_features_and_bad_options_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        feature(p, "a", json!({"id": "a", "dependsOn": {"./b": {}}}));
        feature(p, "b", json!({"id": "b", "installsAfter": ["./a"]}));
        let e = resolve_in(p, json!({"./a": {}}), &[]).unwrap_err().to_string();
        assert!(e.contains("./a → ./b → ./a") || e.contains("./b → ./a → ./b"), "{e}");
        feature(p, "c", json!({"id": "c", "dependsOn": {"./missing": {}}}));
        let e = resolve_in(p, json!({"./c": {}}), &[]).unwrap_err().to_string();
        assert!(e.contains("./missing") && e.contains("not a folder"), "{e}");
        feature(p, "e", json!({"id": "e", "options": {"on": {"type": "boolean", "default": false}}}));
        let e = resolve_in(p, json!({"./e": {"on": ["maybe"]}}), &[]).unwrap_err();
        assert!(matches!(&e, FeatureError::Value { option: Some(o), .. } if o == "on"), "{e}");
        let r = resolve_in(p, json!({"./e": {"on": "maybe"}}), &[]).unwrap();
        assert_eq!(r.features[0].options["on"], "maybe");
        assert_eq!((r.warnings[0].feature.as_str(), r.warnings[0].option.as_str()), ("./e", "on"));
        let e = resolve_in(p, json!({"./e": 5}), &[]).unwrap_err();
        assert!(matches!(&e, FeatureError::Value { option: None, .. }), "{e}");
        feature(p, "linked", json!({"id": "linked"}));
        std::fs::remove_file(p.join("linked/devcontainer-feature.json")).unwrap();
        std::os::unix::fs::symlink(p.join("a/devcontainer-feature.json"), p.join("linked/devcontainer-feature.json"))
            .unwrap();
        let e = resolve_in(p, json!({"./linked": {}}), &[]).unwrap_err().to_string();
        assert!(e.contains("is a link"), "{e}");
        feature(p, "loop", json!({"id": "loop", "dependsOn": {"./loop": {"n": "1"}}}));
        let e = resolve_in(p, json!({"./loop": {}}), &[]).unwrap_err().to_string();
        assert!(e.contains("circle") || e.contains("endless"), "{e}");
    }
}
