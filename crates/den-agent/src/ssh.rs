//! `den agent ssh-server --stdio` and `den agent sftp-server`: the SSH end
//! of the tunnel inside the workspace.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use den_ssh::server::{Account, Settings};

use crate::passwd::{self, GroupFile, PasswdFile};
use crate::protocol::WorkspaceInfo;

/// The folder of the SSH host key and the authorized client key.
pub fn ssh_dir(data: &Path) -> PathBuf {
    data.join("ssh")
}

/// Makes the workspace's host key on first use (it then stays for the
/// container's life) and records the client key that may log in. Returns
/// the host's public key, for the client to pin.
pub fn prepare_keys(data: &Path, authorized_key: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = ssh_dir(data);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let host = den_ssh::keys::load_or_create(&dir.join("ssh_host_ed25519_key")).map_err(|e| e.to_string())?;
    if !authorized_key.trim().is_empty() {
        den_ssh::keys::parse_public(authorized_key).map_err(|e| format!("the client key is not valid: {e}"))?;
        std::fs::write(dir.join("authorized_keys"), format!("{}\n", authorized_key.trim()))
            .map_err(|e| format!("writing authorized_keys: {e}"))?;
    }
    Ok(den_ssh::keys::public_openssh(host.public_key()))
}

fn account(name: &str) -> Option<Account> {
    let pw = PasswdFile::read(Path::new("/etc/passwd")).ok()?;
    let gr = GroupFile::read(Path::new("/etc/group")).ok()?;
    let u = passwd::resolve_user(&pw, name)?;
    // A numeric spec that has no entry is fine for `docker exec -u`, but an
    // SSH login names a user that exists.
    if pw.by_name(&u.name).is_none() && pw.by_uid(u.uid).is_none() {
        return None;
    }
    let groups = std::iter::once(u.gid).chain(gr.supplementary(&u.name)).collect();
    Some(Account { name: u.name, uid: u.uid, gid: u.gid, groups, home: u.home, shell: u.shell })
}

/// What a connection is served with: the host key, the authorized key,
/// the workspace's environment and folder, the subsystems. Read anew for
/// each connection (a later `den up` may have changed them).
pub(crate) fn settings(
    data: &Path,
    workdir: Option<String>,
    events: std::sync::Arc<dyn Fn(den_ssh::server::Event) + Send + Sync>,
) -> Result<Settings, String> {
    let dir = ssh_dir(data);
    let host_key =
        match std::fs::read_to_string(dir.join("ssh_host_ed25519_key")).map(|t| den_ssh::keys::parse_private(&t)) {
            Ok(Ok(k)) => k,
            _ => return Err("this workspace has no SSH host key yet; run `den up` first".into()),
        };
    let authorized: Vec<_> = std::fs::read_to_string(dir.join("authorized_keys"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| den_ssh::keys::parse_public(l).ok())
        .collect();
    let info: WorkspaceInfo = std::fs::read(data.join("workspace.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = info.env.into_iter().collect();
    if env.is_empty() {
        env = std::env::vars().collect();
    }
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let subsystems = if exe.is_empty() {
        vec![]
    } else {
        vec![
            ("sftp".to_string(), vec![exe.clone(), "agent".into(), "sftp-server".into()]),
            (den_protocol::PORTS_SUBSYSTEM.to_string(), vec![exe.clone(), "agent".into(), "ports-watch".into()]),
            (den_protocol::CREDENTIALS_SUBSYSTEM.to_string(), vec![exe, "agent".into(), "credentials-server".into()]),
        ]
    };
    Ok(Settings {
        host_key,
        authorized,
        accounts: Box::new(account),
        env,
        workdir: workdir.unwrap_or(info.workspace_folder),
        subsystems,
        services: vec![],
        events,
    })
}

/// Serves one SSH connection on stdin/stdout. Runs as root; sessions run as
/// the user the client logs in as.
pub fn ssh_server_main(workdir: Option<String>) -> i32 {
    let data = crate::data_dir();
    // Open forwarded connections keep the workspace in use.
    let open_forwards = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (open, data) = (open_forwards.clone(), data.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            if open.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                crate::inactivity::touch(&data);
            }
        });
    }
    let events = {
        let data = data.clone();
        move |e: den_ssh::server::Event| {
            use std::sync::atomic::Ordering;
            match e {
                den_ssh::server::Event::Subsystem(name) if name == den_protocol::PORTS_SUBSYSTEM => {
                    crate::ports::mark_forwarder(&data)
                }
                den_ssh::server::Event::ForwardOpened => {
                    open_forwards.fetch_add(1, Ordering::Relaxed);
                    crate::inactivity::touch(&data);
                }
                den_ssh::server::Event::ForwardClosed => {
                    open_forwards.fetch_sub(1, Ordering::Relaxed);
                    crate::inactivity::touch(&data);
                }
                _ => {}
            }
        }
    };
    let settings = match settings(&data, workdir, std::sync::Arc::new(events)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("den agent: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("den agent: {e}");
            return 1;
        }
    };
    crate::inactivity::touch(&data);
    crate::extensions::ensure_watcher(&data);
    let result = rt.block_on(async move {
        let stream = stdio_stream()?;
        den_ssh::server::serve(stream, settings).await.map_err(|e| std::io::Error::other(e.to_string()))
    });
    crate::inactivity::touch(&data);
    match result {
        Ok(()) => 0,
        // The client went away without saying goodbye (a killed `ssh -N`):
        // nothing to report.
        Err(e) if e.to_string().contains("early eof") || e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
        Err(e) => {
            eprintln!("den agent: ssh: {e}");
            1
        }
    }
}

/// stdin and stdout as one async stream. Pipes (what `docker exec -i`
/// gives) are read and written without blocking threads; anything else
/// falls back to tokio's blocking stdio.
fn stdio_stream() -> std::io::Result<Box<dyn den_ssh::server::Stream>> {
    use tokio::net::unix::pipe;
    den_ssh::grow_pipe(0);
    den_ssh::grow_pipe(1);
    // SAFETY: fds 0 and 1 are ours for the life of the process.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(libc::dup(0)), OwnedFd::from_raw_fd(libc::dup(1))) };
    match (pipe::Receiver::from_owned_fd(r), pipe::Sender::from_owned_fd(w)) {
        (Ok(r), Ok(w)) => Ok(Box::new(tokio::io::join(r, w))),
        _ => Ok(Box::new(tokio::io::join(tokio::io::stdin(), tokio::io::stdout()))),
    }
}

/// Serves the `sftp` subsystem on stdin/stdout (run as the session's user).
pub fn sftp_server_main() -> i32 {
    let home = std::env::var("HOME").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/"));
    let start = std::env::current_dir().unwrap_or(home);
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => {
            rt.block_on(den_ssh::sftp::serve_stdio(start));
            0
        }
        Err(e) => {
            eprintln!("den agent: {e}");
            1
        }
    }
}
