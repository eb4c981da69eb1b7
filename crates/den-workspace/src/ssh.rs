//! What `den ssh` and the ssh-config host need: the workspace's keys, the
//! pinned host key, the `Host ID.den` block, and the tunnel command.

pub use den_process::Cmd;

use crate::backend::Backend;
pub use crate::backend::Via;
pub use crate::publish::{client_key_path, host_alias, proxy_command};
use crate::record::WorkspaceRecord;
use crate::{Den, Result, WorkspaceError};

/// Everything a client needs to reach a workspace.
pub struct Target {
    pub record: WorkspaceRecord,
    pub via: Via,
    /// What the workspace may ask this machine for now: the record's choice
    /// at `up`, narrowed by the provider's current options.
    pub credentials: den_protocol::Credentials,
    pub key: den_ssh::PrivateKey,
    pub host_key: den_ssh::PublicKey,
    /// The direct line's host folder, for a workspace on this machine's
    /// engine (whether its agent answers there is found out per
    /// connection: [`way_in`]).
    pub line: Option<std::path::PathBuf>,
}

/// How a connection reaches the workspace's agent.
pub enum Way {
    /// The direct line: connected to the agent's socket (docs/line.md).
    Direct(std::os::unix::net::UnixStream),
    /// A command whose stdin and stdout carry the connection: `docker
    /// exec`, a provider's command, `kubectl exec`.
    Exec(Cmd),
}

pub fn target(den: &Den, id: &str) -> Result<Target> {
    let record = WorkspaceRecord::load(den, id)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))?;
    // One provider lookup and option resolution for both the way in and
    // the credentials choice (this runs for every ProxyCommand connection).
    let (via, now) = Backend::of_record(den, &record).via(den, &record)?;
    let (key, host_key) = keys(den, id)?;
    let credentials = den_protocol::Credentials {
        git: record.credentials.git && now.git,
        docker: record.credentials.docker && now.docker,
    };
    let line = matches!(via, Via::Docker(_)).then(|| crate::line::folder(den, id));
    Ok(Target { record, via, key, host_key, credentials, line })
}

/// The workspace's client key and the host key pinned for it.
pub(crate) fn keys(den: &Den, id: &str) -> Result<(den_ssh::PrivateKey, den_ssh::PublicKey)> {
    let key_path = client_key_path(den, id);
    let key = std::fs::read_to_string(&key_path)
        .map_err(WorkspaceError::io(format!("reading {}", key_path.display())))
        .and_then(|t| den_ssh::keys::parse_private(&t).map_err(|e| WorkspaceError::here(e.to_string())))?;
    let pinned =
        den_state::ssh_config::pinned_host_key(&den.home.known_hosts(), &host_alias(id))?.ok_or_else(|| {
            WorkspaceError::Missing(format!("no host key is pinned for `{id}`; run `den up` for it first"))
        })?;
    let host_key = den_ssh::keys::parse_public(&pinned).map_err(|e| WorkspaceError::here(e.to_string()))?;
    Ok((key, host_key))
}

/// The way in to a workspace on this machine's engine: for den on a
/// machine, the middle hop of a remote `den ssh`.
pub fn engine_via(den: &Den, rec: &WorkspaceRecord) -> Result<Via> {
    Ok(Via::Docker(crate::backend::local::docker_of(den, rec)?))
}

/// The tunnel: the agent's SSH server on the stdio of a `docker exec`, or
/// of the provider's `command` reaching the agent on the machine.
pub fn tunnel(t: &Target, workdir: Option<&str>) -> Result<Cmd> {
    t.via.tunnel(&t.record, workdir)
}

/// The direct line when the agent answers on it, else the exec tunnel
/// (the same as [`tunnel`]). `--debug` says which, and why.
pub fn way_in(t: &Target, workdir: Option<&str>) -> Result<Way> {
    match direct(t) {
        Some(s) => Ok(Way::Direct(s)),
        None => Ok(Way::Exec(tunnel(t, workdir)?)),
    }
}

/// [`way_in`] for den's port forwarder: the direct line, else its own
/// tunnel (which a machine does not count as a session).
pub fn forwarder_way(t: &Target) -> Result<Way> {
    match direct(t) {
        Some(s) => Ok(Way::Direct(s)),
        None => Ok(Way::Exec(t.via.forwarder_tunnel(&t.record)?)),
    }
}

/// A connection to the agent's socket in the workspace's host folder, when
/// it answers; `None` (said under `--debug`) sends the caller to the exec
/// tunnel.
pub fn direct(t: &Target) -> Option<std::os::unix::net::UnixStream> {
    direct_at(&t.record.id, t.line.as_deref())
}

pub(crate) fn direct_at(id: &str, folder: Option<&std::path::Path>) -> Option<std::os::unix::net::UnixStream> {
    let Some(folder) = folder else {
        tracing::debug!("{id}: exec tunnel (no direct line for this provider)");
        return None;
    };
    let socket = folder.join(den_protocol::LINE_SOCKET);
    if crate::line::forced_exec() {
        tracing::debug!("{id}: exec tunnel ({}=exec)", crate::line::TEST_SWITCH);
        return None;
    }
    match crate::line::connect(folder) {
        Ok(s) => {
            tracing::debug!("{id}: direct line {}", socket.display());
            Some(s)
        }
        Err(e) => {
            tracing::debug!("{id}: exec tunnel (direct line {}: {e})", socket.display());
            None
        }
    }
}

/// Says (under `--debug`) that the direct line answered but the SSH
/// connection on it failed, so the caller takes the exec tunnel.
pub fn direct_failed(t: &Target, e: &dyn std::fmt::Display) {
    said_direct_failed(&t.record.id, e);
}

pub(crate) fn said_direct_failed(id: &str, e: &dyn std::fmt::Display) {
    tracing::debug!("{id}: exec tunnel (the direct line answered, then: {e})");
}

/// True when the workspace runs (one inspect, or a status through the
/// provider).
pub fn is_running(den: &Den, t: &Target) -> Result<bool> {
    t.via.is_running(den, &t.record)
}

impl Via {
    /// True when the engine publishes the workspace's `appPort` itself
    /// (`docker run -p` on this machine), so den's forwarder leaves it.
    pub fn publishes_app_port(&self) -> bool {
        matches!(self, Via::Docker(_))
    }

    /// True when the workspace sits on a machine that may be stopped (or
    /// asleep) while the tunnel says nothing about it.
    pub fn may_be_asleep(&self, r: &WorkspaceRecord) -> bool {
        r.machine.is_some()
    }
}

/// The tunnel's complaint that the workspace is stopped, or that its
/// container is gone (removed outside den): docker's and podman's "is not
/// running" and "no such container", kubectl's `pods "…" not found`. `den
/// up` starts or makes it again.
pub fn says_stopped(tunnel_stderr: &str) -> bool {
    den_driver::phrases::says_not_running(tunnel_stderr)
        || den_driver::phrases::says_no_such_container(tunnel_stderr)
        || den_driver::phrases::says_pod_not_found(tunnel_stderr)
}

/// After a failed tunnel: whether `den up` should start the workspace,
/// because the tunnel said it is stopped or gone, or because its machine
/// does not run.
pub fn needs_start(den: &Den, t: &Target, tunnel_stderr: &str) -> bool {
    says_stopped(tunnel_stderr) || (t.via.may_be_asleep(&t.record) && !is_running(den, t).unwrap_or(true))
}

/// How long after a connection starts den starts its credentials relay: a
/// quick command (`den ssh ID -- make`) ends before and pays nothing; git
/// asking earlier waits for it (the helper waits while a session is open).
const RELAY_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// While a connection is open: answers the workspace's credential requests
/// with this machine's `git credential fill|approve|reject` (never
/// prompting: GIT_TERMINAL_PROMPT=0) and docker's configured credentials.
/// Does nothing when the workspace wants none. The relay runs in a thread
/// of its own and dies with den.
pub fn serve_credentials(t: &Target) {
    if !t.credentials.any() || t.record.agent_path.is_empty() {
        return;
    }
    let Ok(cmd) = t.via.credentials_cmd(&t.record) else { return };
    let wanted = t.credentials;
    // The relay's own connection: the direct line when it answers, where
    // the server relays in its own process (the den-credentials
    // subsystem); a server from before that runs the command.
    let argv = [t.record.agent_path.as_str(), "agent", "credentials-server"];
    let command = argv.iter().map(|w| den_process::shell_quote(w)).collect::<Vec<_>>().join(" ");
    let (id, line, key, host_key) = (t.record.id.clone(), t.line.clone(), t.key.clone(), t.host_key.clone());
    // This thread spawns the relay and lives as long as it: the relay's
    // PDEATHSIG is tied to it.
    std::thread::spawn(move || {
        use crate::line::Program;
        std::thread::sleep(RELAY_DELAY);
        for program in [Program::Subsystem(den_protocol::CREDENTIALS_SUBSYSTEM), Program::Command(command)] {
            let Some(stream) = direct_at(&id, line.as_deref()) else { break };
            match crate::line::run(stream, key.clone(), host_key.clone(), "root", program) {
                Ok(mut r) => {
                    let (Some(stdin), Some(stdout)) = (r.stdin.take(), r.stdout.take()) else { return };
                    relay(stdin, stdout, wanted);
                    if r.wait() != Ok(Some(den_ssh::client::REFUSED)) {
                        return;
                    }
                }
                Err(e) => {
                    said_direct_failed(&id, &e);
                    break;
                }
            }
        }
        relay_exec(&cmd, wanted);
    });
}

fn relay_exec(cmd: &Cmd, wanted: den_protocol::Credentials) {
    use std::os::unix::process::CommandExt;
    let mut c = cmd.to_command();
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    // SAFETY: prctl between fork and exec: the relay ends with den.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let Ok(mut child) = c.spawn() else { return };
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else { return };
    relay(stdin, stdout, wanted);
    let _ = child.wait();
}

/// The relay's conversation: a JSON request per line from the agent, a
/// JSON answer per line back, each answered in a thread of its own.
fn relay(stdin: impl std::io::Write + Send + 'static, stdout: impl std::io::Read, wanted: den_protocol::Credentials) {
    use std::io::BufRead;
    let stdin = std::sync::Arc::new(std::sync::Mutex::new(stdin));
    for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(req) = serde_json::from_str::<den_protocol::CredentialRequest>(&line) else { continue };
        let stdin = stdin.clone();
        std::thread::spawn(move || {
            // Only what the provider lets the workspace ask for.
            let output = match req.op.as_str() {
                "docker-get" if wanted.docker => den_oci::credentials::get(req.input.trim()),
                "docker-list" if wanted.docker => den_oci::credentials::list(),
                "get" if wanted.git => crate::relay::local_git_credential(&req.op, &req.input),
                _ => String::new(),
            };
            let answer = den_protocol::CredentialAnswer { id: req.id, output };
            if let Ok(mut w) = stdin.lock() {
                let _ = writeln!(w, "{}", serde_json::to_string(&answer).expect("serialises"));
                let _ = w.flush();
            }
        });
    }
}
