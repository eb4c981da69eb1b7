//! `den agent line-server`: the direct line (docs/line.md). In a container
//! den made on a local engine, a private host folder is mounted at
//! [`LINE_DIR`]; one long-running agent process serves SSH on a unix socket
//! there, every connection a task of its own (no process per connection).
//! The socket is the folder owner's alone (mode 0600); the SSH layer still
//! authenticates the workspace key, and den checks the pinned host key.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::inactivity::Busy;
use std::sync::Arc;

pub use den_protocol::{LINE_DIR, LINE_SOCKET};

/// The agent's subcommand that serves the line (its pid file says so).
const SUBCOMMAND: &str = crate::LINE_SERVER;

/// True when den mounted its host folder at [`LINE_DIR`] in this
/// container (a folder of that name in the image does not count).
pub fn mounted() -> bool {
    mounted_in(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), LINE_DIR)
}

/// Whether `mountinfo` (the text of /proc/self/mountinfo) has a mount at `dir`.
fn mounted_in(mountinfo: &str, dir: &str) -> bool {
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(dir))
}

/// The server's pid file.
fn pid_file(data: &Path) -> PathBuf {
    data.join("line.pid")
}

/// Starts the server in the background unless it runs and its socket is
/// there (a socket removed by hand gets a new server).
pub fn ensure_server(data: &Path) -> Result<(), String> {
    let socket = Path::new(LINE_DIR).join(LINE_SOCKET);
    let have_socket = {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(&socket).is_ok_and(|m| m.file_type().is_socket())
    };
    match crate::running(&pid_file(data), SUBCOMMAND) {
        Some(_) if have_socket => return Ok(()),
        // SAFETY: kill(2) of our own server, found by its pid file and
        // command line.
        Some(pid) => unsafe {
            libc::kill(pid, libc::SIGTERM);
        },
        None => {}
    }
    crate::spawn_detached(&pid_file(data), &[SUBCOMMAND]).map_err(|e| format!("starting the direct line: {e}"))
}

/// One connection's part in [`Busy`]: it counts from its start until it
/// says it is den's forwarder, or ends.
struct Counted {
    busy: Arc<Busy>,
    counted: AtomicBool,
}

impl Counted {
    fn new(busy: Arc<Busy>) -> Arc<Counted> {
        busy.add(1);
        Arc::new(Counted { busy, counted: AtomicBool::new(true) })
    }

    fn forwarder(&self) {
        if self.counted.swap(false, Ordering::SeqCst) {
            self.busy.add(-1);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.forwarder();
    }
}

/// `den agent line-server`: binds the socket and serves until the
/// container stops.
pub fn server_main() -> i32 {
    let data = crate::data_dir();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("den agent: {e}");
            return 1;
        }
    };
    let result: std::io::Result<()> = rt.block_on(async move {
        let listener = bind(Path::new(LINE_DIR))?;
        let busy = Arc::new(Busy::at(&data));
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve_one(stream, data.clone(), busy.clone()));
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("den agent: the direct line: {e}");
            1
        }
    }
}

/// The socket, made under a temporary name with its final owner (the
/// folder's: den's user as this container sees it) and mode 0600, then
/// renamed into place, so it never shows with other rights.
fn bind(dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let owner = std::fs::metadata(dir)?;
    let tmp = dir.join(format!(".{LINE_SOCKET}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    // SAFETY: umask(2) only swaps the process's mask; no other thread
    // creates files yet.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(&tmp);
    unsafe { libc::umask(old) };
    let listener = bound?;
    let placed = std::os::unix::fs::chown(&tmp, Some(owner.uid()), Some(owner.gid()))
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
        .and_then(|()| std::fs::rename(&tmp, dir.join(LINE_SOCKET)));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

/// One SSH connection, as `den agent ssh-server --stdio` serves one, but in
/// this process; its keys and the workspace's environment are read now, so
/// a later `den up` is seen by the next connection.
async fn serve_one(stream: tokio::net::UnixStream, data: PathBuf, busy: Arc<Busy>) {
    let me = Counted::new(busy);
    let events = {
        let (me, data) = (me.clone(), data.clone());
        let forwards = AtomicUsize::new(0);
        move |e: den_ssh::server::Event| match e {
            den_ssh::server::Event::Subsystem(name) if name == den_protocol::PORTS_SUBSYSTEM => me.forwarder(),
            // Forwarded connections keep the workspace in use, the
            // forwarder's too.
            den_ssh::server::Event::ForwardOpened => {
                forwards.fetch_add(1, Ordering::SeqCst);
                me.busy.add(1);
            }
            den_ssh::server::Event::ForwardClosed => {
                if forwards.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                    me.busy.add(-1);
                }
                crate::inactivity::touch(&data);
            }
            _ => {}
        }
    };
    let mut settings = match crate::ssh::settings(&data, None, std::sync::Arc::new(events)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("den agent: {e}");
            return;
        }
    };
    // The forwarder's port reports and the credentials relay run in this
    // process, on threads: no process of their own per connection.
    let credentials_data = data.clone();
    settings.services = vec![
        (den_protocol::PORTS_SUBSYSTEM.to_string(), Arc::new(|input, out| crate::ports::watch(input, out))),
        (
            den_protocol::CREDENTIALS_SUBSYSTEM.to_string(),
            Arc::new(move |input, out| {
                crate::credentials::relay(&credentials_data, input, out);
            }),
        ),
    ];
    crate::inactivity::touch(&data);
    crate::extensions::ensure_watcher(&data);
    let _ = den_ssh::server::serve(stream, settings).await;
    crate::inactivity::touch(&data);
    drop(me);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_only_as_a_mount_point() {
        let info = "22 1 0:21 / /run/den rw,relatime - ext4 /dev/sda1 rw\n\
                    23 1 0:22 / /run/den-other rw - tmpfs tmpfs rw\n";
        assert!(mounted_in(info, "/run/den"));
        assert!(!mounted_in(info, "/run"));
        assert!(!mounted_in("23 1 0:22 / /run/den-other rw - tmpfs tmpfs rw\n", "/run/den"));
    }

    #[test]
    fn connections_count_until_they_say_they_are_the_forwarder() {
        let dir = tempfile::tempdir().unwrap();
        let busy = Arc::new(Busy::at(dir.path()));
        let read = || std::fs::read_to_string(crate::inactivity::busy_file(dir.path())).unwrap();
        let session = Counted::new(busy.clone());
        let forwarder = Counted::new(busy.clone());
        assert_eq!(read(), format!("{} 2\n", std::process::id()));
        forwarder.forwarder();
        forwarder.forwarder();
        assert_eq!(read(), format!("{} 1\n", std::process::id()));
        drop(forwarder);
        drop(session);
        assert_eq!(read(), format!("{} 0\n", std::process::id()));
    }
}
