use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

use crate::{Result, StateError};

/// Creates `dir` and its missing parents with mode 0700. A folder that exists
/// already is tightened to 0700 if it is den's own (the last component).
/// A short name for a path (FNV-1a, 16 hex digits): for a file that stands
/// for another one where its path cannot be used (too long, or not den's).
/// Not a security measure: the same path always gives the same name.
pub fn path_tag(path: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in path.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

pub fn create_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(StateError::io("creating folder", dir))?;
    let meta = fs::metadata(dir).map_err(StateError::io("reading", dir))?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(StateError::io("chmod", dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a reader sees either the old content or
/// the new one, never a part, even if den or the machine dies half-way:
/// a temp file in the same folder (so the rename stays on one file system),
/// fsync, rename over the target, fsync the folder. The file is 0600 and
/// its folder den's own (0700).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    replace_file(path, bytes, 0o600)
}

/// [`atomic_write`] for a file that is the user's (an ssh config): the file
/// gets `mode`, and the folder, which must exist, is left as it is.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(StateError::io("creating", &tmp))?;
        f.write_all(bytes).map_err(StateError::io("writing", &tmp))?;
        if mode != 0o600 {
            f.set_permissions(fs::Permissions::from_mode(mode)).map_err(StateError::io("chmod", &tmp))?;
        }
        f.sync_all().map_err(StateError::io("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(StateError::io("renaming into place", path))?;
        // The rename itself is durable only once the folder is synced.
        File::open(dir).and_then(|d| d.sync_all()).map_err(StateError::io("syncing", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialises `value` as pretty JSON and writes it with [`atomic_write`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("state records always serialise");
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("reading", path)(e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| StateError::Corrupt { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn write_is_private_and_leaves_no_temp_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b/state.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&t.path().join("a/b")), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        let names: Vec<_> = fs::read_dir(t.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn existing_loose_folder_is_tightened() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("home");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
    }

    #[test]
    fn failed_write_keeps_the_old_content() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        atomic_write(&p, b"old").unwrap();
        // A folder in the way of the rename makes the write fail late.
        let blocked = t.path().join("dir");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"").unwrap();
        assert!(atomic_write(&blocked, b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        let leftovers: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }

    #[test]
    fn json_round_trip_and_missing_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("r.json");
        assert_eq!(read_json::<serde_json::Value>(&p).unwrap(), None);
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(read_json::<serde_json::Value>(&p).unwrap(), Some(serde_json::json!({"a": 1})));
        fs::write(&p, b"{nope").unwrap();
        let err = read_json::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains("r.json is not valid"), "{err}");
    }
}
