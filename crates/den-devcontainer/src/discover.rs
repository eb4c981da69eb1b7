//! Finding a project's devcontainer.json.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// The configuration file for `folder`: `explicit` (relative to `folder`)
/// when given, else the first of `.devcontainer/devcontainer.json` and
/// `.devcontainer.json`, else the only `.devcontainer/<name>/devcontainer.json`.
/// Several of the last kind is an error that lists them.
pub fn find_config(folder: &Path, explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        let path = folder.join(p);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ConfigError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such devcontainer configuration file"),
            })
        };
    }
    for candidate in [".devcontainer/devcontainer.json", ".devcontainer.json"] {
        let path = folder.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    let mut nested: Vec<PathBuf> = std::fs::read_dir(folder.join(".devcontainer"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join("devcontainer.json"))
        .filter(|p| p.is_file())
        .collect();
    nested.sort();
    match nested.len() {
        0 => Err(ConfigError::NotFound { folder: folder.to_path_buf() }),
        1 => Ok(nested.remove(0)),
        _ => Err(ConfigError::Ambiguous {
            folder: folder.to_path_buf(),
            candidates: nested.iter().map(|p| p.strip_prefix(folder).unwrap_or(p).to_path_buf()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "{}").unwrap();
    }

    #[test]
    fn order_of_discovery() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        assert!(matches!(find_config(r, None), Err(ConfigError::NotFound { .. })));
        touch(r, ".devcontainer/python/devcontainer.json");
        assert_eq!(find_config(r, None).unwrap(), r.join(".devcontainer/python/devcontainer.json"));
        touch(r, ".devcontainer.json");
        assert_eq!(find_config(r, None).unwrap(), r.join(".devcontainer.json"));
        touch(r, ".devcontainer/devcontainer.json");
        assert_eq!(find_config(r, None).unwrap(), r.join(".devcontainer/devcontainer.json"));
    }

    #[test]
    fn several_nested_is_an_error_that_lists_them() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), ".devcontainer/go/devcontainer.json");
        touch(t.path(), ".devcontainer/rust/devcontainer.json");
        fs::create_dir_all(t.path().join(".devcontainer/empty")).unwrap();
        let e = find_config(t.path(), None).unwrap_err().to_string();
        assert!(e.contains("--devcontainer-path"), "{e}");
        assert!(e.contains(".devcontainer/go/devcontainer.json"), "{e}");
        assert!(e.contains(".devcontainer/rust/devcontainer.json"), "{e}");
    }

    #[test]
    fn explicit_path_is_relative_to_the_folder() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "cfg/dev.json");
        touch(t.path(), ".devcontainer/devcontainer.json");
        let p = find_config(t.path(), Some(Path::new("cfg/dev.json"))).unwrap();
        assert_eq!(p, t.path().join("cfg/dev.json"));
        let e = find_config(t.path(), Some(Path::new("nope.json"))).unwrap_err().to_string();
        assert!(e.contains("nope.json"), "{e}");
    }
}
