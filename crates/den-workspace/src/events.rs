//! What a front end that shows the workspace list (the dashboard) can
//! follow instead of asking every engine again and again: the container
//! events of each local engine the context's workspaces run on.

use crate::backend::Backend;
use crate::record::WorkspaceRecord;
use crate::{Den, Result};

/// How the context's workspaces can be followed.
#[derive(Debug, Default)]
pub struct EngineEvents {
    /// One `docker events` (or `podman events`) per local engine, for
    /// this DEN_HOME's containers only: each line it prints is a change.
    pub commands: Vec<std::process::Command>,
    /// Workspaces on machines or in pods, which have no such stream: their
    /// status must be asked for.
    pub others: usize,
}

/// The container events that change what a list shows.
const STATE_EVENTS: &[&str] = &["create", "start", "die", "destroy", "pause", "unpause", "rename"];

pub fn engine_events(den: &Den) -> Result<EngineEvents> {
    let mut out = EngineEvents::default();
    let mut seen = Vec::new();
    for r in WorkspaceRecord::all(den)? {
        match Backend::of_record(den, &r) {
            Backend::Local | Backend::Compose => {
                let Ok(d) = crate::backend::local::docker_of(den, &r) else { continue };
                let key = format!("{}|{:?}", d.path, d.env);
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                // This DEN_HOME's containers, the changes of their state
                // only (not the execs of every session), one line each.
                let mut cmd = d.cmd().args(["events", "--filter", "type=container", "--filter"]);
                cmd = cmd.arg(format!("label={}={}", den_driver::HOME_LABEL, crate::plan::home_tag(den)));
                for e in STATE_EVENTS {
                    cmd = cmd.args(["--filter", &format!("event={e}")]);
                }
                let cmd = cmd.args(["--format", "{{.ID}}"]);
                out.commands.push(cmd.to_command());
            }
            Backend::Remote | Backend::Kube => out.others += 1,
        }
    }
    Ok(out)
}
