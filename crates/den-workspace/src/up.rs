//! `den up` and `den build`: the path every backend shares. The
//! workspace's id and lock, its [`Plan`] (record, provider, configuration),
//! then the [`Backend`] of its provider does the rest.

use crate::backend::Backend;
use crate::plan::{canonical_folder, Plan, Source, UpOptions, UpResult};
use crate::{id, Den, Reporter, Result, WorkspaceError};

/// The workspace `src` names, with its folder made canonical and its id
/// chosen and checked.
fn identify(src: &Source) -> Result<Source> {
    let folder = canonical_folder(&src.source)?;
    let id = src.id.clone().unwrap_or_else(|| crate::workspace_id_for(&folder));
    id::validate(&id).map_err(WorkspaceError::BadInput)?;
    Ok(Source { source: folder, id: Some(id), ..src.clone() })
}

/// Brings a workspace up: finds or makes its container, injects the agent,
/// runs setup and the lifecycle hooks that are due, records the workspace.
pub fn up(den: &Den, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<UpResult> {
    reporter.phase("resolve", &opts.workspace.source.display().to_string());
    let src = identify(&opts.workspace)?;
    // The lock comes first: the record the plan reads is the one it guards.
    let _lock = den.lock_workspace(src.id.as_deref().expect("identified"), reporter)?;
    let plan = Plan::load(den, &src, reporter)?;
    let backend = Backend::of(&plan.entry)?;
    backend.check(&plan)?;
    // The backend runs initializeCommand (Plan::initialize) once it has
    // checked what it must before anything runs.
    backend.up(den, opts, plan, reporter)
}

/// Builds (or fetches) the workspace's image without starting anything.
/// Returns the image reference.
pub fn build(den: &Den, src: &Source, reporter: &mut dyn Reporter) -> Result<String> {
    reporter.phase("resolve", &src.source.display().to_string());
    let plan = Plan::load(den, &identify(src)?, reporter)?;
    Backend::of(&plan.entry)?.build(den, &plan, reporter)
}
