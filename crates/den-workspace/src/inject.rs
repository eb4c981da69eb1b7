//! Putting the agent into the container and running its setup, in one exec.
//!
//! The exec runs a small POSIX sh script as root. If a copy of this exact
//! den binary is already at one of the candidate paths, it says `DEN-HAVE`
//! and becomes `den agent setup` at once. Otherwise it says `DEN-NEED
//! <path>`, den streams its own binary into the exec's stdin, and the script
//! writes it to a temp name, checks the size, makes it executable and renames
//! it into place before doing the same. So a warm `up` costs one exec and a
//! cold one the same exec plus the copy. A candidate written `@PATH` is
//! only looked at, never written: the agent a local container mounts
//! read-only (see [`crate::agent_mount`]).

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;

use den_driver::Docker;
use den_protocol::relay::{RELAY_CLOSE, RELAY_OPEN, RELAY_PREFIX};
use den_protocol::{SetupRequest, SetupResult, NO_CONTENT, PHASE_PREFIX, READY, RESULT_PREFIX, SEND_CONTENT};

use crate::{Reporter, Result, WorkspaceError};

/// Where the agent goes when the provider does not say: a system folder, or
/// /tmp when that one is read-only.
pub const DEFAULT_AGENT_PATHS: [&str; 2] = ["/usr/local/bin/den", "/tmp/den-agent/den"];

const SCRIPT: &str = r#"want=$1; size=$2; sub=$3; shift 3
for p in "$@"; do
  p=${p#@}
  case $p in "~/"*) p=$HOME/${p#??};; esac
  if [ -x "$p" ] && [ -f "$p.id" ]; then
    read -r got < "$p.id"
    if [ "$got" = "$want" ]; then echo "DEN-HAVE $p"; exec "$p" agent "$sub"; fi
  fi
done
for p in "$@"; do
  case $p in @*) continue;; "~/"*) p=$HOME/${p#??};; esac
  mkdir -p "${p%/*}" 2>/dev/null
  t="$p.tmp.$$"
  if touch "$t" 2>/dev/null; then
    echo "DEN-NEED $p"
    head -c "$size" > "$t"
    n=$(wc -c < "$t")
    if [ "$n" -ne "$size" ]; then rm -f "$t"; echo "den agent: received $n of $size bytes" >&2; exit 97; fi
    chmod 755 "$t" && mv -f "$t" "$p" && echo "$want" > "$p.id" || { rm -f "$t"; echo "den agent: cannot install at $p" >&2; exit 97; }
    exec "$p" agent "$sub"
  fi
done
echo "den agent: no writable place for the agent among: $*" >&2
exit 97
"#;

/// The words that inject the agent at the first usable candidate and run
/// `den agent SUB` there: `sh -c SCRIPT den-inject WANT SIZE SUB PATHS…`.
pub fn inject_argv(candidates: &[String], sub: &str) -> Result<Vec<String>> {
    let (want, size) = agent_fingerprint()?;
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        SCRIPT.into(),
        "den-inject".into(),
        want,
        size.to_string(),
        sub.into(),
    ];
    argv.extend(candidates.iter().cloned());
    Ok(argv)
}

/// The same as one line of shell text (for a provider's `COMMAND`).
pub fn inject_command(candidates: &[String], sub: &str) -> Result<String> {
    let mut argv = inject_argv(candidates, sub)?;
    argv[0] = "sh".into();
    Ok(argv.iter().map(|a| den_process::shell_quote(a)).collect::<Vec<_>>().join(" "))
}

/// Identifies this den binary cheaply (no hashing of megabytes on every
/// `up`): version, size and modification time of the executable.
pub fn agent_fingerprint() -> Result<(String, u64)> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let exe = std::path::Path::new("/proc/self/exe");
    let meta = std::fs::metadata(exe).map_err(WorkspaceError::io("reading /proc/self/exe"))?;
    let text = format!("{}|{}|{}|{}", env!("CARGO_PKG_VERSION"), meta.size(), meta.mtime(), meta.mtime_nsec());
    let hash = sha2::Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok((hex, meta.size()))
}

pub struct AgentRun<T> {
    pub result: T,
    pub agent_path: String,
    pub uploaded: bool,
}

enum Msg {
    Out(String),
    Err(String),
}

/// Writes the workspace's files to the agent.
pub type SendContent = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

/// What den sends the agent once it says `DEN-READY`: a request line, and content
/// when the agent asks for it (`DEN-SEND-CONTENT`; `DEN-NO-CONTENT` when it
/// does not need any).
pub struct Feed {
    pub request: String,
    pub content: SendContent,
    /// The repository the far side may clone through the clone relay.
    pub clone_url: Option<String>,
}

/// Injects and sets up the agent in a container, in one `docker exec`.
pub fn inject_and_setup(
    docker: &Docker,
    container: &str,
    candidates: &[String],
    req: &SetupRequest,
    reporter: &mut dyn Reporter,
) -> Result<AgentRun<SetupResult>> {
    let argv = inject_argv(candidates, "setup")?;
    let cmd = docker.exec(container, Some("0"), &argv);
    run_agent(&cmd, Some(setup_feed(req)), reporter)
}

/// The setup request for [`run_agent`]: one line on stdin, which then stays
/// open until the agent is done; if den dies, its end tells the agent to
/// stop the running hook (see [`den_protocol`]).
pub fn setup_feed(req: &SetupRequest) -> Feed {
    Feed {
        request: serde_json::to_string(req).expect("request serialises"),
        content: Box::new(|_| Ok(())),
        clone_url: None,
    }
}

/// Runs an inject command (see [`inject_argv`]): answers the script, feeds
/// the agent, relays its phases and lines to `reporter`, and returns its
/// `DEN-RESULT`.
pub fn run_agent<T: serde::de::DeserializeOwned>(
    cmd: &den_process::Cmd,
    feed: Option<Feed>,
    reporter: &mut dyn Reporter,
) -> Result<AgentRun<T>> {
    let mut child = cmd.spawn(Stdio::piped(), Stdio::piped(), Stdio::piped())?;
    let io = AgentIo {
        stdin: Box::new(child.stdin.take().expect("piped")),
        stdout: Box::new(child.stdout.take().expect("piped")),
        stderr: Box::new(child.stderr.take().expect("piped")),
    };
    let talked = converse(io, feed, reporter);
    let status = child.wait().map_err(|e| cmd.spawn_error(e))?;
    talked.outcome(status.to_string(), |said| WorkspaceError::Process(cmd.failed(status, said)))
}

/// [`run_agent`] on a command the direct line runs (docs/line.md): the
/// same conversation over an SSH session instead of an exec's stdio.
pub fn run_agent_on_line<T: serde::de::DeserializeOwned>(
    mut remote: crate::line::Remote,
    feed: Option<Feed>,
    reporter: &mut dyn Reporter,
) -> Result<AgentRun<T>> {
    let (Some(stdin), Some(stdout), Some(stderr)) = (remote.stdin.take(), remote.stdout.take(), remote.stderr.take())
    else {
        return Err(WorkspaceError::here("the direct line's session has no pipes"));
    };
    let talked = converse(
        AgentIo { stdin: Box::new(stdin), stdout: Box::new(stdout), stderr: Box::new(stderr) },
        feed,
        reporter,
    );
    let code = remote.wait();
    let status = match &code {
        Ok(Some(c)) => format!("exit status: {c}"),
        Ok(None) => "the connection ended first".to_string(),
        Err(e) => e.clone(),
    };
    talked.outcome(status.clone(), |said| WorkspaceError::here(format!("{status}: {said}")))
}

/// The stdio of whatever runs the inject script.
struct AgentIo {
    stdin: Box<dyn Write + Send>,
    stdout: Box<dyn std::io::Read + Send>,
    stderr: Box<dyn std::io::Read + Send>,
}

/// What the conversation came to, before the process's end is known.
struct Talked {
    /// Where the agent is and whether it was copied, or why not.
    placed: std::result::Result<(String, bool), Placing>,
    result: Option<String>,
    stderr: String,
    send_error: Option<std::io::Error>,
}

/// den's side of the talk on `io`, until the agent closes its output.
fn converse(io: AgentIo, feed: Option<Feed>, reporter: &mut dyn Reporter) -> Talked {
    let AgentIo { mut stdin, stdout, stderr } = io;
    let mut stdout = BufReader::new(stdout);
    let (tx, rx) = mpsc::channel::<Msg>();
    let tx_err = tx.clone();
    let err_thread = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx_err.send(Msg::Err(line));
        }
        all
    });
    let placed = place_agent(&mut stdout, &mut stdin, reporter);
    if placed.is_err() {
        drop(stdin);
        drop(tx);
        let stderr = err_thread.join().unwrap_or_default();
        return Talked { placed, result: None, stderr, send_error: None };
    }
    // The request waits for the agent's DEN-READY: some `head -c` (busybox)
    // read ahead, so nothing may follow the binary until it has exited.
    let mut talk = Conversation::new(stdin, feed);
    let out_thread = std::thread::spawn(move || {
        for line in stdout.lines().map_while(|l| l.ok()) {
            let _ = tx.send(Msg::Out(line));
        }
    });
    for msg in rx {
        match msg {
            Msg::Out(line) => talk.on_line(line, reporter),
            Msg::Err(line) => reporter.line(&line),
        }
    }
    drop(talk.stdin.take());
    let _ = out_thread.join();
    let stderr = err_thread.join().unwrap_or_default();
    let send_error = talk.sender.and_then(|s| s.join().ok()).and_then(|r| r.err());
    Talked { placed, result: talk.result, stderr, send_error }
}

impl Talked {
    /// The agent's result; `failed` makes the error of a script that said
    /// something unexpected, `status` says how the process ended.
    fn outcome<T: serde::de::DeserializeOwned>(
        self,
        status: String,
        failed: impl FnOnce(String) -> WorkspaceError,
    ) -> Result<AgentRun<T>> {
        let Talked { placed, result, stderr, send_error } = self;
        let (agent_path, uploaded) = match placed {
            Ok(p) => p,
            Err(Placing::Copy(e)) => {
                return Err(WorkspaceError::here(format!("copying the agent failed: {e}\n{stderr}")))
            }
            Err(Placing::Said(first)) => return Err(failed(format!("{first}\n{stderr}"))),
        };
        // A failed send is reported only when the agent said nothing itself:
        // an agent that gave up mid-transfer breaks the pipe, and its own
        // words say why.
        if let (Some(e), None) = (&send_error, &result) {
            return Err(WorkspaceError::here(format!("sending the workspace's files failed: {e}")));
        }
        match result.map(|r| serde_json::from_str::<T>(&r)) {
            Some(Ok(result)) => Ok(AgentRun { result, agent_path, uploaded }),
            Some(Err(e)) => Err(WorkspaceError::here(format!("the agent at {agent_path} answered nonsense: {e}"))),
            None => Err(WorkspaceError::here(format!(
                "the agent at {agent_path} ended without a result ({status}){}",
                if stderr.trim().is_empty() { String::new() } else { format!(":\n{}", stderr.trim_end()) }
            ))),
        }
    }
}

/// Why the agent was not placed.
enum Placing {
    /// Copying den's binary failed.
    Copy(std::io::Error),
    /// The script said something else than `DEN-HAVE`/`DEN-NEED`.
    Said(String),
}

/// Answers the inject script's first line: the agent is there
/// (`DEN-HAVE PATH`), or den copies its own binary (`DEN-NEED PATH`).
/// Returns where the agent is and whether it was copied.
fn place_agent(
    stdout: &mut impl BufRead,
    stdin: &mut impl Write,
    reporter: &mut dyn Reporter,
) -> std::result::Result<(String, bool), Placing> {
    let mut first = String::new();
    let _ = stdout.read_line(&mut first);
    let first = first.trim_end().to_string();
    if let Some(p) = first.strip_prefix("DEN-HAVE ") {
        return Ok((p.to_string(), false));
    }
    let Some(p) = first.strip_prefix("DEN-NEED ") else { return Err(Placing::Said(first)) };
    reporter.phase("inject", &format!("copying the agent to {p}"));
    let mut exe = std::fs::File::open("/proc/self/exe").map_err(Placing::Copy)?;
    std::io::copy(&mut exe, stdin).map_err(Placing::Copy)?;
    Ok((p.to_string(), true))
}

/// den's side of the talk with a placed agent: the request when it is
/// ready, the workspace's files when it asks, the clone relay while it
/// clones, and its phases, lines and result.
struct Conversation {
    stdin: Option<Box<dyn Write + Send>>,
    request: Option<String>,
    content: Option<SendContent>,
    clone_url: Option<String>,
    sender: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    relay: Option<(crate::relay::ClientRelay, crate::relay::ToAgent)>,
    result: Option<String>,
}

impl Conversation {
    fn new(stdin: Box<dyn Write + Send>, feed: Option<Feed>) -> Conversation {
        let mut talk = Conversation {
            stdin: None,
            request: None,
            content: None,
            clone_url: None,
            sender: None,
            relay: None,
            result: None,
        };
        if let Some(f) = feed {
            talk.stdin = Some(stdin);
            talk.request = Some(f.request);
            talk.content = Some(f.content);
            talk.clone_url = f.clone_url;
        }
        talk
    }

    fn on_line(&mut self, line: String, reporter: &mut dyn Reporter) {
        if line == READY {
            if let (Some(pipe), Some(r)) = (self.stdin.as_mut(), self.request.take()) {
                let _ = writeln!(pipe, "{r}");
                let _ = pipe.flush();
            }
        } else if line == SEND_CONTENT {
            if let (Some(mut pipe), Some(send)) = (self.stdin.take(), self.content.take()) {
                reporter.phase("upload", "sending the workspace's files");
                self.sender = Some(std::thread::spawn(move || send(&mut pipe)));
            }
        } else if line == NO_CONTENT {
            self.stdin = None;
        } else if line == RELAY_OPEN {
            if let Some(pipe) = self.stdin.take() {
                let to: crate::relay::ToAgent = std::sync::Arc::new(std::sync::Mutex::new(Box::new(pipe)));
                self.relay = Some((crate::relay::ClientRelay::new(to.clone(), self.clone_url.as_deref()), to));
            }
        } else if line == RELAY_CLOSE {
            if let Some((_, to)) = self.relay.take() {
                // Closes the agent's stdin, whoever still holds `to`.
                if let Ok(mut w) = to.lock() {
                    *w = Box::new(std::io::sink());
                }
            }
        } else if let Some(m) = line.strip_prefix(RELAY_PREFIX) {
            if let (Some((r, _)), Ok(msg)) = (self.relay.as_mut(), serde_json::from_str(m)) {
                r.handle(msg, reporter);
            }
        } else if let Some(p) = line.strip_prefix(PHASE_PREFIX) {
            let (name, detail) = p.split_once('\t').unwrap_or((p, ""));
            reporter.phase(name, detail);
        } else if let Some(r) = line.strip_prefix(RESULT_PREFIX) {
            self.result = Some(r.to_string());
        } else {
            reporter.line(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the inject script with `stdin` as the binary den would send.
    fn script(candidates: &[String], stdin: &[u8]) -> String {
        let mut argv = vec!["-c".to_string(), SCRIPT.into(), "den-inject".into(), "want".into()];
        argv.extend([stdin.len().to_string(), "setup".into()]);
        argv.extend(candidates.iter().cloned());
        let mut child = std::process::Command::new("/bin/sh")
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The script reads the binary only when it needs it.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }

    #[test]
    fn a_looked_at_candidate_is_run_when_it_matches_and_never_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (mounted, writable) = (dir.path().join("mounted"), dir.path().join("w/den"));
        std::fs::create_dir_all(&mounted).unwrap();
        let agent = b"#!/bin/sh\necho ran $0 $1 $2\n";
        std::fs::write(mounted.join("den"), agent).unwrap();
        std::fs::set_permissions(mounted.join("den"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(mounted.join("den.id"), "want\n").unwrap();
        let candidates = [format!("@{}", mounted.join("den").display()), writable.display().to_string()];
        let out = script(&candidates, agent);
        assert_eq!(out, format!("DEN-HAVE {0}\nran {0} agent setup\n", mounted.join("den").display()));
        // Another den's agent there (an upgrade): the next candidate gets
        // the upload, and the looked-at one stays as it was.
        std::fs::write(mounted.join("den.id"), "older\n").unwrap();
        let out = script(&candidates, agent);
        assert_eq!(out, format!("DEN-NEED {0}\nran {0} agent setup\n", writable.display()));
        assert_eq!(std::fs::read_to_string(mounted.join("den.id")).unwrap(), "older\n");
        // With only looked-at candidates, nothing is written anywhere.
        std::fs::remove_file(mounted.join("den")).unwrap();
        assert_eq!(script(&candidates[..1], agent), "");
        assert!(!mounted.join("den").exists());
    }
}
