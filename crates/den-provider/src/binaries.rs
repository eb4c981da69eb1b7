//! A provider's `binaries`: helper programs its commands call as
//! `${NAME}`. For this OS and architecture den takes the matching entry's
//! `path` — relative to where the provider.yaml came from (its folder, or
//! its URL), a file or `file://` URL (only for a provider.yaml on this
//! machine), or an `http(s)://` URL fetched with den's HTTP client — checks
//! its `checksum` (SHA-256) when one is given, unpacks `archivePath` from a
//! .tar.gz, and keeps it under the provider's folder. Commands then get
//! `NAME=/path/to/binary`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Base, Binary, Manifest, ProviderError};

/// Largest binary den downloads (provider binaries are tens of MiB).
pub const MAX_BINARY_BYTES: u64 = 512 << 20;

/// The entry for this machine, if the manifest has one.
fn pick(entries: &[Binary]) -> Option<&Binary> {
    let arch = crate::go_arch();
    entries.iter().find(|b| b.os.eq_ignore_ascii_case(std::env::consts::OS) && b.arch.eq_ignore_ascii_case(arch))
}

/// Where a binary lives once installed under `dir` (the provider's
/// binaries folder).
fn installed_path(dir: &Path, name: &str, b: &Binary) -> PathBuf {
    dir.join(name).join(b.file_name(name))
}

/// Installs every binary the manifest has for this machine. `base` is
/// where relative paths start (where the provider.yaml came from).
pub fn install(dir: &Path, manifest: &Manifest, base: &Base, http: &den_http::Http) -> Result<(), ProviderError> {
    let bad = |message: String| ProviderError::Binary { provider: manifest.name.clone(), message };
    for (name, entries) in &manifest.binaries {
        let Some(b) = pick(entries) else {
            return Err(bad(format!("binary {name} has no entry for {}/{}", std::env::consts::OS, crate::go_arch())));
        };
        fetch(name, b, base, http, &installed_path(dir, name, b)).map_err(|e| bad(format!("binary {name}: {e}")))?;
    }
    Ok(())
}

/// `NAME=path` for each installed binary.
pub fn env(dir: &Path, provider: &str, manifest: &Manifest) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    for (name, entries) in &manifest.binaries {
        let Some(b) = pick(entries) else { continue };
        let path = installed_path(dir, name, b);
        if !path.is_file() {
            return Err(ProviderError::Binary {
                provider: provider.into(),
                message: format!("binary {name} is not installed; add the provider again (`den provider add`)"),
            });
        }
        out.push((name.clone(), path.display().to_string()));
    }
    Ok(out)
}

/// The binary's bytes, from where its `path` points.
fn read(path: &str, base: &Base, http: &den_http::Http) -> Result<Vec<u8>, String> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return http.get(path, MAX_BINARY_BYTES).map_err(|e| e.to_string());
    }
    let local = path.strip_prefix("file://").map(PathBuf::from);
    let absolute = local.is_some() || Path::new(path).is_absolute();
    let local = match base {
        Base::Url(url) if !absolute => {
            let url = den_http::join(url, path).map_err(|e| e.to_string())?;
            return http.get(&url, MAX_BINARY_BYTES).map_err(|e| e.to_string());
        }
        Base::Url(url) => {
            return Err(format!("{path} is a file on this machine, which a provider.yaml from {url} may not name"))
        }
        Base::None => return Err(format!("{path}: a built-in provider has no folder of its own")),
        Base::Dir(_) if absolute => local.unwrap_or_else(|| PathBuf::from(path)),
        Base::Dir(dir) => dir.join(path),
    };
    std::fs::read(&local).map_err(|e| format!("reading {}: {e}", local.display()))
}

fn fetch(name: &str, b: &Binary, base: &Base, http: &den_http::Http, dest: &Path) -> Result<(), String> {
    let bytes = read(&b.path, base, http)?;
    if !b.checksum.trim().is_empty() {
        use sha2::Digest;
        let got: String = sha2::Sha256::digest(&bytes).iter().map(|x| format!("{x:02x}")).collect();
        if !got.eq_ignore_ascii_case(b.checksum.trim()) {
            return Err(format!("checksum mismatch for {}: expected {}, got {got}", b.path, b.checksum.trim()));
        }
    }
    let content = if b.archive_path.is_empty() { bytes } else { from_archive(&b.path, &bytes, &b.archive_path)? };
    let dir = dest.parent().expect("has a parent");
    // Through den-state, so that a DEN_HOME this makes first is 0700 too.
    den_state::create_private_dir(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    std::fs::write(&tmp, &content).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .and_then(|_| std::fs::rename(&tmp, dest))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("installing {}: {e}", dest.display())
        })
}

/// One file out of a .tar.gz / .tgz / .tar.
fn from_archive(origin: &str, bytes: &[u8], inner: &str) -> Result<Vec<u8>, String> {
    let lower = origin.to_ascii_lowercase();
    let reader: Box<dyn Read + '_> = if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if lower.ends_with(".tar") {
        Box::new(bytes)
    } else {
        return Err(format!("{origin}: den unpacks archivePath from .tar.gz, .tgz and .tar archives only"));
    };
    let want = inner.trim_start_matches("./");
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| format!("{origin}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{origin}: {e}"))?;
        let path = entry.path().map_err(|e| format!("{origin}: {e}"))?.display().to_string();
        if path.trim_start_matches("./") == want {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).map_err(|e| format!("{origin}: {e}"))?;
            return Ok(out);
        }
    }
    Err(format!("{origin} holds no {inner}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder and the provider's binaries folder inside it.
    fn den() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("home/providers/p/binaries");
        (dir, bin)
    }

    fn http() -> den_http::Http {
        den_http::Http::new()
    }

    fn sha(b: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
    }

    fn manifest(path: &str, checksum: &str, archive: &str) -> Manifest {
        let text = format!(
            "name: p\nbinaries:\n  TOOL:\n    - os: linux\n      arch: arm64\n      path: /nope\n    - os: linux\n      arch: {}\n      path: {path}\n      checksum: '{checksum}'\n      archivePath: '{archive}'\n",
            crate::go_arch()
        );
        Manifest::parse(&text, "t").unwrap()
    }

    #[test]
    fn relative_and_file_url_with_checksum() {
        let (dir, den) = den();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("tool.sh"), b"#!/bin/sh\necho tool\n").unwrap();
        let sum = sha(b"#!/bin/sh\necho tool\n");
        let m = manifest("./tool.sh", &sum, "");
        install(&den, &m, &Base::Dir(src.clone()), &http()).unwrap();
        let env = env(&den, "p", &m).unwrap();
        assert_eq!(env[0].0, "TOOL");
        let out = den_process::Cmd::new(&env[0].1).output().unwrap();
        assert_eq!(out.stdout, "tool\n");

        let url = format!("file://{}", src.join("tool.sh").display());
        install(&den, &manifest(&url, "", ""), &Base::Dir("/".into()), &http()).unwrap();
    }

    #[test]
    fn bad_checksum_and_missing_file_are_refused() {
        let (dir, den) = den();
        std::fs::write(dir.path().join("tool"), b"x").unwrap();
        let e = install(&den, &manifest("./tool", &"0".repeat(64), ""), &Base::Dir(dir.path().into()), &http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("binary TOOL: checksum mismatch"), "{e}");
        assert!(!den.join("TOOL/tool").exists(), "nothing half-written");
        let e = install(&den, &manifest("./missing", "", ""), &Base::Dir(dir.path().into()), &http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("reading") && e.contains("missing"), "{e}");
    }

    #[test]
    fn archive_path_from_tar_gz() {
        let (dir, den) = den();
        let tgz = dir.path().join("tool.tar.gz");
        {
            let f = std::fs::File::create(&tgz).unwrap();
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            let data = b"#!/bin/sh\necho packed\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            t.append_data(&mut h, "bin/tool", &data[..]).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        let m = manifest("./tool.tar.gz", "", "bin/tool");
        install(&den, &m, &Base::Dir(dir.path().into()), &http()).unwrap();
        let p = den.join("TOOL/tool");
        assert_eq!(den_process::Cmd::new(&p).output().unwrap().stdout, "packed\n");
        let e = install(&den, &manifest("./tool.tar.gz", "", "bin/other"), &Base::Dir(dir.path().into()), &http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no bin/other"), "{e}");
    }

    /// A provider.yaml from a URL may not name files of this machine.
    #[test]
    fn a_fetched_manifest_names_no_local_files() {
        let (dir, den) = den();
        std::fs::write(dir.path().join("tool"), b"x").unwrap();
        let base = Base::Url("https://example.invalid/o/r/releases/download/v1/provider.yaml".into());
        for path in
            [dir.path().join("tool").display().to_string(), format!("file://{}", dir.path().join("tool").display())]
        {
            let e = install(&den, &manifest(&path, "", ""), &base, &http()).unwrap_err().to_string();
            assert!(e.contains("is a file on this machine, which a provider.yaml from https://example.invalid"), "{e}");
        }
        assert!(!den.exists());
    }
}
