//! `devcontainer-lock.json`: the exact version of every registry and
//! tarball Feature, in the reference CLI's format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    pub features: BTreeMap<String, LockEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockEntry {
    pub version: String,
    /// `registry/repository@sha256:…`, or the tarball's URL.
    pub resolved: String,
    /// The manifest's digest, or the tarball's.
    pub integrity: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// The lockfile beside a configuration file: `.devcontainer-lock.json`
/// for `.devcontainer.json`, else `devcontainer-lock.json`.
pub fn path_for(config_file: &Path) -> PathBuf {
    let hidden = config_file.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
    config_file.with_file_name(if hidden { ".devcontainer-lock.json" } else { "devcontainer-lock.json" })
}

/// Reads a lockfile; `None` when there is none (or it is empty, which
/// asks for one to be written).
pub fn read(path: &Path) -> Result<Option<Lockfile>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc = den_devcontainer::jsonc::parse(&text, path).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize::<_, Lockfile>(&doc.value).map(Some).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .map(|s| match s {
                serde_path_to_error::Segment::Map { key } => {
                    format!("/{}", den_devcontainer::jsonc::pointer_token(key))
                }
                serde_path_to_error::Segment::Seq { index } => format!("/{index}"),
                _ => String::new(),
            })
            .collect();
        format!("{}:{}: `{}`: {}", path.display(), doc.position(&pointer), e.path(), e.inner())
    })
}

/// The file's text: two-space JSON, keys sorted, with a final newline.
pub fn render(lock: &Lockfile) -> String {
    let mut text = serde_json::to_string_pretty(lock).expect("lockfile serializes");
    text.push('\n');
    text
}

/// Writes the lockfile when its content changed (through a temporary
/// file, so a reader never sees half of it). Returns whether it wrote.
pub fn write(path: &Path, lock: &Lockfile) -> std::io::Result<bool> {
    let text = render(lock);
    if std::fs::read_to_string(path).is_ok_and(|old| old.trim_end() == text.trim_end()) {
        return Ok(false);
    }
    let tmp = path.with_extension("json.den-tmp");
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_format_round_trips() {
        let text = r#"{
  "features": {
    "ghcr.io/devcontainers/features/node:1": {
      "version": "1.6.1",
      "resolved": "ghcr.io/devcontainers/features/node@sha256:aaaa",
      "integrity": "sha256:aaaa"
    },
    "ghcr.io/x/y:2": {
      "version": "2.0.0",
      "resolved": "ghcr.io/x/y@sha256:bbbb",
      "integrity": "sha256:bbbb",
      "dependsOn": [
        "ghcr.io/devcontainers/features/node:1"
      ]
    }
  }
}
"#;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("devcontainer-lock.json");
        std::fs::write(&p, text).unwrap();
        let lock = read(&p).unwrap().unwrap();
        assert_eq!(lock.features["ghcr.io/x/y:2"].depends_on, vec!["ghcr.io/devcontainers/features/node:1"]);
        assert_eq!(render(&lock), text);
        assert!(!write(&p, &lock).unwrap(), "unchanged content is not rewritten");
    }

    #[test]
    fn names_and_bad_files() {
        assert_eq!(path_for(Path::new("/p/.devcontainer.json")), Path::new("/p/.devcontainer-lock.json"));
        assert_eq!(
            path_for(Path::new("/p/.devcontainer/devcontainer.json")),
            Path::new("/p/.devcontainer/devcontainer-lock.json")
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("devcontainer-lock.json");
        assert_eq!(read(&p).unwrap(), None);
        std::fs::write(&p, "{\"features\": {\"a\": {\"version\": 1}}}").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("devcontainer-lock.json:1:") && e.contains("version"), "{e}");
    }
}
