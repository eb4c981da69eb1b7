//! `den up` with what follows it (dotfiles, the port forwarder), and the
//! start of a stopped workspace that a connection or an IDE asks for.

use den_forward::PortView;
use den_workspace::{Source, UpOptions, UpResult, WorkspaceRecord};

use crate::{dotfiles, ports, Ctx, Progress, Result};

/// Brings a stopped workspace up again as it was made (its
/// postStartCommand runs), and its ports with it, as after `den up`; the
/// record as that up left it. A forwarder that cannot start is said.
pub fn restart(ctx: &Ctx, rec: &WorkspaceRecord, r: &mut dyn Progress) -> Result<WorkspaceRecord> {
    let opts =
        UpOptions { workspace: Source::of_record(rec), ssh_config: rec.ssh_config.clone(), ..Default::default() };
    let result = den_workspace::up(&ctx.den, &opts, r);
    r.finish();
    let record = result?.record;
    ports::start_or_say(ctx, &record, r);
    Ok(record)
}

/// What `den up` is asked.
#[derive(Debug, Clone, Default)]
pub struct UpRequest {
    pub up: UpOptions,
    /// The dotfiles flags (else the context's options) for after the up.
    pub dotfiles: dotfiles::Flags,
    /// Start den's port forwarder (`--forward-ports`).
    pub forward_ports: bool,
}

/// What `den up` did.
#[derive(Debug)]
pub struct UpReport {
    pub result: UpResult,
    /// What the port forwarder holds (nothing when it was not started).
    pub ports: Vec<PortView>,
}

impl UpReport {
    /// What `den up` says when it is done.
    pub fn summary(&self) -> String {
        summary(&self.result.record)
    }
}

/// What `den up` says about the workspace it brought up.
pub fn summary(rec: &WorkspaceRecord) -> String {
    format!("workspace `{}` is up: {} as {} in {}", rec.id, rec.container_name, rec.remote_user, rec.workspace_folder)
}

/// Brings the workspace up, installs the dotfiles wanted, and starts the
/// port forwarder: ports stay forwarded with no session open. A forwarder
/// that cannot start does not fail the workspace.
pub fn up(ctx: &Ctx, req: &UpRequest, r: &mut dyn Progress) -> Result<UpReport> {
    let result = den_workspace::up(&ctx.den, &req.up, r);
    r.finish();
    let result = result?;
    let rec = &result.record;
    if let Some(d) = dotfiles::wanted(&ctx.den, &req.dotfiles)? {
        dotfiles::install(ctx, &rec.id, &d, r)?;
    }
    let ports = if req.forward_ports { ports::start_or_say(ctx, rec, r) } else { vec![] };
    Ok(UpReport { result, ports })
}

/// Stops the workspace, and its port forwarder first.
pub fn stop(ctx: &Ctx, id: &str, r: &mut dyn Progress) -> Result<()> {
    den_forward::shutdown(&ctx.den, id);
    Ok(den_workspace::stop(&ctx.den, id, r)?)
}

/// Deletes the workspace, and its port forwarder first.
pub fn delete(ctx: &Ctx, id: &str, force: bool, r: &mut dyn Progress) -> Result<()> {
    den_forward::shutdown(&ctx.den, id);
    Ok(den_workspace::delete(&ctx.den, id, force, r)?)
}
