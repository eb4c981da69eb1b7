//! The workspace's port forwarder: started with the workspace, listed,
//! and changed (`den ports`, `den forward`).

use den_forward::{PortView, Reply, Request};
use den_workspace::{WorkspaceError, WorkspaceRecord};

use crate::{Ctx, Progress, Result};

/// Starts (or refreshes) the forwarder of `rec`; what it forwards. A new
/// one is waited for only when the configuration names ports to show.
pub fn start(ctx: &Ctx, rec: &WorkspaceRecord) -> Result<Vec<PortView>> {
    let configured = !rec.forward_ports.is_empty() || !rec.app_port.is_empty();
    Ok(den_forward::start(&ctx.den, &rec.id, &ctx.exe, configured)?.ports)
}

/// [`start`], where a forwarder that cannot start does not fail the
/// workspace: it is said, and nothing is forwarded.
pub fn start_or_say(ctx: &Ctx, rec: &WorkspaceRecord, r: &mut dyn Progress) -> Vec<PortView> {
    start(ctx, rec).unwrap_or_else(|e| {
        r.say(&format!("warning: {e}"));
        vec![]
    })
}

/// Starts the forwarder of `id` and waits until it answers.
pub fn start_and_wait(ctx: &Ctx, id: &str) -> Result<Vec<PortView>> {
    Ok(den_forward::start(&ctx.den, id, &ctx.exe, true)?.ports)
}

/// What `den ports` shows.
#[derive(Debug, Clone, Default)]
pub struct PortsReport {
    /// A forwarder runs for the workspace.
    pub forwarder: bool,
    /// It holds its connection to the workspace.
    pub connected: bool,
    pub ports: Vec<PortView>,
}

/// What the forwarder of workspace `id` holds (nothing when none runs).
pub fn list(ctx: &Ctx, id: &str) -> Result<PortsReport> {
    exists(ctx, id)?;
    let reply = match den_forward::ask(&ctx.den, id, &Request::List) {
        Ok(r) => r,
        Err(den_forward::ForwardError::NotRunning(_)) => Reply::default(),
        Err(e) => return Err(e.into()),
    };
    let forwarder = den_forward::running(&ctx.den, id);
    Ok(PortsReport { forwarder, connected: reply.connected, ports: reply.ports })
}

/// A change to what the forwarder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Forward the workspace's `host:port` (from `local_port`, else the
    /// forwarder's choice).
    Add { host: String, port: u16, local_port: Option<u16> },
    /// Stop forwarding `port`.
    Stop { port: u16 },
}

/// Changes what the forwarder of `id` holds, starting it for an addition;
/// the port added, as the forwarder now shows it.
pub fn forward(ctx: &Ctx, id: &str, change: Change) -> Result<Option<PortView>> {
    exists(ctx, id)?;
    let req = match &change {
        Change::Add { host, port, local_port } => {
            Request::Add { host: host.clone(), port: *port, local_port: *local_port }
        }
        Change::Stop { port } => Request::Stop { port: *port },
    };
    if !den_forward::running(&ctx.den, id) {
        if let Change::Stop { .. } = change {
            return Err(den_forward::ForwardError::NotRunning(id.into()).into());
        }
        start_and_wait(ctx, id)?;
    }
    let reply = den_forward::ask(&ctx.den, id, &req)?;
    Ok(match change {
        Change::Add { host, port, .. } => reply.ports.into_iter().find(|p| p.port == port && p.host == host),
        Change::Stop { .. } => None,
    })
}

fn exists(ctx: &Ctx, id: &str) -> Result<()> {
    match WorkspaceRecord::load(&ctx.den, id)? {
        Some(_) => Ok(()),
        None => Err(WorkspaceError::NotFound(id.into()).into()),
    }
}
