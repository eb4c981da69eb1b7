//! Publishing Features to an OCI registry as the specification packages
//! them: one tar layer per Feature, the Feature's metadata as a manifest
//! annotation, tagged with its version and the moving `MAJOR`,
//! `MAJOR.MINOR` and `latest` tags when it is the newest of them.

use std::path::Path;

use den_oci::{Client, Reference};
use serde_json::json;

use crate::source::{CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE};
use crate::{FeatureError, FeatureJson};

/// What one publish did.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub version: String,
    pub reference: String,
    pub digest: String,
    pub tags: Vec<String>,
}

/// The Feature folders under `path`: itself when it holds a
/// `devcontainer-feature.json`, else each sub-folder that does.
pub fn feature_folders(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if path.join("devcontainer-feature.json").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<_> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("devcontainer-feature.json").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// A Feature folder as a tar archive (paths relative to the folder).
pub fn package(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)?;
    b.into_inner()
}

fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// The tags a version gets, given the tags already there: its own, and
/// each moving tag whose range has nothing newer.
pub fn tags_for(version: &str, existing: &[String]) -> Result<Vec<String>, String> {
    let (ma, mi, pa) = semver(version).ok_or_else(|| format!("version `{version}` is not MAJOR.MINOR.PATCH"))?;
    let published: Vec<(u64, u64, u64)> = existing.iter().filter_map(|t| semver(t)).collect();
    let newest = |keep: &dyn Fn(&(u64, u64, u64)) -> bool| published.iter().filter(|v| keep(v)).max().copied();
    let mut tags = vec![version.to_string()];
    let me = (ma, mi, pa);
    if newest(&|v| v.0 == ma && v.1 == mi).is_none_or(|n| n <= me) {
        tags.push(format!("{ma}.{mi}"));
    }
    if newest(&|v| v.0 == ma).is_none_or(|n| n <= me) {
        tags.push(ma.to_string());
    }
    if newest(&|_| true).is_none_or(|n| n <= me) {
        tags.push("latest".into());
    }
    Ok(tags)
}

/// Publishes one Feature folder under `namespace` (`registry/path`): the
/// repository is `namespace/<id>`.
pub fn publish(client: &Client, dir: &Path, namespace: &str) -> Result<Published, FeatureError> {
    let what = dir.display().to_string();
    let json = FeatureJson::read(dir, &what)?;
    let fail = |message: String| FeatureError::Fetch { feature: json.id.clone(), message };
    let version = json.version.clone().ok_or_else(|| FeatureError::Invalid {
        feature: json.id.clone(),
        message: "devcontainer-feature.json has no \"version\"; publishing needs one".into(),
    })?;
    let reference = Reference::parse(&format!("{}/{}", namespace.trim_end_matches('/'), json.id))
        .map_err(|e| FeatureError::Invalid { feature: json.id.clone(), message: e.to_string() })?;
    let existing = match client.tags(&reference) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => vec![],
        Err(e) => return Err(fail(e.to_string())),
    };
    let tags =
        tags_for(&version, &existing).map_err(|m| FeatureError::Invalid { feature: json.id.clone(), message: m })?;
    let layer = package(dir).map_err(|e| fail(format!("packaging {what}: {e}")))?;
    let layer_digest = client.push_blob(&reference, &layer).map_err(|e| fail(e.to_string()))?;
    let config_digest = client.push_blob(&reference, b"").map_err(|e| fail(e.to_string()))?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": den_oci::OCI_MANIFEST,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": 0},
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": layer.len(),
            "annotations": {"org.opencontainers.image.title": format!("devcontainer-feature-{}.tgz", json.id)},
        }],
        "annotations": {"dev.containers.metadata": json.raw.to_string()},
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let mut digest = String::new();
    for t in &tags {
        digest = client.push_manifest(&reference, t, den_oci::OCI_MANIFEST, &bytes).map_err(|e| fail(e.to_string()))?;
    }
    Ok(Published { id: json.id.clone(), version, reference: reference.name(), digest, tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_tags_follow_the_newest_version() {
        let none: Vec<String> = vec![];
        assert_eq!(tags_for("1.2.3", &none).unwrap(), ["1.2.3", "1.2", "1", "latest"]);
        let have: Vec<String> = ["2.0.0", "1.3.0", "1.2.1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(tags_for("1.2.3", &have).unwrap(), ["1.2.3", "1.2"]);
        assert_eq!(tags_for("1.4.0", &have).unwrap(), ["1.4.0", "1.4", "1"]);
        assert!(tags_for("1.2", &none).is_err());
    }

    #[test]
    fn a_package_unpacks_to_the_same_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::create_dir_all(f.join("lib")).unwrap();
        std::fs::write(f.join("install.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(f.join("lib/x"), "x").unwrap();
        let tar = package(&f).unwrap();
        let out = d.path().join("out");
        tar::Archive::new(&tar[..]).unpack(&out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("lib/x")).unwrap(), "x");
        assert_eq!(package(&f).unwrap(), tar, "the same folder packs to the same bytes");
    }
}
