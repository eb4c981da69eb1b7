//! On a machine, while den clones a workspace's repository: git's
//! credential helper and ssh go to the client through the `remote-up`
//! exec's stdio (see `den_protocol::relay`).
//!
//! [`CloneRelay::start`] listens on two sockets in a folder only this user
//! may enter: `cred/relay.sock` for `den agent git-credential --data DIR`
//! and `ssh.sock` for `den agent git-ssh SOCKET -- ARGS…` (git's ssh);
//! [`CloneRelay::env`] is the environment that makes the clone's git use
//! both. Its near end, on the client, is `crate::relay`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use den_protocol::relay::helper_socket::{self, Pending};
use den_protocol::relay::{decode, encode, RelayMsg, RELAY_CLOSE, RELAY_OPEN, RELAY_PREFIX};
use serde::{Deserialize, Serialize};

/// A frame from the relay to `git-ssh`: bytes for its stdout, or the exit
/// code of the client's ssh.
const FRAME_DATA: u8 = 0;
const FRAME_EXIT: u8 = 1;
const FRAME_STDERR: u8 = 2;

/// What `git-ssh` says first on its socket.
#[derive(Serialize, Deserialize)]
struct SshHello {
    args: Vec<String>,
    git_protocol: String,
}

type Streams = Arc<Mutex<HashMap<u64, UnixStream>>>;

pub struct CloneRelay {
    dir: PathBuf,
}

fn emit(msg: &RelayMsg) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{RELAY_PREFIX}{}", serde_json::to_string(msg).expect("serialises"));
    let _ = o.flush();
}

impl CloneRelay {
    /// Tells den to keep stdin open and listens; [`CloneRelay::env`] points
    /// the clone's git at the sockets.
    pub fn start(home: &Path) -> std::io::Result<CloneRelay> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = home.join(format!("relay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(dir.join("cred"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let cred = UnixListener::bind(dir.join("cred/relay.sock"))?;
        let ssh = UnixListener::bind(dir.join("ssh.sock"))?;

        println!("{RELAY_OPEN}");
        let _ = std::io::stdout().flush();

        let pending = Pending::default();
        let streams: Streams = Arc::default();
        {
            let (pending, streams) = (pending.clone(), streams.clone());
            std::thread::spawn(move || read_den(std::io::stdin().lock(), &pending, &streams));
        }
        std::thread::spawn(move || helper_socket::serve(cred, pending, |req| emit(&RelayMsg::Credential(req.clone()))));
        {
            let streams = streams.clone();
            std::thread::spawn(move || serve_ssh(ssh, streams));
        }

        Ok(CloneRelay { dir })
    }

    /// The environment of the clone's git: the relay's credential helper
    /// after the machine's own (git reads these as `-c` settings) and its
    /// ssh. Given to the clone's commands only, not to this process.
    pub fn env(&self) -> Vec<(String, String)> {
        let agent = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "den".into());
        let q = den_process::shell_quote;
        let helper = format!("!{} agent git-credential --data {}", q(&agent), q(&self.dir.display().to_string()));
        vec![
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "credential.helper".into()),
            ("GIT_CONFIG_VALUE_0".into(), helper),
            (
                "GIT_SSH_COMMAND".into(),
                format!("{} agent git-ssh {} --", q(&agent), q(&self.dir.join("ssh.sock").display().to_string())),
            ),
            // git would take an unknown program for one without `-p`.
            ("GIT_SSH_VARIANT".into(), "ssh".into()),
        ]
    }

    /// Tells den the relay is done and removes the sockets.
    pub fn close(self) {
        println!("{RELAY_CLOSE}");
        let _ = std::io::stdout().flush();
    }
}

impl Drop for CloneRelay {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// den's lines: answers, and the client's ssh output for each stream.
fn read_den(input: impl BufRead, pending: &Pending, streams: &Streams) {
    for line in input.lines().map_while(Result::ok) {
        let Ok(msg) = serde_json::from_str::<RelayMsg>(&line) else { continue };
        match msg {
            RelayMsg::CredentialAnswer(a) => pending.answer(a),
            RelayMsg::Data { channel, data } => {
                let Some(bytes) = decode(&data) else { continue };
                if let Some(s) = streams.lock().expect("not poisoned").get_mut(&channel) {
                    let _ = write_frame(s, FRAME_DATA, &bytes);
                }
            }
            RelayMsg::Stderr { channel, data } => {
                let Some(bytes) = decode(&data) else { continue };
                if let Some(s) = streams.lock().expect("not poisoned").get_mut(&channel) {
                    let _ = write_frame(s, FRAME_STDERR, &bytes);
                }
            }
            RelayMsg::Exit { channel, code } => {
                if let Some(mut s) = streams.lock().expect("not poisoned").remove(&channel) {
                    let _ = write_frame(&mut s, FRAME_EXIT, &code.to_be_bytes());
                }
            }
            // The client's ssh closed its output; its exit follows.
            RelayMsg::Eof { .. } => {}
            _ => {}
        }
    }
    // den is gone: every stream ends.
    streams.lock().expect("not poisoned").clear();
}

fn write_frame(s: &mut UnixStream, kind: u8, data: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(5 + data.len());
    frame.push(kind);
    frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
    frame.extend_from_slice(data);
    s.write_all(&frame)
}

fn serve_ssh(listener: UnixListener, streams: Streams) {
    let mut next = 0u64;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        next += 1;
        let channel = next;
        let streams = streams.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(match conn.try_clone() {
                Ok(c) => c,
                Err(_) => return,
            });
            let mut hello = String::new();
            if reader.read_line(&mut hello).is_err() {
                return;
            }
            let Ok(hello) = serde_json::from_str::<SshHello>(&hello) else { return };
            streams.lock().expect("not poisoned").insert(channel, conn);
            emit(&RelayMsg::SshOpen { channel, args: hello.args, git_protocol: hello.git_protocol });
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => emit(&RelayMsg::Data { channel, data: encode(&buf[..n]) }),
                }
            }
            emit(&RelayMsg::Eof { channel });
        });
    }
}

/// `den agent git-ssh SOCKET ARGS…`: git's ssh on the machine. Runs the
/// client's ssh with ARGS through the relay and exits with its code.
pub fn git_ssh_main(socket: &Path, args: Vec<String>) -> i32 {
    let mut conn = match UnixStream::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("den agent git-ssh: the clone relay at {} is gone: {e}", socket.display());
            return 255;
        }
    };
    let hello = SshHello { args, git_protocol: std::env::var("GIT_PROTOCOL").unwrap_or_default() };
    if writeln!(conn, "{}", serde_json::to_string(&hello).expect("serialises")).is_err() {
        return 255;
    }
    let Ok(mut up) = conn.try_clone() else { return 255 };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut up);
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    let mut out = std::io::stdout().lock();
    loop {
        let mut head = [0u8; 5];
        if conn.read_exact(&mut head).is_err() {
            eprintln!("den agent git-ssh: the clone relay ended");
            return 255;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut data = vec![0u8; len];
        if conn.read_exact(&mut data).is_err() {
            return 255;
        }
        match head[0] {
            FRAME_DATA => {
                if out.write_all(&data).and_then(|_| out.flush()).is_err() {
                    return 255;
                }
            }
            FRAME_STDERR => {
                let _ = std::io::stderr().write_all(&data);
            }
            FRAME_EXIT if len == 4 => return i32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            _ => return 255,
        }
    }
}
