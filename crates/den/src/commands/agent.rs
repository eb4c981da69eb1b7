//! The hidden commands: `den agent …` (inside the workspace) and
//! `den helper …` (for provider manifests).

use den_workspace::far;

use crate::cli::{AgentCommand, HelperCommand};

pub fn run(cmd: AgentCommand) -> anyhow::Result<i32> {
    match cmd {
        AgentCommand::Setup => Ok(den_agent::setup::main()),
        AgentCommand::SshServer { stdio: _, workdir } => Ok(den_agent::ssh::ssh_server_main(workdir)),
        AgentCommand::LineServer => Ok(den_agent::line::server_main()),
        AgentCommand::SftpServer => Ok(den_agent::ssh::sftp_server_main()),
        AgentCommand::PortsWatch => Ok(den_agent::ports::watch_main()),
        AgentCommand::VscodeExtensions => Ok(den_agent::extensions::watch_main()),
        AgentCommand::InactivityWatch { timeout_secs } => {
            let data = den_agent::data_dir();
            den_agent::inactivity::watch(&data, std::time::Duration::from_secs(timeout_secs));
            Ok(crate::exit::OK)
        }
        AgentCommand::RemoteUp => Ok(far::machine::remote_up_main()),
        AgentCommand::ReceiveContent => Ok(far::pod::receive_content_main()),
        AgentCommand::CloneContent => Ok(far::pod::clone_content_main()),
        AgentCommand::GitCredential { op, data } => {
            Ok(den_agent::credentials::helper_main(&op, &data.unwrap_or_else(den_agent::data_dir)))
        }
        AgentCommand::GitSsh { socket, args } => Ok(far::clone_relay::git_ssh_main(&socket, args)),
        AgentCommand::DockerCredential { op } => {
            Ok(den_agent::credentials::docker_helper_main(&op, &den_agent::data_dir()))
        }
        AgentCommand::CredentialsServer => Ok(den_agent::credentials::server_main(&den_agent::data_dir())),
        AgentCommand::RemoteTunnel { home, context, workdir, credentials, forwarder, id } => {
            let kind = match (credentials, forwarder) {
                (true, _) => far::machine::TunnelKind::Credentials,
                (false, true) => far::machine::TunnelKind::Forwarder,
                (false, false) => far::machine::TunnelKind::Session,
            };
            Ok(far::machine::tunnel_main(&home, &context, &id, workdir.as_deref(), kind))
        }
        AgentCommand::RemoteOp { op, home, context, id } => Ok(far::machine::op_main(&home, &context, &op, &id)),
        AgentCommand::MachineWatch { home } => Ok(far::watch::machine_watch_main(&home)),
    }
}

pub fn helper(cmd: HelperCommand) -> anyhow::Result<i32> {
    match cmd {
        HelperCommand::Sh { command, args } => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new("/bin/sh").arg("-c").arg(&command).args(&args).exec();
            Err(anyhow::anyhow!("running /bin/sh: {err}"))
        }
    }
}
