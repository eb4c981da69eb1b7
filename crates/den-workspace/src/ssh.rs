//! What `den ssh` and the ssh-config host need: the workspace's keys, the
//! pinned host key, the `Host ID.den` block, and the tunnel command.

use std::path::{Path, PathBuf};

use den_driver::Docker;
use den_process::Cmd;

use crate::record::WorkspaceRecord;
use crate::{Den, Result, WorkspaceError};

/// The host name of a workspace in ssh configs and known_hosts.
pub fn host_alias(id: &str) -> String {
    format!("{id}.den")
}

pub fn client_key_path(den: &Den, id: &str) -> PathBuf {
    den.home.workspace_dir(&den.context, id).join("id_ed25519")
}

/// A path as an ssh_config argument (`IdentityFile`, `UserKnownHostsFile`):
/// in double quotes, `%` doubled (ssh's token character). Refused when ssh
/// could not read it back as written: a line break ends the option, and
/// `${` starts an environment variable there, with no way to escape it.
fn config_path(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains(['\n', '\r']) || s.contains("${") {
        return Err(WorkspaceError::Invalid(format!(
            "{s:?} cannot be written into an ssh config (it holds a line break or `${{`); choose another DEN_HOME"
        )));
    }
    Ok(format!("\"{}\"", s.replace('%', "%%").replace('\\', "\\\\").replace('"', "\\\"")))
}

/// One word of a `ProxyCommand`. OpenSSH expands its `%` tokens and then
/// runs the line with `/bin/sh -c`, so the word is quoted for the shell (a
/// `$(…)` or backtick in a path stays text) and its `%` doubled.
fn proxy_word(s: &str) -> Result<String> {
    if s.contains(['\n', '\r']) {
        return Err(WorkspaceError::Invalid(format!(
            "{s:?} cannot be written into an ssh config ProxyCommand (it holds a line break)"
        )));
    }
    Ok(den_process::shell_quote(s).replace('%', "%%"))
}

/// The `ProxyCommand` for a workspace: this den binary, with the same
/// DEN_HOME when one was chosen.
pub fn proxy_command(den: &Den, id: &str) -> Result<String> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "den".into());
    let mut words = vec![proxy_word(&exe)?];
    if std::env::var_os("DEN_HOME").is_some_and(|v| !v.is_empty()) {
        words.push("--home".into());
        words.push(proxy_word(&den.home.root().display().to_string())?);
    }
    if den.context != crate::context::DEFAULT_CONTEXT {
        words.push("--context".into());
        words.push(proxy_word(&den.context)?);
    }
    words.extend(["ssh".into(), "--stdio".into(), proxy_word(id)?]);
    Ok(words.join(" "))
}

/// The login user as an ssh_config `User`: it comes from the config
/// (`remoteUser`), so anything that could end the line or the word is
/// refused rather than written.
fn config_user(user: &str) -> Result<String> {
    if user.is_empty()
        || user.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%' | '#'))
    {
        return Err(WorkspaceError::Invalid(format!(
            "remote user {user:?} cannot be written into an ssh config; use a plain user name"
        )));
    }
    Ok(user.to_string())
}

/// Pins the host key and writes the `Host ID.den` block.
pub(crate) fn publish(
    den: &Den,
    rec: &mut WorkspaceRecord,
    host_key: &str,
    user: &str,
    ssh_config: Option<&Path>,
) -> Result<()> {
    let alias = host_alias(&rec.id);
    den_state::ssh_config::pin_host_key(&den.home.known_hosts(), &alias, host_key)?;
    let Some(config) = ssh_config else { return Ok(()) };
    let body = format!(
        "Host {alias}\n  HostName {alias}\n  User {}\n  ProxyCommand {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  Ciphers {}\n",
        config_user(user)?,
        proxy_command(den, &rec.id)?,
        config_path(&client_key_path(den, &rec.id))?,
        config_path(&den.home.known_hosts())?,
        den_ssh::OPENSSH_CIPHERS,
    );
    den_state::ssh_config::upsert_block(config, &rec.id, &body)?;
    if rec.ssh_config.as_deref() != Some(config) {
        if let Some(old) = rec.ssh_config.as_deref() {
            den_state::ssh_config::remove_block(old, &rec.id)?;
        }
        rec.ssh_config = Some(config.to_path_buf());
        rec.save(den)?;
    }
    Ok(())
}

pub(crate) fn unpublish(den: &Den, id: &str, ssh_config: Option<&Path>) -> Result<()> {
    den_state::ssh_config::unpin_host_key(&den.home.known_hosts(), &host_alias(id))?;
    if let Some(c) = ssh_config {
        den_state::ssh_config::remove_block(c, id)?;
    }
    Ok(())
}

/// Everything a client needs to reach a workspace.
pub struct Target {
    pub record: WorkspaceRecord,
    pub via: Via,
    /// What the workspace may ask this machine for now: the record's choice
    /// at `up`, narrowed by the provider's current options.
    pub credentials: den_agent::protocol::Credentials,
    pub key: den_ssh::PrivateKey,
    pub host_key: den_ssh::PublicKey,
}

/// How the workspace is reached.
pub enum Via {
    /// The container on this machine's engine.
    Docker(Docker),
    /// Through a remote provider's `command`, to the agent on the machine.
    Provider(Box<crate::exec::ProviderRun>),
    /// A pod, through `kubectl exec`.
    Kube(Box<crate::exec::ProviderRun>),
}

pub fn target(den: &Den, id: &str) -> Result<Target> {
    let record = WorkspaceRecord::load(den, id)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))?;
    // One provider lookup and option resolution for both the way in and
    // the credentials choice (this runs for every ProxyCommand connection).
    let (via, now) = if crate::manage::is_remote(den, &record) {
        let run = crate::remote::run_for(den, &record)?;
        let now = crate::up::credentials_of(&run.entry, &run.options);
        (Via::Provider(Box::new(run)), now)
    } else if crate::manage::is_kube(den, &record) {
        let run = crate::kube::run_for(den, &record)?;
        let now = crate::up::credentials_of(&run.entry, &run.options);
        (Via::Kube(Box::new(run)), now)
    } else {
        let entry = crate::providers::get(den, &record.provider)?;
        let opts = crate::providers::resolve(den, &entry, &record.provider_options, Some(id))?;
        (Via::Docker(crate::up::docker_for(&entry, &opts)?), crate::up::credentials_of(&entry, &opts))
    };
    let key_path = client_key_path(den, id);
    let key = std::fs::read_to_string(&key_path)
        .map_err(WorkspaceError::io(format!("reading {}", key_path.display())))
        .and_then(|t| den_ssh::keys::parse_private(&t).map_err(|e| WorkspaceError::Agent(e.to_string())))?;
    let pinned =
        den_state::ssh_config::pinned_host_key(&den.home.known_hosts(), &host_alias(id))?.ok_or_else(|| {
            WorkspaceError::Invalid(format!("no host key is pinned for `{id}`; run `den up` for it first"))
        })?;
    let host_key = den_ssh::keys::parse_public(&pinned).map_err(|e| WorkspaceError::Agent(e.to_string()))?;
    let credentials = den_agent::protocol::Credentials {
        git: record.credentials.git && now.git,
        docker: record.credentials.docker && now.docker,
    };
    Ok(Target { record, via, key, host_key, credentials })
}

/// The tunnel: the agent's SSH server on the stdio of a `docker exec`, or
/// of the provider's `command` reaching the agent on the machine.
pub fn tunnel(t: &Target, workdir: Option<&str>) -> Result<Cmd> {
    match &t.via {
        Via::Docker(d) => Ok(tunnel_cmd(d, &t.record, workdir)),
        Via::Provider(run) => crate::remote::tunnel(run, &t.record, workdir),
        Via::Kube(run) => Ok(crate::kube::tunnel(run, &t.record, workdir)),
    }
}

/// `docker exec` of the container's SSH server.
pub(crate) fn tunnel_cmd(docker: &Docker, record: &WorkspaceRecord, workdir: Option<&str>) -> Cmd {
    let mut argv = vec![record.agent_path.clone(), "agent".into(), "ssh-server".into(), "--stdio".into()];
    if let Some(w) = workdir {
        argv.push("--workdir".into());
        argv.push(w.into());
    }
    docker.exec(&record.container_name, Some("0"), &[], &argv)
}

/// True when the workspace runs (one inspect, or a status through the
/// provider).
pub fn is_running(den: &Den, t: &Target) -> Result<bool> {
    match &t.via {
        Via::Docker(d) => Ok(d.inspect_container(&t.record.container_name)?.is_some_and(|c| c.state.running)),
        Via::Provider(_) | Via::Kube(_) => Ok(crate::status(den, &t.record.id)? == crate::Status::Running),
    }
}

/// The credentials relay (`den agent credentials-server`) of a workspace,
/// reached the same way as its SSH server.
fn credentials_cmd(t: &Target) -> Result<Cmd> {
    let argv = [t.record.agent_path.clone(), "agent".into(), "credentials-server".into()];
    match &t.via {
        Via::Docker(d) => Ok(d.exec(&t.record.container_name, Some("0"), &[], &argv)),
        Via::Kube(run) => Ok(crate::kube::Kubectl::from_run(run).exec(&t.record.container_name, &argv)),
        Via::Provider(run) => crate::remote::credentials_tunnel(run, &t.record),
    }
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
    let Ok(cmd) = credentials_cmd(t) else { return };
    let wanted = t.credentials;
    // This thread spawns the relay and lives as long as it: the relay's
    // PDEATHSIG is tied to it.
    std::thread::spawn(move || {
        std::thread::sleep(RELAY_DELAY);
        relay(&cmd, wanted);
    });
}

fn relay(cmd: &Cmd, wanted: den_agent::protocol::Credentials) {
    use std::io::{BufRead, Write};
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
    let stdin = std::sync::Arc::new(std::sync::Mutex::new(stdin));
    for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(req) = serde_json::from_str::<den_agent::credentials::CredentialRequest>(&line) else { continue };
        let stdin = stdin.clone();
        std::thread::spawn(move || {
            // Only what the provider lets the workspace ask for.
            let output = match req.op.as_str() {
                "docker-get" if wanted.docker => crate::docker_credentials::get(req.input.trim()),
                "docker-list" if wanted.docker => crate::docker_credentials::list(),
                "get" if wanted.git => local_git_credential(&req.op, &req.input),
                _ => String::new(),
            };
            let answer = den_agent::credentials::CredentialAnswer { id: req.id, output };
            if let Ok(mut w) = stdin.lock() {
                let _ = writeln!(w, "{}", serde_json::to_string(&answer).expect("serialises"));
                let _ = w.flush();
            }
        });
    }
    let _ = child.wait();
}

/// `git credential fill|approve|reject` here; what it printed, or nothing.
fn local_git_credential(op: &str, input: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What OpenSSH does with a ProxyCommand: `%%` becomes `%`, then
    /// `/bin/sh -c "exec LINE"`. Here the program is printf, so the words
    /// the shell made come back one per line.
    fn as_ssh_runs_it(words: &[String]) -> Vec<String> {
        let words = words.join(" ").replace("%%", "%");
        let line = format!("printf '%s\\n' {words}");
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(format!("exec {line}")).output().unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn proxy_command_words_survive_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let hostile = [
            format!("/h/$(touch {})", marker.display()),
            format!("/h/`touch {}`", marker.display()),
            "/with space/a'b\"c".to_string(),
            "/pct/%h%%p".to_string(),
            "/back\\slash/$HOME;ls".to_string(),
        ];
        let words: Vec<String> = hostile.iter().map(|h| proxy_word(h).unwrap()).collect();
        assert_eq!(as_ssh_runs_it(&words), hostile.to_vec());
        assert!(!marker.exists(), "a path ran as a command");
        assert!(proxy_word("a\nb").is_err());
    }

    #[test]
    fn ssh_config_paths_and_users() {
        assert_eq!(config_path(Path::new("/a b/%x\"y")).unwrap(), r#""/a b/%%x\"y""#);
        assert!(config_path(Path::new("/a/${HOME}")).is_err());
        assert!(config_path(Path::new("/a\nProxyCommand x")).is_err());
        assert_eq!(config_user("dev").unwrap(), "dev");
        for bad in ["dev\n  ProxyCommand touch /tmp/x", "a b", "", "x\"y", "%u"] {
            assert!(config_user(bad).is_err(), "{bad:?}");
        }
    }
}
