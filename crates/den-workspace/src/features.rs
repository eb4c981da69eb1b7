//! Installing a configuration's Features on top of its image: resolved and
//! fetched by den-features, built with the engine's builder into an image
//! named by the content hash of what went in, so that the same inputs
//! (another `up`, a `--recreate`, another workspace) build nothing.

use den_devcontainer::{MetadataEntry, Resolved};
use den_driver::{BuildSpec, Docker, Image};
use den_features::{layers::Users, FeatureError, Fetcher, Request};

use crate::{Den, Reporter, Result, WorkspaceError};

/// What to do with `devcontainer-lock.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Honour it when it is there, and keep it up to date then.
    #[default]
    Auto,
    /// Resolve every Feature anew and write (or update) it.
    Write,
    /// Honour it, never write it (commands that only show things).
    Read,
}

/// A registry repository for prebuilt images: `den build --repository`
/// tags (and pushes) there, `den up --prebuild-repository` takes the image
/// from there when it has one for the same inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prebuild {
    pub repository: String,
    /// Push after building (`den build --push`).
    pub push: bool,
}

impl Prebuild {
    /// Checks the repository name (`registry/name`, no tag).
    pub fn new(repository: &str, push: bool) -> Result<Prebuild> {
        let r = repository.trim();
        let last = r.rsplit('/').next().unwrap_or(r);
        if r.is_empty()
            || last.contains(':')
            || r.contains('@')
            || r.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase())
        {
            return Err(WorkspaceError::BadInput(format!(
                "`{repository}` is not an image repository: write REGISTRY/NAME in lower case, without a tag (den tags it with the build's content hash)"
            )));
        }
        Ok(Prebuild { repository: r.to_string(), push })
    }
}

/// The content hash a prebuilt image is tagged with: the configuration's
/// image reference (or its Dockerfile, build arguments and context
/// files), the users it names, and each Feature's content and options.
/// The same inputs on any machine give the same hash.
pub(crate) fn prebuild_hash(den: &Den, resolved: &Resolved, mode: LockMode) -> Result<String> {
    use sha2::Digest;
    let cfg = &resolved.config;
    let mut h = sha2::Sha256::new();
    let mut part = |s: &str| {
        h.update(s.as_bytes());
        h.update([0]);
    };
    part("den-prebuild-v1");
    let dockerfile = cfg.build.as_ref().and_then(|b| b.dockerfile.clone()).or_else(|| cfg.docker_file.clone());
    match dockerfile {
        None => part(&format!("image={}", cfg.image.clone().unwrap_or_default())),
        Some(df) => {
            let dir = resolved.config_dir();
            let build = cfg.build.clone().unwrap_or_default();
            let path = dir.join(&df);
            let text =
                std::fs::read_to_string(&path).map_err(WorkspaceError::io(format!("reading {}", path.display())))?;
            part(&text);
            let context = match build.context.clone().or_else(|| cfg.context.clone()) {
                Some(c) => dir.join(c),
                None => path.parent().map(std::path::Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf()),
            };
            let digest = den_features::source::folder_digest(&context)
                .map_err(WorkspaceError::io(format!("reading the build context {}", context.display())))?;
            part(&digest);
            for (k, v) in build.args.clone().unwrap_or_default() {
                part(&format!("arg {k}={v}"));
            }
            part(&format!("target={}", build.target.clone().unwrap_or_default()));
        }
    }
    part(&format!("users={:?}/{:?}", cfg.container_user, cfg.remote_user));
    // The same resolution the build makes (a lockfile being rewritten
    // means the new versions), without writing anything yet.
    let read = if mode == LockMode::Write { LockMode::Write } else { LockMode::Read };
    if let Some(found) = resolve_quietly(den, resolved, read)? {
        for f in &found.features {
            part(&f.portable_identity());
        }
    }
    Ok(h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// The repository of the images den builds with Features; the tag is the
/// content hash.
pub const IMAGE_REPOSITORY: &str = "den-features";

/// A located error about a Feature's value (or one of its options) in
/// the configuration's `features`.
fn at_feature(
    resolved: &Resolved,
    feature: &str,
    option: Option<&str>,
    message: String,
) -> den_devcontainer::ConfigError {
    let token = den_devcontainer::jsonc::pointer_token;
    let mut pointer = format!("/features/{}", token(feature));
    let mut property = format!("features.{feature}");
    if let Some(o) = option {
        pointer.push_str(&format!("/{}", token(o)));
        property.push_str(&format!(".{o}"));
    }
    resolved.invalid_at(&pointer, &property, message)
}

/// Points a Feature error at its place in the configuration, when it has
/// one.
fn locate(resolved: &Resolved, e: FeatureError) -> WorkspaceError {
    match e {
        FeatureError::Value { feature, option, message } => {
            at_feature(resolved, &feature, option.as_deref(), message).into()
        }
        other => WorkspaceError::Feature(other),
    }
}

/// A warning about an option value, at its place in the configuration
/// when it has one (`file:line:col: property \`features.ID.OPTION\`: …`).
fn warning_text(resolved: &Resolved, w: &den_features::OptionWarning) -> String {
    match &w.needed_by {
        None => at_feature(resolved, &w.feature, Some(&w.option), w.message.clone()).to_string(),
        Some(by) => format!("Feature `{}`, option `{}` (a dependsOn of `{by}`): {}", w.feature, w.option, w.message),
    }
}

/// The Features as `mode` resolves them, never writing the lockfile:
/// `Write` resolves every Feature anew (the way to move a pin); otherwise
/// the lockfile's digests are what is fetched.
fn resolve_quietly(den: &Den, resolved: &Resolved, mode: LockMode) -> Result<Option<den_features::Resolved>> {
    let Some(features) = resolved.config.features.as_ref().filter(|f| !f.is_empty()) else { return Ok(None) };
    let lock_path = den_features::lockfile::path_for(&resolved.config_file);
    let lock = match mode {
        LockMode::Write => None,
        _ => den_features::lockfile::read(&lock_path).map_err(FeatureError::Lock)?,
    };
    let fetcher = Fetcher::new(den.home.root().join("cache").join("features"));
    let order = resolved.config.override_feature_install_order.clone().unwrap_or_default();
    let req = Request { config_dir: resolved.config_dir(), features, override_order: &order, lock: lock.as_ref() };
    Ok(Some(den_features::resolve(&fetcher, &req).map_err(|e| locate(resolved, e))?))
}

/// The Features of a configuration, fetched and ordered (no build). The
/// lockfile is kept up to date once it exists (an empty file asks for
/// one), or written when asked.
pub(crate) fn resolve(den: &Den, resolved: &Resolved, mode: LockMode) -> Result<Option<den_features::Resolved>> {
    let Some(out) = resolve_quietly(den, resolved, mode)? else { return Ok(None) };
    let lock_path = den_features::lockfile::path_for(&resolved.config_file);
    if mode == LockMode::Write || (mode == LockMode::Auto && lock_path.exists()) {
        let lock = den_features::lockfile::read(&lock_path).map_err(FeatureError::Lock)?;
        let new = den_features::lockfile_of(&out.features);
        if lock.as_ref() != Some(&new) && (mode == LockMode::Write || !new.features.is_empty() || lock.is_some()) {
            den_features::lockfile::write(&lock_path, &new)
                .map_err(WorkspaceError::io(format!("writing {}", lock_path.display())))?;
        }
    }
    Ok(Some(out))
}

/// Installs the configuration's Features on `base` (already present), and
/// returns the image to run, with its inspect data. Without Features, the
/// base itself.
pub(crate) fn install(
    den: &Den,
    docker: &Docker,
    resolved: &Resolved,
    base: (String, Image),
    mode: LockMode,
    reporter: &mut dyn Reporter,
) -> Result<(String, Image)> {
    let Some(mut found) = resolve(den, resolved, mode)? else { return Ok(base) };
    // A Feature's containerEnv goes into the image as `ENV`: with the
    // configuration's variables substituted first (what is left stays
    // literal text, see `layers`).
    for f in &mut found.features {
        for v in f.json.container_env.values_mut() {
            *v = resolved.substitute_text(v, &crate::merging::local_env);
        }
    }
    for n in &found.notes {
        reporter.line(&format!("note: {n}"));
    }
    for w in &found.warnings {
        reporter.line(&format!("warning: {}", warning_text(resolved, w)));
    }
    if found.features.is_empty() {
        return Ok(base);
    }
    let (base_ref, base_info) = base;
    let base_meta: Vec<MetadataEntry> = match base_info.label("devcontainer.metadata") {
        Some(text) => den_devcontainer::parse_metadata_label(text)
            .map_err(|e| WorkspaceError::BadInput(format!("image {base_ref}: {e}")))?,
        None => vec![],
    };
    let merged = crate::merging::merge(resolved, &base_meta);
    let image_user = base_info.config.user.clone();
    let container_user = merged
        .container_user
        .clone()
        .or_else(|| Some(image_user.clone()).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "root".into());
    let remote_user = merged.remote_user.clone().unwrap_or_else(|| container_user.clone());
    let users = Users { image_user, container_user, remote_user };
    let hash = den_features::build_hash(&base_info.id, &found.features, &users);
    let tag = format!("{IMAGE_REPOSITORY}:{}", &hash[..24]);
    let names: Vec<String> = found.features.iter().map(|f| f.user_id.clone()).collect();
    if let Some(info) = docker.inspect_image(&tag)? {
        reporter.phase("build", &format!("Features {} (built before: {tag})", names.join(", ")));
        return Ok((tag, info));
    }
    reporter.phase("build", &format!("installing Features {} on {base_ref}", names.join(", ")));
    let mut entries: Vec<serde_json::Value> = base_meta.iter().map(MetadataEntry::to_label_value).collect();
    for f in &found.features {
        entries.push(f.metadata()?.to_label_value());
    }
    let work = den.home.root().join("cache").join("builds").join(&hash[..24]);
    let dockerfile = match den_features::layers::write_context(&work, &base_ref, &found.features, &users) {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(WorkspaceError::io(format!("writing the Feature build in {}", work.display()))(e));
        }
    };
    let spec = BuildSpec {
        tag: tag.clone(),
        dockerfile,
        context: work.clone(),
        labels: vec![("devcontainer.metadata".into(), serde_json::Value::Array(entries).to_string())],
        log: den.home.root().join("cache").join("builds").join(format!("{}.log", &hash[..24])),
        ..BuildSpec::default()
    };
    let result = docker.build(&spec, &mut |line| reporter.line(&format!("  │ {line}")));
    let _ = std::fs::remove_dir_all(&work);
    result?;
    let info =
        docker.inspect_image(&tag)?.ok_or_else(|| WorkspaceError::here(format!("{tag} vanished after its build")))?;
    Ok((tag, info))
}

/// The Features a configuration installs, for `den read-config`, in the
/// reference CLI's shape: `{"featureSets": [{"features": [...],
/// "sourceInformation": {...}, "internalVersion": "2", "computedDigest"}]}`,
/// one set per Feature in install order. Each feature is its
/// devcontainer-feature.json with `value` (every option's value, as the
/// install script gets it), plus den's own facts: `digest` (of the
/// content) and `dependencyOf` (the Feature whose dependsOn brought it in).
pub fn describe(den: &Den, resolved: &Resolved) -> Result<serde_json::Value> {
    let Some(found) = resolve(den, resolved, LockMode::Read)? else {
        return Ok(serde_json::json!({ "featureSets": [] }));
    };
    let sets: Vec<serde_json::Value> = found.features.iter().enumerate().map(|(n, f)| feature_set(n, f)).collect();
    Ok(serde_json::json!({ "featureSets": sets }))
}

fn feature_set(n: usize, f: &den_features::Feature) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut feature = match &f.json.raw {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    feature.insert("value".into(), json!(f.options));
    feature.insert("included".into(), json!(true));
    feature.insert("consecutiveId".into(), json!(format!("{}_{n}", f.json.id)));
    feature.insert("digest".into(), json!(f.fetched.digest));
    if let Some(by) = &f.needed_by {
        feature.insert("dependencyOf".into(), json!(by));
    }
    let mut source = match &f.source {
        den_features::Source::Local(p) => json!({ "type": "file-path", "resolvedFilePath": p }),
        den_features::Source::Tarball(u) => json!({ "type": "direct-tarball", "tarballUri": u }),
        den_features::Source::Oci(r) => {
            let (namespace, id) = r.repository.rsplit_once('/').unwrap_or(("", &r.repository));
            json!({
                "type": "oci",
                "featureRef": {
                    "registry": r.registry,
                    "owner": r.repository.split('/').next().unwrap_or(""),
                    "namespace": namespace,
                    "path": r.repository,
                    "resource": r.name(),
                    "id": id,
                    "version": r.tag.clone().or_else(|| r.digest.clone()).unwrap_or_else(|| "latest".into()),
                    "tag": r.tag,
                    "digest": r.digest,
                },
                "manifestDigest": f.fetched.manifest_digest,
                "userFeatureIdWithoutVersion": r.name(),
            })
        }
    };
    source["userFeatureId"] = json!(f.user_id);
    json!({
        "features": [Value::Object(feature)],
        "sourceInformation": source,
        "internalVersion": "2",
        "computedDigest": f.fetched.manifest_digest.clone().unwrap_or_else(|| f.fetched.digest.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_warnings_point_at_the_value() {
        let text = "{\n  \"image\": \"x\",\n  \"features\": {\n    \"./sshd\": {\"gatewayPorts\": \"maybe\"}\n  }\n}\n";
        let loaded = den_devcontainer::load_str(text, std::path::Path::new("/p/.devcontainer.json")).unwrap();
        let resolved = den_devcontainer::resolve(&loaded, std::path::Path::new("/p"), &|_: &str| None);
        let w = den_features::OptionWarning {
            feature: "./sshd".into(),
            option: "gatewayPorts".into(),
            message: "`maybe` is not one of the allowed values".into(),
            needed_by: None,
        };
        assert_eq!(
            warning_text(&resolved, &w),
            "/p/.devcontainer.json:4:32: property `features../sshd.gatewayPorts`: `maybe` is not one of the allowed values"
        );
        let w = den_features::OptionWarning { needed_by: Some("./app".into()), ..w };
        assert!(warning_text(&resolved, &w).contains("a dependsOn of `./app`"));
    }
}
