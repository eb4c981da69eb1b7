//! Git credentials from the client, on demand (the provider's
//! `agent.injectGitCredentials`).
//!
//! While a `den ssh` session or an OpenSSH connection through den's
//! ProxyCommand is open, den runs a second, small exec into the container:
//! `den agent credentials-server`. It listens on a socket in the agent's
//! folder (`cred/PID.sock`) and relays each request to den over its stdio
//! as one JSON line; den answers with what `git credential fill|approve|
//! reject` says on the client. Git in the container asks through the helper
//! setup configures in /etc/gitconfig: `den agent git-credential OP`, which
//! tries the sockets, newest first, and prints nothing when no client is
//! connected (git then falls back to its other helpers or a prompt).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use den_protocol::relay::helper_socket::{serve_until, Pending};
pub use den_protocol::{CredentialAnswer, CredentialRequest};

fn socket_dir(data: &Path) -> PathBuf {
    data.join("cred")
}

/// The block setup keeps in /etc/gitconfig.
const BEGIN: &str = "# den: git credentials from the client (begin)";
const END: &str = "# den: git credentials from the client (end)";

/// Adds (or, with `enable` false, removes) den's credential helper in
/// `gitconfig`, keeping everything else as it was.
pub fn configure_git(gitconfig: &Path, agent: &Path, enable: bool) -> std::io::Result<()> {
    let old = match std::fs::read_to_string(gitconfig) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut kept = String::new();
    let mut inside = false;
    for line in old.lines() {
        if line == BEGIN {
            inside = true;
        } else if line == END {
            inside = false;
        } else if !inside {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if enable {
        let path = agent.display().to_string();
        if path.contains(['\n', '\r']) {
            return Err(std::io::Error::other("the agent's path holds a line break"));
        }
        // Shell-quote for the `!` command first, then escape for git's
        // config syntax.
        let shell = format!("'{}'", path.replace('\'', "'\\''"));
        let value = format!("!{shell} agent git-credential").replace('\\', "\\\\").replace('"', "\\\"");
        kept.push_str(&format!("{BEGIN}\n[credential]\n\thelper = \"{value}\"\n{END}\n"));
    }
    if kept == old {
        return Ok(());
    }
    if let Some(dir) = gitconfig.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = gitconfig.with_extension("den-tmp");
    std::fs::write(&tmp, kept)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, gitconfig)
}

/// `den agent git-credential OP`: git's helper. Exit 0 with no output when
/// no client answers.
pub fn helper_main(op: &str, data: &Path) -> i32 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    if let Some(answer) = ask(op, &input, data) {
        print!("{answer}");
    }
    0
}

/// Asks the newest connected client; `None` when none answers.
pub fn ask(op: &str, input: &str, data: &Path) -> Option<String> {
    // Only questions go to the client: git's store/erase (after a success
    // or a 401 in here) must not change the client's credential store.
    if !matches!(op, "get" | "docker-get" | "docker-list") {
        return None;
    }
    if let Some(answer) = ask_once(op, input, data) {
        return Some(answer);
    }
    // den starts the relay beside the SSH connection: a command run at once
    // may ask before it listens. Wait a little while no relay answers and a
    // session is open (with none, no relay is coming). A socket an earlier
    // session left behind does not end the wait: only one that answers does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline && crate::inactivity::session_open(data) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if let Some(answer) = ask_once(op, input, data) {
            return Some(answer);
        }
    }
    None
}

fn ask_once(op: &str, input: &str, data: &Path) -> Option<String> {
    let mut sockets: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(socket_dir(data))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sock"))
        .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
        .collect();
    sockets.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (_, path) in sockets {
        let Ok(mut conn) = UnixStream::connect(&path) else { continue };
        if conn.write_all(format!("{op}\n{input}").as_bytes()).is_err() {
            continue;
        }
        let _ = conn.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        if conn.read_to_string(&mut answer).is_ok() {
            return Some(answer);
        }
    }
    None
}

/// `den agent credentials-server`: relays requests from the socket to den
/// (stdout) and its answers (stdin) back, until den closes stdin.
pub fn server_main(data: &Path) -> i32 {
    relay(data, std::io::stdin(), std::io::stdout())
}

/// The `den-credentials` subsystem: serves a helper socket of its own in
/// the container, sends each question as a JSON line on `out` and passes
/// the answers read from `input` back, until `input` ends; then the socket
/// goes. The line server runs it on a thread, once per relay.
pub fn relay(data: &Path, input: impl Read + Send + 'static, out: impl Write + Send + 'static) -> i32 {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    /// Relays served by this process so far: each socket's name is its own.
    static SERVED: AtomicUsize = AtomicUsize::new(0);
    let dir = socket_dir(data);
    let _ = std::fs::create_dir_all(&dir);
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    let n = SERVED.fetch_add(1, Ordering::SeqCst);
    let path = dir.join(format!("{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("den agent: credentials socket {}: {e}", path.display());
            return 1;
        }
    };
    // Only the remote user (who runs git, and so the helper) and root may
    // ask: other users of the container get nothing.
    let owner = std::fs::read(data.join("workspace.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::protocol::WorkspaceInfo>(&b).ok())
        .map(|i| (i.user.uid, i.user.gid));
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
    }
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    let pending = Pending::default();
    let stop = std::sync::Arc::new(AtomicBool::new(false));

    // Answers from den; their end means den is gone: stop serving (a
    // connection of our own wakes the accept).
    {
        let (pending, path, stop) = (pending.clone(), path.clone(), stop.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(input).lines().map_while(Result::ok) {
                if let Ok(a) = serde_json::from_str::<CredentialAnswer>(&line) {
                    pending.answer(a);
                }
            }
            stop.store(true, Ordering::SeqCst);
            let _ = UnixStream::connect(&path);
            let _ = std::fs::remove_file(&path);
        });
    }
    let out = std::sync::Mutex::new(out);
    serve_until(listener, pending, stop, move |req| {
        let mut o = out.lock().expect("not poisoned");
        let _ = writeln!(o, "{}", serde_json::to_string(req).expect("serialises"));
        let _ = o.flush();
    });
    0
}

/// Where setup puts the docker credential helper (docker finds
/// `docker-credential-NAME` on PATH).
pub const DOCKER_HELPER: &str = "/usr/local/bin/docker-credential-den";

/// Installs (or removes) the `docker-credential-den` helper and makes it the
/// remote user's `credsStore` in `~/.docker/config.json` (other settings
/// kept). Returns what it could not do.
pub fn configure_docker(agent: &Path, home: &Path, uid: u32, gid: u32, enable: bool) -> Result<(), String> {
    let config = home.join(".docker/config.json");
    // A ~/.docker mounted from elsewhere (often the host's own) is not
    // den's to change.
    {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        if let (Some(h), Some(d)) = (dev(home), dev(&home.join(".docker"))) {
            if h != d {
                return Err(format!("{} is mounted from elsewhere; not changing it", home.join(".docker").display()));
            }
        }
    }
    let mut doc: serde_json::Value = match std::fs::read_to_string(&config) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", config.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("{}: {e}", config.display())),
    };
    let ours = doc.get("credsStore").and_then(|v| v.as_str()) == Some("den");
    if !enable {
        let _ = std::fs::remove_file(DOCKER_HELPER);
        if ours {
            doc.as_object_mut().map(|o| o.remove("credsStore"));
            write_json_as(&config, &doc, uid, gid)?;
        }
        return Ok(());
    }
    let quoted = agent.display().to_string().replace('\'', "'\\''");
    let script = format!("#!/bin/sh\nexec '{quoted}' agent docker-credential \"$@\"\n");
    std::fs::create_dir_all("/usr/local/bin")
        .and_then(|_| std::fs::write(DOCKER_HELPER, script))
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(DOCKER_HELPER, std::fs::Permissions::from_mode(0o755))
        })
        .map_err(|e| format!("{DOCKER_HELPER}: {e}"))?;
    // A store the user chose stays theirs.
    if doc.get("credsStore").is_none() {
        doc["credsStore"] = serde_json::json!("den");
        write_json_as(&config, &doc, uid, gid)?;
    }
    Ok(())
}

fn write_json_as(path: &Path, doc: &serde_json::Value, uid: u32, gid: u32) -> Result<(), String> {
    let dir = path.parent().expect("has a parent");
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(doc).expect("serialises");
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    if created {
        let _ = std::os::unix::fs::chown(dir, Some(uid), Some(gid));
    }
    let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    Ok(())
}

/// `den agent docker-credential OP` (as `docker-credential-den`): `get`
/// and `list` ask the client; `store` and `erase` are refused (log in on
/// the client).
pub fn docker_helper_main(op: &str, data: &Path) -> i32 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let local = local_docker_store();
    match op {
        "get" => match local_get(&local, input.trim())
            .or_else(|| ask("docker-get", input.trim(), data).filter(|a| !a.trim().is_empty()))
        {
            Some(answer) => {
                print!("{answer}");
                0
            }
            None => {
                // docker's helper protocol: this text means "none here".
                println!("credentials not found in native keychain");
                1
            }
        },
        "list" => {
            let mut all: serde_json::Map<String, serde_json::Value> =
                ask("docker-list", "", data).and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default();
            for (url, entry) in read_store(&local) {
                all.insert(url, entry.get("Username").cloned().unwrap_or_default());
            }
            print!("{}", serde_json::Value::Object(all));
            0
        }
        // `docker login`/`logout` in here: kept in here (never on the client).
        "store" => match serde_json::from_str::<serde_json::Value>(&input) {
            Ok(entry) => {
                let url = entry.get("ServerURL").and_then(|v| v.as_str()).unwrap_or("").to_string();
                let mut store = read_store(&local);
                store.insert(url, entry);
                write_store(&local, &store)
            }
            Err(e) => {
                eprintln!("den: docker credentials to store are not JSON: {e}");
                1
            }
        },
        "erase" => {
            let mut store = read_store(&local);
            store.remove(input.trim());
            write_store(&local, &store)
        }
        _ => {
            eprintln!("den: unknown docker credential operation `{op}`");
            1
        }
    }
}

/// Credentials `docker login` stored inside the workspace (the user's own
/// file, 0600); they win over the client's.
fn local_docker_store() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/den-credentials.json")
}

fn read_store(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn write_store(path: &Path, store: &serde_json::Map<String, serde_json::Value>) -> i32 {
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string(store).expect("serialises");
    let r = path.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|_| {
        let tmp = path.with_extension("tmp");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|_| std::fs::rename(&tmp, path))
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("den: {}: {e}", path.display());
            1
        }
    }
}

fn local_get(path: &Path, server: &str) -> Option<String> {
    read_store(path).get(server).map(|v| v.to_string())
}

/// Removes sockets whose server is gone (killed with its container).
pub fn clear_stale_sockets(data: &Path) {
    for e in std::fs::read_dir(socket_dir(data)).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "sock") && UnixStream::connect(e.path()).is_err() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitconfig_block_is_added_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gitconfig");
        std::fs::write(&f, "[user]\n\tname = x\n").unwrap();
        configure_git(&f, Path::new("/usr/local/bin/den"), true).unwrap();
        configure_git(&f, Path::new("/usr/local/bin/den"), true).unwrap();
        let t = std::fs::read_to_string(&f).unwrap();
        assert_eq!(t.matches("[credential]").count(), 1, "{t}");
        assert!(t.starts_with("[user]\n\tname = x\n"));
        assert!(t.contains("helper = \"!'/usr/local/bin/den' agent git-credential\""), "{t}");
        // a quote in the path: shell-quoted, then escaped for git
        let odd = dir.path().join("odd");
        configure_git(&odd, Path::new("/opt/it's \"here\"/den"), true).unwrap();
        let t = std::fs::read_to_string(&odd).unwrap();
        assert!(t.contains(r#"helper = "!'/opt/it'\\''s \"here\"/den' agent git-credential""#), "{t}");
        assert!(configure_git(&odd, Path::new("/a\nb"), true).is_err());
        configure_git(&f, Path::new("/tmp/den-agent/den"), true).unwrap();
        let t = std::fs::read_to_string(&f).unwrap();
        assert!(t.contains("/tmp/den-agent/den") && !t.contains("/usr/local/bin/den"), "{t}");
        configure_git(&f, Path::new("/tmp/den-agent/den"), false).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "[user]\n\tname = x\n");
        // nothing to remove: the file is not even written
        let g = dir.path().join("none");
        configure_git(&g, Path::new("/x"), false).unwrap();
        assert!(!g.exists());
    }

    #[test]
    fn docker_config_keeps_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(".docker/config.json");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(&cfg, r#"{"auths": {"x": {}}, "detachKeys": "ctrl-e"}"#).unwrap();
        let (uid, gid) = (unsafe { libc::getuid() }, unsafe { libc::getgid() });
        let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        doc["credsStore"] = serde_json::json!("den");
        write_json_as(&cfg, &doc, uid, gid).unwrap();
        let back: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back["detachKeys"], "ctrl-e");
        assert_eq!(back["credsStore"], "den");
    }

    #[test]
    fn helper_without_a_client_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ask("get", "host=x\n", dir.path()), None);
        // a stale socket file (its server is gone) is skipped
        std::fs::create_dir_all(dir.path().join("cred")).unwrap();
        drop(UnixListener::bind(dir.path().join("cred/1.sock")).unwrap());
        assert_eq!(ask("get", "host=x\n", dir.path()), None);
        assert_eq!(ask("frobnicate", "", dir.path()), None);
        assert_eq!(ask("erase", "host=x\n", dir.path()), None, "erase never reaches the client");
        clear_stale_sockets(dir.path());
        assert!(!dir.path().join("cred/1.sock").exists(), "a socket with no server is cleared");
    }
}
