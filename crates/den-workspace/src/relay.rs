//! The client's end of the clone relay (`den_protocol::relay`): while den
//! on a machine clones a workspace's repository, git there asks this
//! machine's `git credential` and runs this machine's ssh.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::{Arc, Mutex};

use den_process::Cmd;
use den_protocol::relay::{check_git_protocol, check_ssh_args, decode, encode, RelayMsg};

/// Where den's answers go: the agent's stdin.
pub(crate) type ToAgent = Arc<Mutex<Box<dyn Write + Send>>>;

fn send(to: &ToAgent, msg: &RelayMsg) {
    if let Ok(mut w) = to.lock() {
        let _ = writeln!(w, "{}", serde_json::to_string(msg).expect("serialises"));
        let _ = w.flush();
    }
}

/// Serves the agent's relay messages.
pub(crate) struct ClientRelay {
    to: ToAgent,
    /// The stdin of each running ssh.
    streams: HashMap<u64, ChildStdin>,
}

impl ClientRelay {
    pub(crate) fn new(to: ToAgent) -> ClientRelay {
        ClientRelay { to, streams: HashMap::new() }
    }

    pub(crate) fn handle(&mut self, msg: RelayMsg, reporter: &mut dyn crate::Reporter) {
        match msg {
            RelayMsg::Credential(req) => {
                let to = self.to.clone();
                std::thread::spawn(move || {
                    let output = local_git_credential(&req.op, &req.input);
                    send(&to, &RelayMsg::CredentialAnswer(den_protocol::CredentialAnswer { id: req.id, output }));
                });
            }
            RelayMsg::SshOpen { channel, args, git_protocol } => {
                let checked = check_ssh_args(&args).and_then(|()| {
                    if check_git_protocol(&git_protocol) {
                        Ok(())
                    } else {
                        Err(format!("GIT_PROTOCOL `{git_protocol}` is not one git sets"))
                    }
                });
                if let Err(e) = checked {
                    reporter.line(&format!("den: refused the machine's ssh for the clone: {e}"));
                    send(&self.to, &RelayMsg::Exit { channel, code: 255 });
                    return;
                }
                match spawn_ssh(&args, &git_protocol) {
                    Ok(mut child) => {
                        if let Some(stdin) = child.stdin.take() {
                            self.streams.insert(channel, stdin);
                        }
                        let to = self.to.clone();
                        std::thread::spawn(move || pump(child, channel, &to));
                    }
                    Err(e) => {
                        let text = format!("den: running ssh on the client: {e}\n");
                        send(&self.to, &RelayMsg::Stderr { channel, data: encode(text.as_bytes()) });
                        send(&self.to, &RelayMsg::Exit { channel, code: 255 });
                    }
                }
            }
            RelayMsg::Data { channel, data } => {
                if let (Some(stdin), Some(bytes)) = (self.streams.get_mut(&channel), decode(&data)) {
                    if stdin.write_all(&bytes).and_then(|()| stdin.flush()).is_err() {
                        self.streams.remove(&channel);
                    }
                }
            }
            RelayMsg::Eof { channel } => {
                self.streams.remove(&channel);
            }
            _ => {}
        }
    }
}

/// ssh as git on this machine runs it: `GIT_SSH_COMMAND` if set, else
/// plain ssh that never prompts.
fn spawn_ssh(args: &[String], git_protocol: &str) -> std::io::Result<std::process::Child> {
    let command = std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "ssh -o BatchMode=yes".into());
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c").arg(format!("{command} \"$@\"")).arg("ssh").args(args);
    if git_protocol.is_empty() {
        c.env_remove("GIT_PROTOCOL");
    } else {
        c.env("GIT_PROTOCOL", git_protocol);
    }
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
}

/// The ssh's output and exit code to the agent.
fn pump(mut child: std::process::Child, channel: u64, to: &ToAgent) {
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else { return };
    let errors = {
        let to = to.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8 * 1024];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                send(&to, &RelayMsg::Stderr { channel, data: encode(&buf[..n]) });
            }
        })
    };
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n @ 1..) = out.read(&mut buf) {
        send(to, &RelayMsg::Data { channel, data: encode(&buf[..n]) });
    }
    send(to, &RelayMsg::Eof { channel });
    let _ = errors.join();
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(255);
    send(to, &RelayMsg::Exit { channel, code });
}

/// `git credential fill|approve|reject` here; what it printed, or nothing.
pub(crate) fn local_git_credential(op: &str, input: &str) -> String {
    let verb = match op {
        "get" => "fill",
        "store" => "approve",
        "erase" => "reject",
        _ => return String::new(),
    };
    let mut input = input.trim_end_matches('\n').to_string();
    input.push_str("\n\n");
    Cmd::new("git")
        .args(["credential", verb])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .output_with_stdin(Some(input.as_bytes()))
        .map(|o| if verb == "fill" { o.stdout } else { String::new() })
        .unwrap_or_default()
}
