//! `den ssh`: a shell or a command in a workspace, over SSH through the
//! tunnel; `--stdio` only pipes the connection (ProxyCommand).

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;

use den_devcontainer::model::ForwardPort;
use den_ssh::client::{Forward, Options, RawTerminal};
use den_workspace::ssh::Target;

use crate::cli::SshArgs;
use crate::progress::Progress;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: SshArgs) -> anyhow::Result<i32> {
    let den = settings.den()?;
    let target = den_workspace::ssh::target(&den, &args.id)?;
    if args.stdio {
        return stdio(&den, target);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // git in the workspace may ask for credentials while the session lasts.
    den_workspace::ssh::serve_credentials(&target);
    let first = rt.block_on(session(&den, &target, &args))?;
    let code = match first {
        Outcome::Done(code) => code,
        Outcome::NotRunning => {
            start(&den, &target)?;
            // A container made anew has a new host key, pinned by that up.
            let target = den_workspace::ssh::target(&den, &args.id)?;
            den_workspace::ssh::serve_credentials(&target);
            match rt.block_on(session(&den, &target, &args))? {
                Outcome::Done(code) => code,
                Outcome::NotRunning => anyhow::bail!("workspace `{}` did not start", args.id),
            }
        }
    };
    // Leave at once: a reader blocked on our stdin must not hold us.
    std::process::exit(code)
}

enum Outcome {
    Done(i32),
    NotRunning,
}

/// Brings a stopped workspace up again (its postStartCommand runs).
fn start(den: &den_workspace::Den, t: &Target) -> anyhow::Result<()> {
    let opts = den_workspace::UpOptions {
        workspace: den_workspace::Source::of_record(&t.record),
        ssh_config: t.record.ssh_config.clone(),
        ..Default::default()
    };
    let mut progress = Progress::new();
    let r = den_workspace::up(den, &opts, &mut progress);
    progress.finish();
    r?;
    // Its ports come back with it, as after `den up`.
    if let Err(e) = crate::commands::ports::start(den, &t.record) {
        eprintln!("den: warning: {}", den_process::text::lines(&e.to_string()));
    }
    Ok(())
}

/// The ProxyCommand: connect the SSH client's stdio to the agent. The
/// tunnel is tried first without asking the engine whether the container
/// runs (that inspect would cost every connection); `docker exec` refuses a
/// stopped container before it reads any input, so the client's bytes are
/// still unread when den starts the workspace and tries again.
fn stdio(den: &den_workspace::Den, target: Target) -> anyhow::Result<i32> {
    use std::io::{BufRead, Write};
    let tunnel = den_workspace::ssh::tunnel(&target, None)?;
    let mut cmd = tunnel.to_command();
    cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::piped());
    // SAFETY: prctl between fork and exec: the tunnel dies with us, as it
    // would have if it had replaced us.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| tunnel.spawn_error(e))?;
    // git in the workspace may ask for credentials while the connection lasts.
    den_workspace::ssh::serve_credentials(&target);
    let stderr = child.stderr.take().expect("piped");
    let relay = std::thread::spawn(move || {
        let mut stopped = String::new();
        let mut out = std::io::stderr();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if den_workspace::ssh::says_stopped(&line) {
                stopped.push_str(&line);
                stopped.push('\n');
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
        stopped
    });
    let status = child.wait()?;
    let stopped = relay.join().unwrap_or_default();
    if status.success() || !den_workspace::ssh::needs_start(den, &target, &stopped) {
        return Ok(status.code().unwrap_or(255));
    }
    start(den, &target)?;
    den_workspace::ssh::serve_credentials(&target);
    let tunnel = den_workspace::ssh::tunnel(&target, None)?;
    let mut cmd = tunnel.to_command();
    // SAFETY: as above: the tunnel dies with us.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let status = cmd.status().map_err(|e| tunnel.spawn_error(e))?;
    Ok(status.code().unwrap_or(255))
}

fn forwards_of(ports: &[ForwardPort]) -> Vec<Forward> {
    ports
        .iter()
        .map(|p| match p {
            ForwardPort::Port(n) => {
                Forward { bind: "localhost".into(), port: *n, host: "localhost".into(), host_port: *n }
            }
            ForwardPort::HostPort { host, port } => {
                Forward { bind: "localhost".into(), port: *port, host: host.clone(), host_port: *port }
            }
        })
        .collect()
}

async fn session(den: &den_workspace::Den, t: &Target, args: &SshArgs) -> anyhow::Result<Outcome> {
    let command = match (&args.command_string, args.command.is_empty()) {
        (Some(c), _) => Some(c.clone()),
        // After `--`: exactly that argument vector, as docker exec and
        // kubectl exec run one: each word quoted for the remote shell.
        (None, false) => Some(args.command.iter().map(|w| den_process::shell_quote(w)).collect::<Vec<_>>().join(" ")),
        (None, true) => None,
    };
    let stdin_tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let tty = !args.no_tty && (args.tty || (command.is_none() && stdin_tty));
    let mut local = args.local.clone();
    // The workspace's forwarder holds its ports already.
    if !args.no_forward_ports && !t.record.forward_ports.is_empty() && !den_forward::running(den, &t.record.id) {
        for f in forwards_of(&t.record.forward_ports) {
            if !local.iter().any(|l| l.port == f.port) {
                local.push(f);
            }
        }
    }
    let agent_socket = if args.agent_forwarding {
        match std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty()) {
            Some(s) => Some(std::path::PathBuf::from(s)),
            None => {
                eprintln!("den: -A: SSH_AUTH_SOCK is not set, so there is no agent to forward");
                None
            }
        }
    } else {
        None
    };
    let opts = Options {
        user: args.user.clone().unwrap_or_else(|| t.record.remote_user.clone()),
        command,
        tty,
        env: ["LANG", "LC_ALL", "LC_CTYPE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect(),
        local_forwards: local,
        remote_forwards: args.remote.clone(),
        agent_socket,
        note: Arc::new(|m: &str| eprintln!("den: {}", den_process::text::lines(m))),
    };

    let tunnel = den_workspace::ssh::tunnel(t, args.workdir.as_deref())?;
    let den_ssh::tunnel::Tunnel { mut child, stream, stderr: errs } =
        den_ssh::tunnel::spawn(tunnel.to_command()).map_err(|e| tunnel.spawn_error(e))?;
    // The local terminal's pipes grow like the tunnel's.
    den_ssh::grow_pipe(0);
    den_ssh::grow_pipe(1);

    let raw = if tty && stdin_tty { RawTerminal::enable() } else { None };
    let result = den_ssh::client::run(stream, t.key.clone(), t.host_key.clone(), opts).await;
    drop(raw);
    match result {
        Ok(Some(code)) => Ok(Outcome::Done(code)),
        Ok(None) => {
            let id = &t.record.id;
            eprintln!(
                "den: the connection to workspace `{id}` ended before the command did: its container stopped or restarted (see `den status {id}`); `den ssh {id}` connects again"
            );
            Ok(Outcome::Done(255))
        }
        Err(e) => {
            let _ = child.kill().await;
            let stderr = errs.await.unwrap_or_default();
            if den_workspace::ssh::needs_start(den, t, &stderr) {
                return Ok(Outcome::NotRunning);
            }
            let detail = stderr.trim();
            if detail.is_empty() {
                Err(e.into())
            } else {
                Err(anyhow::anyhow!("{e}\n  the tunnel said: {detail}"))
            }
        }
    }
}

/// A `den ssh --no-forward-ports ID -- ARGV` of this den (same home and
/// context) whose stdout and stderr are piped for the caller, with `input`
/// copied to its stdin by a thread of its own (the far side may stop
/// reading early: a thing it has already). Returns the child and that
/// thread.
pub fn spawn_in(
    den: &den_workspace::Den,
    id: &str,
    argv: &[&str],
    input: Option<Box<dyn std::io::Read + Send>>,
) -> anyhow::Result<(std::process::Child, Option<std::thread::JoinHandle<()>>)> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("finding den's own binary")?;
    let mut child = std::process::Command::new(exe)
        .env("DEN_HOME", den.home.root())
        .env("DEN_CONTEXT", &den.context)
        .args(["ssh", "--no-forward-ports", id, "--"])
        .args(argv)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running den ssh")?;
    let writer = input.map(|mut input| {
        let mut stdin = child.stdin.take().expect("piped");
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut stdin);
        })
    });
    Ok((child, writer))
}
