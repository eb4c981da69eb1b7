//! The direct line's host end (docs/line.md): one private folder per
//! workspace under its folder in DEN_HOME, mounted at
//! [`den_protocol::LINE_DIR`] in every container den makes on a local
//! engine; the agent serves SSH on a socket there. den connects to it when
//! it answers and falls back to the exec tunnel when it does not.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use den_driver::Docker;
use den_protocol::{LINE_DIR, LINE_SOCKET};

use crate::{Den, Result, WorkspaceError};

/// The environment switch, for den's tests only, that keeps every
/// connection on the exec tunnel (`DEN_TEST_LINE=exec`).
pub const TEST_SWITCH: &str = "DEN_TEST_LINE";

/// True when the tests ask for the exec tunnel only.
pub fn forced_exec() -> bool {
    std::env::var(TEST_SWITCH).is_ok_and(|v| v == "exec")
}

/// The workspace's host folder.
pub fn folder(den: &Den, id: &str) -> PathBuf {
    den.home.workspace_dir(&den.context, id).join("line")
}

/// The host folder for a new container of workspace `id`, made now (0700,
/// this user's, empty of anything but the socket to come). `None`: the
/// engine is not this machine's, or the folder's path cannot be written in
/// a mount argument.
pub(crate) fn for_new_container(den: &Den, id: &str, docker: &Docker) -> Result<Option<PathBuf>> {
    if !crate::engine_here::engine_is_local(docker) {
        return Ok(None);
    }
    let dir = folder(den, id);
    if dir.to_string_lossy().contains([',', '"']) {
        return Ok(None);
    }
    make_private(&dir)?;
    Ok(Some(dir))
}

/// Removes the folder made for a container that was not made after all,
/// and the workspace's folder when that leaves it empty (an `up` that
/// failed leaves no trace of a workspace den has no record of).
pub(crate) fn forget(den: &Den, id: &str) {
    let dir = folder(den, id);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

/// `docker run --mount` of the folder.
pub(crate) fn docker_arg(dir: &Path) -> String {
    format!("type=bind,source={},target={LINE_DIR}", dir.display())
}

/// The same as a compose service's long-syntax volume.
pub(crate) fn compose_volume(dir: &Path) -> serde_json::Value {
    serde_json::json!({"type": "bind", "source": dir, "target": LINE_DIR})
}

/// Makes `dir` (and its parents) and leaves it 0700 and this user's; an
/// old socket in it goes.
fn make_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(WorkspaceError::io(format!("making {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(WorkspaceError::io(format!("making {} private", dir.display())))?;
    let _ = std::fs::remove_file(dir.join(LINE_SOCKET));
    Ok(())
}

/// Connects to the agent's socket in a workspace's host folder (or any
/// folder holding such a socket, as a relay on a machine would). Links are
/// never followed: the folder is opened with O_NOFOLLOW, must be this
/// user's and 0700, and the socket is opened by name in it with O_PATH |
/// O_NOFOLLOW and must be a socket; the connection goes to that very file
/// through /proc/self/fd, which also has no length limit as a path in
/// DEN_HOME would (108 bytes).
pub fn connect(folder: &Path) -> std::io::Result<UnixStream> {
    let dir = open_path(libc::AT_FDCWD, folder, libc::O_DIRECTORY)?;
    let st = fstat(&dir)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if st.st_uid != me || st.st_mode & 0o7777 != 0o700 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not private to this user (0700); not using it", folder.display()),
        ));
    }
    let sock = open_path(dir.as_raw_fd(), Path::new(LINE_SOCKET), 0)?;
    if fstat(&sock)?.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the line's socket is not a socket"));
    }
    UnixStream::connect(format!("/proc/self/fd/{}", sock.as_raw_fd()))
}

/// A command run on the agent over an SSH connection on the direct line,
/// with a child process's pipes: what the exec tunnel's commands (the
/// credentials relay, `den up`'s setup) are given there.
pub struct Remote {
    pub stdin: Option<std::io::PipeWriter>,
    pub stdout: Option<std::io::PipeReader>,
    pub stderr: Option<std::io::PipeReader>,
    done: std::thread::JoinHandle<std::result::Result<Option<i32>, String>>,
}

impl Remote {
    /// The command's exit code (`None`: the connection ended first).
    pub fn wait(self) -> std::result::Result<Option<i32>, String> {
        self.done.join().map_err(|_| "the direct line's session panicked".to_string())?
    }
}

/// What [`run`] runs on the agent.
pub enum Program {
    /// A command line for the user's shell.
    Command(String),
    /// A subsystem (one the line's server serves in its process).
    Subsystem(&'static str),
}

/// Runs `program` as `user` over an SSH connection on `stream` (checking
/// the pinned `host_key`), in a thread of its own. Returns once the
/// connection stands: an error says the caller should take the exec
/// tunnel, nothing of its input having been read.
pub fn run(
    stream: UnixStream,
    key: den_ssh::PrivateKey,
    host_key: den_ssh::PublicKey,
    user: &str,
    program: Program,
) -> std::io::Result<Remote> {
    let (command, subsystem) = match program {
        Program::Command(c) => (Some(c), None),
        Program::Subsystem(s) => (None, Some(s.to_string())),
    };
    let (in_r, in_w) = std::io::pipe()?;
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let (tx, rx) = std::sync::mpsc::channel::<std::result::Result<(), String>>();
    let opts = den_ssh::client::Options {
        user: user.to_string(),
        command,
        tty: false,
        env: vec![],
        local_forwards: vec![],
        remote_forwards: vec![],
        agent_socket: None,
        subsystem,
        note: std::sync::Arc::new(|_: &str| {}),
    };
    let done = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let connected = async {
                stream.set_nonblocking(true)?;
                let stream = tokio::net::UnixStream::from_std(stream)?;
                let stdin = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(in_r))?;
                let c = den_ssh::client::connect(stream, key, host_key, &opts).await.map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>((c, stdin))
            };
            let (c, stdin) = match connected.await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Err(e.to_string());
                }
            };
            let _ = tx.send(Ok(()));
            let io = den_ssh::client::Io { stdin: Box::new(stdin), stdout: Box::new(out_w), stderr: Box::new(err_w) };
            c.run(opts, io).await.map_err(|e| e.to_string())
        })
    });
    match rx.recv() {
        Ok(Ok(())) => Ok(Remote { stdin: Some(in_w), stdout: Some(out_r), stderr: Some(err_r), done }),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Err(std::io::Error::other(done.join().ok().and_then(|r| r.err()).unwrap_or_default())),
    }
}

/// `openat(at, path, O_PATH | O_NOFOLLOW | O_CLOEXEC | flags)`.
fn open_path(at: libc::c_int, path: &Path, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string; the fd returned is owned below.
    let fd = unsafe { libc::openat(at, c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> std::io::Result<libc::stat> {
    // SAFETY: fstat fills the struct; zeroes are a valid start.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_socket_in_a_private_folder_answers() {
        let t = tempfile::tempdir().unwrap();
        // A path longer than sun_path's 108 bytes.
        let dir = t.path().join("x".repeat(120)).join("line");
        private(&dir);
        // Bound at a short path, then moved there (the inode is what counts).
        let short = t.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&short).unwrap();
        std::fs::rename(&short, dir.join(LINE_SOCKET)).unwrap();
        let mut c = connect(&dir).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        use std::io::{Read, Write};
        c.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }

    #[test]
    fn links_and_open_folders_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        private(&real);
        std::os::unix::net::UnixListener::bind(real.join(LINE_SOCKET)).unwrap();
        // The folder as a link.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(connect(&link).is_err());
        // The socket as a link (what a process in the container could put there).
        let other = t.path().join("other");
        private(&other);
        std::os::unix::fs::symlink(real.join(LINE_SOCKET), other.join(LINE_SOCKET)).unwrap();
        assert!(connect(&other).is_err());
        // A folder others may enter.
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = connect(&real).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        // A plain file named like the socket.
        let plain = t.path().join("plain");
        private(&plain);
        std::fs::write(plain.join(LINE_SOCKET), "").unwrap();
        assert!(connect(&plain).is_err());
    }
}
