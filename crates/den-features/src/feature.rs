//! `devcontainer-feature.json`: what a Feature says about itself.

use std::path::Path;

use den_devcontainer::MetadataEntry;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::FeatureError;

/// One option a Feature declares.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionSpec {
    /// `boolean` or `string`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub default: Option<Value>,
    /// The only values allowed (a `string` option).
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<Value>>,
    /// Suggested values; others are allowed.
    #[serde(default)]
    pub proposals: Option<Vec<Value>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The parts of `devcontainer-feature.json` den acts on; the container
/// properties (`containerEnv`, `mounts`, hooks, …) are read as a
/// devcontainer.metadata entry by [`FeatureJson::metadata`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureJson {
    pub id: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: IndexMap<String, OptionSpec>,
    /// Feature id → options: installed first, with those options.
    #[serde(default)]
    pub depends_on: IndexMap<String, Value>,
    /// Features (ids without version) this one goes after when they are
    /// installed too.
    #[serde(default)]
    pub installs_after: Vec<String>,
    #[serde(default)]
    pub legacy_ids: Vec<String>,
    #[serde(default)]
    pub container_env: IndexMap<String, String>,
    #[serde(skip)]
    pub raw: Value,
}

/// The properties of a Feature that go into `devcontainer.metadata`, as
/// the specification lists them.
/// (`containerEnv` is not among them: it is set in the image with `ENV`.)
const METADATA_KEYS: &[&str] = &[
    "mounts",
    "init",
    "privileged",
    "capAdd",
    "securityOpt",
    "entrypoint",
    "customizations",
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
];

/// Largest devcontainer-feature.json read.
const MAX_JSON: u64 = 1 << 20;

impl FeatureJson {
    /// Reads `devcontainer-feature.json` from a Feature's folder; `what`
    /// names the Feature in errors.
    pub fn read(dir: &Path, what: &str) -> Result<FeatureJson, FeatureError> {
        use std::io::Read;
        let path = dir.join("devcontainer-feature.json");
        let invalid = |message: String| FeatureError::Invalid { feature: what.to_string(), message };
        // Never through a link: a Feature's files are its own, and a link
        // would have den read (and show) a file of this machine.
        for f in [&path, &dir.join("install.sh")] {
            if std::fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(invalid(format!("{} is a link; a Feature's own files must be plain files", f.display())));
            }
        }
        let mut text = String::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_JSON + 1).read_to_string(&mut text))
            .map_err(|e| invalid(format!("reading {}: {e}", path.display())))?;
        if text.len() as u64 > MAX_JSON {
            return Err(invalid(format!("{} is larger than {MAX_JSON} bytes", path.display())));
        }
        let loaded = den_devcontainer::jsonc::parse(&text, &path).map_err(|e| invalid(e.to_string()))?;
        let raw = loaded.value;
        let mut json: FeatureJson =
            serde_json::from_value(raw.clone()).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        if json.id.trim().is_empty() {
            return Err(invalid(format!("{} has no \"id\"", path.display())));
        }
        if !dir.join("install.sh").is_file() {
            return Err(invalid(format!("{} has no install.sh", dir.display())));
        }
        json.raw = raw;
        Ok(json)
    }

    /// The Feature's entry of the image's `devcontainer.metadata` label.
    pub fn metadata(&self, id: &str) -> Result<MetadataEntry, FeatureError> {
        let mut obj = serde_json::Map::new();
        if let Some(raw) = self.raw.as_object() {
            for k in METADATA_KEYS {
                if let Some(v) = raw.get(*k) {
                    obj.insert((*k).to_string(), v.clone());
                }
            }
        }
        obj.insert("id".into(), Value::String(id.to_string()));
        serde_json::from_value(Value::Object(obj)).map_err(|e| FeatureError::Invalid {
            feature: id.to_string(),
            message: format!("devcontainer-feature.json: {e}"),
        })
    }
}
