//! The browser IDE (`openvscode`): OpenVSCode Server runs in the workspace
//! and den opens the browser on a port it forwards. This module knows the
//! IDE options, where the server's archive comes from (a release URL or a
//! local archive), and fetching it into den's cache, checked.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::IdeError;

/// The OpenVSCode Server release den asks for when no option says another.
pub const DEFAULT_VERSION: &str = "1.86.2";
/// The port the server listens on inside the workspace by default.
pub const DEFAULT_PORT: u16 = 10800;
/// No archive is bigger (OpenVSCode Server is about 80 MB).
const MAX_BYTES: u64 = 1 << 30;

/// `--ide-option` names for `openvscode`.
pub const OPTIONS: &[(&str, &str)] = &[
    ("VERSION", "the OpenVSCode Server release (default 1.86.2)"),
    ("DOWNLOAD_URL", "where to download the server archive (default: the release on GitHub for VERSION and the workspace's architecture)"),
    ("ARCHIVE", "a server archive (.tar.gz) on this machine, instead of a download"),
    ("SHA256", "the archive's SHA-256; a different archive is refused"),
    ("PORT", "the server's port in the workspace (default 10800)"),
    ("OPEN", "false: start the server and forward it, but open no browser"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    pub version: String,
    pub url: Option<String>,
    pub archive: Option<PathBuf>,
    pub sha256: Option<String>,
    pub port: u16,
    pub open: bool,
}

fn bad(name: &str, why: String) -> IdeError {
    IdeError::Option { name: name.to_string(), why }
}

/// Reads `--ide-option K=V` pairs for `openvscode`.
pub fn options(pairs: &[(String, String)]) -> Result<ServerOptions, IdeError> {
    let mut o = ServerOptions {
        version: DEFAULT_VERSION.into(),
        url: None,
        archive: None,
        sha256: None,
        port: DEFAULT_PORT,
        open: true,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "VERSION" if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)) => {
                o.version = v.clone()
            }
            "VERSION" => return Err(bad(k, format!("`{v}` is not a version like {DEFAULT_VERSION}"))),
            "DOWNLOAD_URL" if v.starts_with("https://") || is_loopback_http(v) => o.url = Some(v.clone()),
            "DOWNLOAD_URL" => {
                return Err(bad(k, format!("`{v}`: an https URL (plain http only for loopback addresses)")))
            }
            "ARCHIVE" => o.archive = Some(PathBuf::from(v)),
            "SHA256" if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) => o.sha256 = Some(v.to_lowercase()),
            "SHA256" => return Err(bad(k, format!("`{v}` is not a SHA-256 (64 hex digits)"))),
            "PORT" => {
                o.port = v.parse().ok().filter(|p| *p > 0).ok_or_else(|| bad(k, format!("`{v}` is not a port")))?
            }
            "OPEN" => {
                o.open = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(k, format!("`{v}` is not true or false"))),
                }
            }
            _ => {
                let names: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
                return Err(bad(k, format!("openvscode has no such option (it has {})", names.join(", "))));
            }
        }
    }
    Ok(o)
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// The release archive's name part for `uname -m` of the workspace.
pub fn release_arch(machine: &str) -> Result<&'static str, IdeError> {
    match machine.trim() {
        "x86_64" | "amd64" => Ok("x64"),
        "aarch64" | "arm64" => Ok("arm64"),
        "armv7l" | "armhf" => Ok("armhf"),
        other => {
            Err(bad("VERSION", format!("OpenVSCode Server has no release for the workspace's architecture `{other}`")))
        }
    }
}

/// The GitHub release URL of OpenVSCode Server `version` for `arch`.
pub fn release_url(version: &str, arch: &str) -> String {
    format!(
        "https://github.com/gitpod-io/openvscode-server/releases/download/openvscode-server-v{version}/openvscode-server-v{version}-linux-{arch}.tar.gz"
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server archive for `o` on a workspace of `arch`, in `cache` (named
/// by its SHA-256): the local archive, else the cached download of the
/// URL, else a new download. Returns its path and SHA-256.
pub fn fetch(o: &ServerOptions, arch: &str, cache: &Path) -> Result<(PathBuf, String), IdeError> {
    let io = |what: String| move |e: std::io::Error| IdeError::Fetch(format!("{what}: {e}"));
    std::fs::create_dir_all(cache).map_err(io(cache.display().to_string()))?;
    let check = |sha: &str, from: &str| match &o.sha256 {
        Some(want) if want != sha => Err(IdeError::Fetch(format!(
            "{from} has SHA-256 {sha}, not {want} (given with --ide-option SHA256): refused"
        ))),
        _ => Ok(()),
    };
    if let Some(a) = &o.archive {
        let mut f = std::fs::File::open(a).map_err(io(a.display().to_string()))?;
        let size = f.metadata().map_err(io(a.display().to_string()))?.len();
        if size == 0 || size > MAX_BYTES {
            return Err(IdeError::Fetch(format!("{}: {size} bytes is not a server archive", a.display())));
        }
        let mut h = sha2::Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(io(a.display().to_string()))?;
        let sha = hex(&h.finalize());
        check(&sha, &a.display().to_string())?;
        return Ok((a.clone(), sha));
    }
    let url = o.url.clone().unwrap_or_else(|| release_url(&o.version, arch));
    // A URL fetched before: its archive by the hash recorded for it.
    let index = cache.join(format!("url-{}", &hex(&sha2::Sha256::digest(url.as_bytes()))[..32]));
    if let Ok(sha) = std::fs::read_to_string(&index) {
        let path = cache.join(format!("openvscode-{}.tar.gz", sha.trim()));
        if path.is_file() && check(sha.trim(), &url).is_ok() {
            return Ok((path, sha.trim().to_string()));
        }
    }
    // den's one HTTP client: https (http only to loopback) on every
    // redirect hop, never down from https to http.
    let resp = match den_http::Http::new().send(&den_http::Request::get(&url)) {
        Ok(Ok(resp)) => resp,
        Ok(Err(resp)) => return Err(IdeError::Fetch(format!("{url}: the server answered {}", resp.status()))),
        Err(e) => return Err(IdeError::Fetch(format!("cannot download {url}: {e}"))),
    };
    let expected: Option<u64> = resp.header("Content-Length").and_then(|l| l.parse().ok());
    if expected.is_some_and(|n| n > MAX_BYTES) {
        return Err(IdeError::Fetch(format!("{url}: {} bytes is more than a server archive", expected.unwrap_or(0))));
    }
    let tmp = cache.join(format!(".download-{}", std::process::id()));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(io(tmp.display().to_string()))?;
        let mut h = sha2::Sha256::new();
        let mut reader = resp.into_reader().take(MAX_BYTES + 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            let got = reader.read(&mut buf).map_err(io(url.clone()))?;
            if got == 0 {
                break;
            }
            n += got as u64;
            h.update(&buf[..got]);
            std::io::Write::write_all(&mut out, &buf[..got]).map_err(io(tmp.display().to_string()))?;
        }
        if n == 0 || n > MAX_BYTES || expected.is_some_and(|e| e != n) {
            return Err(IdeError::Fetch(format!(
                "{url}: got {n} bytes{}; not a complete server archive",
                expected.map(|e| format!(" of {e}")).unwrap_or_default()
            )));
        }
        let sha = hex(&h.finalize());
        check(&sha, &url)?;
        Ok(sha)
    })();
    let sha = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let path = cache.join(format!("openvscode-{sha}.tar.gz"));
    std::fs::rename(&tmp, &path).map_err(io(path.display().to_string()))?;
    let _ = std::fs::write(&index, &sha);
    Ok((path, sha))
}

/// The browser's URL for the server on `local_port`: the folder to open
/// and the connection token.
pub fn browser_url(local_port: u16, folder: &str, token: &str) -> String {
    format!("http://127.0.0.1:{local_port}/?folder={}&tkn={}", crate::encode(folder), crate::encode(token))
}

/// A page that sends the browser on to `url` at once: den opens the browser
/// on this page (a 0600 file of the user's) rather than on `url`, whose
/// token would show in the browser's command line to every local user.
pub fn redirect_page(url: &str) -> String {
    let attr: String = url
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0;url={attr}\">\n<title>OpenVSCode Server</title></head>\n<body><p><a href=\"{attr}\">Open OpenVSCode Server</a></p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_page_leads_to_the_url_and_keeps_it_one_attribute() {
        let page = redirect_page("http://127.0.0.1:5/?folder=%2Fw&tkn=ab\"<x>");
        assert!(page.contains("content=\"0;url=http://127.0.0.1:5/?folder=%2Fw&amp;tkn=ab&quot;&lt;x&gt;\""), "{page}");
        assert!(page.contains("href=\"http://127.0.0.1:5/?folder=%2Fw&amp;tkn=ab&quot;&lt;x&gt;\""), "{page}");
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_and_their_errors() {
        let o = options(&[]).unwrap();
        assert_eq!((o.version.as_str(), o.port, o.open), (DEFAULT_VERSION, DEFAULT_PORT, true));
        let o =
            options(&kv(&[("PORT", "9000"), ("OPEN", "false"), ("DOWNLOAD_URL", "http://127.0.0.1:8/x.tgz")])).unwrap();
        assert_eq!((o.port, o.open, o.url.as_deref()), (9000, false, Some("http://127.0.0.1:8/x.tgz")));
        for (k, v, says) in [
            ("PORT", "0", "not a port"),
            ("SHA256", "abc", "64 hex digits"),
            ("DOWNLOAD_URL", "http://example.com/x", "only for loopback"),
            ("VERSION", "1.0;rm", "not a version"),
            ("THEME", "dark", "no such option"),
            ("OPEN", "yes", "true or false"),
        ] {
            let e = options(&kv(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(says), "{e}");
        }
    }

    #[test]
    fn release_urls() {
        assert_eq!(
            release_url("1.86.2", release_arch("x86_64\n").unwrap()),
            "https://github.com/gitpod-io/openvscode-server/releases/download/openvscode-server-v1.86.2/openvscode-server-v1.86.2-linux-x64.tar.gz"
        );
        assert_eq!(release_arch("aarch64").unwrap(), "arm64");
        assert!(release_arch("riscv64").is_err());
        assert_eq!(
            browser_url(8080, "/workspaces/my app", "t0k"),
            "http://127.0.0.1:8080/?folder=%2Fworkspaces%2Fmy%20app&tkn=t0k"
        );
    }

    #[test]
    fn a_local_archive_is_checked() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("server.tar.gz");
        std::fs::write(&a, b"not really gzip, but bytes").unwrap();
        let sha = hex(&sha2::Sha256::digest(b"not really gzip, but bytes"));
        let mut o = options(&kv(&[("ARCHIVE", a.to_str().unwrap())])).unwrap();
        assert_eq!(fetch(&o, "x64", &d.path().join("cache")).unwrap(), (a.clone(), sha.clone()));
        o.sha256 = Some("0".repeat(64));
        let e = fetch(&o, "x64", &d.path().join("cache")).unwrap_err().to_string();
        assert!(e.contains(&sha) && e.contains("refused"), "{e}");
        std::fs::write(&a, b"").unwrap();
        o.sha256 = None;
        assert!(fetch(&o, "x64", &d.path().join("cache")).unwrap_err().to_string().contains("0 bytes"));
    }
}
