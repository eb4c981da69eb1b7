//! `den ssh`: a shell or a command in a workspace, over SSH through the
//! tunnel; `--stdio` only pipes the connection (ProxyCommand).

use std::sync::Arc;

use den_ops::ssh::SessionRequest;

use crate::cli::SshArgs;
use crate::progress::Progress;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: SshArgs) -> anyhow::Result<i32> {
    let ctx = settings.ctx()?;
    let mut progress = Progress::new();
    if args.stdio {
        return Ok(den_ops::ssh::proxy(&ctx, &args.id, &mut progress)?);
    }
    let id = args.id.clone();
    let code = den_ops::ssh::session(&ctx, &id, &request(args), &mut progress)?;
    // Leave at once: a reader blocked on our stdin must not hold us.
    std::process::exit(code)
}

fn request(args: SshArgs) -> SessionRequest {
    let command = match (args.command_string, args.command.is_empty()) {
        (Some(c), _) => Some(c),
        // After `--`: exactly that argument vector, as docker exec and
        // kubectl exec run one: each word quoted for the remote shell.
        (None, false) => Some(args.command.iter().map(|w| den_process::shell_quote(w)).collect::<Vec<_>>().join(" ")),
        (None, true) => None,
    };
    let local_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let tty = !args.no_tty && (args.tty || (command.is_none() && local_terminal));
    let agent_socket = if args.agent_forwarding {
        let socket = std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty());
        if socket.is_none() {
            eprintln!("den: -A: SSH_AUTH_SOCK is not set, so there is no agent to forward");
        }
        socket.map(std::path::PathBuf::from)
    } else {
        None
    };
    SessionRequest {
        command,
        tty,
        local_terminal,
        user: args.user,
        workdir: args.workdir,
        local: args.local,
        remote: args.remote,
        agent_socket,
        forward_ports: !args.no_forward_ports,
        note: Arc::new(|m: &str| eprintln!("den: {}", den_process::text::lines(m))),
    }
}
