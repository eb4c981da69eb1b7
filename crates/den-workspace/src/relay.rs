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

/// Serves the agent's relay messages, for the clone of one repository: only
/// questions about its host are answered and only ssh to its host is run.
pub(crate) struct ClientRelay {
    to: ToAgent,
    /// Where the repository is (`None`: nothing is answered).
    endpoint: Option<den_source::Endpoint>,
    /// The stdin of each running ssh.
    streams: HashMap<u64, ChildStdin>,
}

impl ClientRelay {
    pub(crate) fn new(to: ToAgent, clone_url: Option<&str>) -> ClientRelay {
        ClientRelay { to, endpoint: clone_url.and_then(den_source::endpoint), streams: HashMap::new() }
    }

    /// A credential question about the repository's own host over http(s).
    fn may_answer(&self, op: &str, input: &str) -> bool {
        let Some(e) = &self.endpoint else { return false };
        let field = |name: &str| {
            input.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('='))).unwrap_or("")
        };
        let host = match e.port {
            Some(p) => format!("{}:{p}", e.host),
            None => e.host.clone(),
        };
        op == "get"
            && matches!(e.scheme.as_str(), "http" | "https")
            && field("protocol") == e.scheme
            && field("host").eq_ignore_ascii_case(&host)
    }

    /// An ssh to the repository's own user, host and port, for its own path.
    fn may_run(&self, t: &den_protocol::relay::SshTarget) -> Result<(), String> {
        let Some(e) = self.endpoint.as_ref().filter(|e| e.scheme == "ssh" || e.scheme == "git+ssh") else {
            return Err("the repository is not cloned over ssh".into());
        };
        if t.host != e.host || t.port.filter(|p| *p != 22) != e.port.filter(|p| *p != 22) {
            return Err(format!(
                "ssh to `{}`{} is not the repository's host (a submodule elsewhere is not cloned through the relay)",
                t.host,
                t.port.map(|p| format!(" port {p}")).unwrap_or_default()
            ));
        }
        if t.user != e.user {
            return Err(format!("ssh as `{}` is not as the repository's user", t.user.as_deref().unwrap_or("")));
        }
        if t.path != e.path {
            return Err(format!("`{}` is not the repository being cloned", t.path));
        }
        Ok(())
    }

    pub(crate) fn handle(&mut self, msg: RelayMsg, reporter: &mut dyn crate::Reporter) {
        match msg {
            RelayMsg::Credential(req) => {
                if !self.may_answer(&req.op, &req.input) {
                    let answer = den_protocol::CredentialAnswer { id: req.id, output: String::new() };
                    send(&self.to, &RelayMsg::CredentialAnswer(answer));
                    return;
                }
                let to = self.to.clone();
                std::thread::spawn(move || {
                    let output = local_git_credential(&req.op, &req.input);
                    send(&to, &RelayMsg::CredentialAnswer(den_protocol::CredentialAnswer { id: req.id, output }));
                });
            }
            RelayMsg::SshOpen { channel, args, git_protocol } => {
                let checked = check_ssh_args(&args).and_then(|t| {
                    self.may_run(&t)?;
                    if check_git_protocol(&git_protocol) {
                        Ok(t)
                    } else {
                        Err(format!("GIT_PROTOCOL `{git_protocol}` is not one git sets"))
                    }
                });
                let target = match checked {
                    Ok(t) => t,
                    Err(e) => {
                        let text = format!("den: refused the machine's ssh for the clone: {e}");
                        reporter.line(&text);
                        send(&self.to, &RelayMsg::Stderr { channel, data: encode(format!("{text}\n").as_bytes()) });
                        send(&self.to, &RelayMsg::Exit { channel, code: 255 });
                        return;
                    }
                };
                // `--`: nothing after it is read as an option.
                let mut argv = target.options.clone();
                argv.extend(["--".to_string(), target.destination.clone(), target.command.clone()]);
                match spawn_ssh(&argv, &git_protocol) {
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

/// ssh as git on this machine would run it: `GIT_SSH_COMMAND` (a shell
/// line), else `GIT_SSH` (a program), else `core.sshCommand`, else plain
/// ssh that never prompts.
fn spawn_ssh(args: &[String], git_protocol: &str) -> std::io::Result<std::process::Child> {
    let set = |k: &str| std::env::var(k).ok().filter(|c| !c.trim().is_empty());
    let line = set("GIT_SSH_COMMAND")
        .or_else(|| set("GIT_SSH").map(|p| den_process::shell_quote(&p)))
        .or_else(|| {
            Cmd::new("git")
                .args(["config", "--get", "core.sshCommand"])
                .output()
                .ok()
                .map(|o| o.stdout.trim().to_string())
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "ssh -o BatchMode=yes".into());
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c").arg(format!("{line} \"$@\"")).arg("ssh").args(args);
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

/// `git credential fill` here for a `get`; what it printed, or nothing.
/// Only questions are answered: the far side never changes this machine's
/// credential store.
pub(crate) fn local_git_credential(op: &str, input: &str) -> String {
    let verb = match op {
        "get" => "fill",
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
        .map(|o| o.stdout)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(url: &str) -> ClientRelay {
        ClientRelay::new(Arc::new(Mutex::new(Box::new(std::io::sink()))), Some(url))
    }

    #[test]
    fn credentials_only_for_the_repositorys_host() {
        let r = relay("https://git.example.com/org/r.git");
        assert!(r.may_answer("get", "protocol=https\nhost=git.example.com\n"));
        assert!(!r.may_answer("get", "protocol=https\nhost=github.com\n"));
        assert!(!r.may_answer("get", "protocol=http\nhost=git.example.com\n"));
        assert!(!r.may_answer("store", "protocol=https\nhost=git.example.com\n"));
        let r = relay("http://127.0.0.1:8080/r.git");
        assert!(r.may_answer("get", "protocol=http\nhost=127.0.0.1:8080\n"));
        assert!(!r.may_answer("get", "protocol=http\nhost=127.0.0.1\n"));
        assert!(!relay("ssh://git@h/r").may_answer("get", "protocol=https\nhost=h\n"));
        assert!(!ClientRelay::new(Arc::new(Mutex::new(Box::new(std::io::sink()))), None).may_answer("get", ""));
    }

    #[test]
    fn ssh_only_to_the_repositorys_host_and_port() {
        let t = |args: &[&str]| check_ssh_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let r = relay("ssh://git@h.example:2222/r.git");
        r.may_run(&t(&["-p", "2222", "git@h.example", "git-upload-pack '/r.git'"])).unwrap();
        assert!(r.may_run(&t(&["git@h.example", "git-upload-pack '/r.git'"])).is_err());
        assert!(r.may_run(&t(&["-p", "2222", "git@other", "git-upload-pack '/r.git'"])).is_err());
        let r = relay("git@github.com:org/r.git");
        r.may_run(&t(&["git@github.com", "git-upload-pack 'org/r.git'"])).unwrap();
        r.may_run(&t(&["-p", "22", "git@GitHub.com", "git-upload-pack 'org/r.git'"])).unwrap();
        assert!(relay("https://github.com/org/r").may_run(&t(&["github.com", "git-upload-pack 'r'"])).is_err());
        // The user and the path are the clone's own.
        assert!(r.may_run(&t(&["root@github.com", "git-upload-pack 'org/r.git'"])).is_err());
        assert!(r.may_run(&t(&["github.com", "git-upload-pack 'org/r.git'"])).is_err());
        assert!(r.may_run(&t(&["git@github.com", "git-upload-pack 'org/other.git'"])).is_err());
        assert!(r.may_run(&t(&["git@github.com", "git-upload-pack '/org/r.git'"])).is_err());
    }
}
