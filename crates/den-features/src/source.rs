//! Where a Feature comes from, and fetching it into den's cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use den_oci::Reference;

use crate::FeatureError;

/// The media type of a Feature's layer in an OCI artifact.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.devcontainers.layer.v1+tar";
/// The artifact's config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.devcontainers";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A folder, relative to the configuration's folder when written
    /// `./x` or `../x`.
    Local(PathBuf),
    Oci(Reference),
    /// A `.tgz` at an http(s) URL.
    Tarball(String),
}

impl Source {
    /// Reads a Feature id as written in `features` or `dependsOn`.
    pub fn parse(id: &str, config_dir: &Path) -> Result<Source, String> {
        let id = id.trim();
        if id.starts_with("./") || id.starts_with("../") || id == "." || id == ".." {
            return Ok(Source::Local(config_dir.join(id)));
        }
        if id.starts_with('/') {
            return Ok(Source::Local(PathBuf::from(id)));
        }
        if id.starts_with("https://") || id.starts_with("http://") {
            let name = id.split(['?', '#']).next().unwrap_or(id).rsplit('/').next().unwrap_or("");
            let feature = name.strip_prefix("devcontainer-feature-").and_then(|n| n.strip_suffix(".tgz"));
            if !feature.is_some_and(|f| {
                !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }) {
                return Err(format!("a Feature URL names a file `devcontainer-feature-ID.tgz`; `{name}` is not one"));
            }
            return Ok(Source::Tarball(id.to_string()));
        }
        if !id.contains('/') {
            return Err(format!(
                "`{id}` is a short Feature id of the retired vscode-dev-containers set that den does not know; name it in full (`ghcr.io/devcontainers/features/…:1`) or as a folder (`./{id}`)"
            ));
        }
        Reference::parse(id).map(Source::Oci).map_err(|e| e.to_string())
    }

    /// What the Feature is called without its version, for `installsAfter`
    /// and for telling two references to the same Feature apart from two
    /// Features: `registry/repository` for OCI, the URL or folder else.
    pub fn resource(&self) -> String {
        match self {
            Source::Local(p) => p.display().to_string(),
            Source::Oci(r) => r.name(),
            Source::Tarball(u) => u.clone(),
        }
    }
}

/// A Feature's files in den's cache, and what identifies that content.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub dir: PathBuf,
    /// `sha256:…` of the content: the OCI manifest's digest, the
    /// tarball's, or (local folders) of every file's path and bytes.
    pub digest: String,
    /// The OCI manifest digest, when the Feature came from a registry.
    pub manifest_digest: Option<String>,
}

/// Fetches Features into `cache` (den's data; one folder per content
/// digest, made once).
pub struct Fetcher {
    pub cache: PathBuf,
    pub client: den_oci::Client,
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Unpacks a tar stream into a new folder at `dest` (through a temporary
/// one beside it, so a failed unpack leaves nothing). Entries that would
/// land outside the folder are refused by `tar`.
fn unpack(reader: impl Read, dest: &Path) -> std::io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let parent = dest.parent().expect("cache folder");
    std::fs::create_dir_all(parent)?;
    let tmp = tempdir_in(parent)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let result = archive.unpack(&tmp).and_then(|()| match std::fs::rename(&tmp, dest) {
        // Another den made it meanwhile: theirs is the same content.
        Err(_) if dest.is_dir() => std::fs::remove_dir_all(&tmp),
        r => r,
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn tempdir_in(parent: &Path) -> std::io::Result<PathBuf> {
    for i in 0..100u32 {
        let p = parent.join(format!(".tmp-{}-{i}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary folder name"))
}

/// A digest of a folder's files: each relative path and its bytes, in
/// sorted order (`.git` folders left out).
pub fn folder_digest(dir: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                if e.file_name() != ".git" {
                    stack.push(e.path());
                }
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        let bytes = if f.is_file() {
            std::fs::read(&f)?
        } else {
            std::fs::read_link(&f)?.into_os_string().into_encoded_bytes()
        };
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("sha256:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

impl Fetcher {
    pub fn new(cache: PathBuf) -> Fetcher {
        Fetcher { cache, client: den_oci::Client::default() }
    }

    /// Fetches one Feature. `pinned`: the manifest digest the lockfile
    /// names for an OCI Feature (fetched by that digest).
    pub fn fetch(&self, id: &str, source: &Source, pinned: Option<&str>) -> Result<Fetched, FeatureError> {
        let fail = |message: String| FeatureError::Fetch { feature: id.to_string(), message };
        match source {
            Source::Local(dir) => {
                if !dir.is_dir() {
                    return Err(fail(format!("{} is not a folder", dir.display())));
                }
                let digest = folder_digest(dir).map_err(|e| fail(format!("reading {}: {e}", dir.display())))?;
                Ok(Fetched { dir: dir.clone(), digest, manifest_digest: None })
            }
            Source::Tarball(url) => {
                if url.starts_with("http://") && !loopback_url(url) {
                    return Err(fail(format!("{url}: plain http is used only for loopback addresses; use https")));
                }
                let resp = ureq::get(url).call().map_err(|e| match e {
                    ureq::Error::Status(code, _) => fail(format!("{url}: the server answered {code}")),
                    ureq::Error::Transport(t) => fail(format!("cannot reach {url}: {t}")),
                })?;
                let mut bytes = Vec::new();
                resp.into_reader()
                    .take(den_oci::MAX_BLOB + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(format!("{url}: {e}")))?;
                if bytes.len() as u64 > den_oci::MAX_BLOB {
                    return Err(fail(format!("{url}: larger than {} bytes", den_oci::MAX_BLOB)));
                }
                let digest = den_oci::sha256_digest(&bytes);
                let dir = self.cache.join("tarball").join(hex(&digest));
                let gz = bytes.starts_with(&[0x1f, 0x8b]);
                let r = if gz { unpack(gunzip(&bytes), &dir) } else { unpack(&bytes[..], &dir) };
                r.map_err(|e| fail(format!("{url}: not a readable .tgz: {e}")))?;
                Ok(Fetched { dir, digest, manifest_digest: None })
            }
            Source::Oci(r) => {
                let r = match pinned {
                    Some(d) => r.at_digest(d),
                    None => r.clone(),
                };
                let manifest = self.client.manifest(&r).map_err(|e| fail(e.to_string()))?;
                let dir = self.cache.join("oci").join(hex(&manifest.digest));
                if !dir.join("devcontainer-feature.json").is_file() {
                    let layers = manifest.layers();
                    let (_, layer, _) = layers
                        .iter()
                        .find(|(t, _, _)| t == LAYER_MEDIA_TYPE)
                        .or_else(|| layers.first())
                        .ok_or_else(|| fail(format!("{r}: the manifest has no layer")))?;
                    let bytes = self.client.blob(&r, layer).map_err(|e| fail(e.to_string()))?;
                    let gz = bytes.starts_with(&[0x1f, 0x8b]);
                    let res = if gz { unpack(gunzip(&bytes), &dir) } else { unpack(&bytes[..], &dir) };
                    res.map_err(|e| fail(format!("{r}: the layer is not a readable tar: {e}")))?;
                }
                Ok(Fetched { dir, digest: manifest.digest.clone(), manifest_digest: Some(manifest.digest) })
            }
        }
    }
}

/// Most bytes a Feature archive unpacks to: a small archive that expands
/// without end stops here, as a truncated (so unreadable) archive.
const MAX_UNPACKED: u64 = 2 << 30;

fn gunzip(bytes: &[u8]) -> impl Read + '_ {
    flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED)
}

fn loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_source() {
        let dir = Path::new("/p/.devcontainer");
        assert_eq!(Source::parse("./hello", dir).unwrap(), Source::Local(dir.join("./hello")));
        assert!(matches!(Source::parse("ghcr.io/devcontainers/features/node:1", dir).unwrap(), Source::Oci(_)));
        assert!(matches!(
            Source::parse("https://example.com/devcontainer-feature-go.tgz", dir).unwrap(),
            Source::Tarball(_)
        ));
        assert!(Source::parse("nodejs-thing", dir).unwrap_err().contains("./nodejs-thing"));
        assert!(Source::parse("https://example.com/feature.tgz", dir)
            .unwrap_err()
            .contains("devcontainer-feature-ID.tgz"));
        assert!(Source::parse("ghcr.io/Bad/Name", dir).is_err());
        assert_eq!(
            Source::parse("ghcr.io/devcontainers/features/node:1", dir).unwrap().resource(),
            "ghcr.io/devcontainers/features/node"
        );
    }

    #[test]
    fn only_loopback_urls_may_be_plain_http() {
        assert!(loopback_url("http://127.0.0.1:8080/x.tgz"));
        assert!(loopback_url("http://localhost/x.tgz"));
        assert!(!loopback_url("http://localhost.evil.com/x.tgz"));
        assert!(!loopback_url("http://example.com/x.tgz"));
    }

    #[test]
    fn a_folder_digest_changes_with_any_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("install.sh"), "echo 1").unwrap();
        let a = folder_digest(d.path()).unwrap();
        std::fs::write(d.path().join("install.sh"), "echo 2").unwrap();
        let b = folder_digest(d.path()).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/x"), "").unwrap();
        let c = folder_digest(d.path()).unwrap();
        assert!(a != b && b != c);
    }

    #[test]
    fn unpacking_refuses_paths_outside_and_leaves_nothing_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "ok.txt", &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        unpack(&bytes[..], &d.path().join("good")).unwrap();
        assert!(d.path().join("good/ok.txt").is_file());
        // A truncated archive: an error and no folder.
        assert!(unpack(&bytes[..700], &d.path().join("bad")).is_err() || !d.path().join("bad/ok.txt").exists());
        assert!(std::fs::read_dir(d.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp")));
    }
}
