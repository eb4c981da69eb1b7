//! `den up` and `den build`: the path every backend shares. The
//! workspace's id and lock, its [`Plan`] (record, provider, configuration),
//! then the [`Backend`] of its provider does the rest.

use crate::backend::{Backend, CloneAt};
use crate::plan::{canonical_folder, Fetched, Identified, Plan, RemoteSource, Source, UpOptions, UpResult};
use crate::{id, Den, Reporter, Result, WorkspaceError};

/// The id of a folder's workspace: the one it was brought up with under
/// den's earlier rule (which kept runs of `-`, a trailing `-` and
/// non-ASCII letters as `-`) when such a workspace exists, else today's.
fn derived_id(den: &Den, folder: &std::path::Path, name: &str) -> Result<String> {
    let id = crate::workspace_id_for(folder);
    let earlier = id::normalize(name);
    if earlier != id
        && id::validate(&earlier).is_ok()
        && crate::WorkspaceRecord::load(den, &id)?.is_none()
        && crate::WorkspaceRecord::load(den, &earlier)?.is_some_and(|r| r.local_folder == folder)
    {
        return Ok(earlier);
    }
    Ok(id)
}

/// The workspace `src` names, with its folder made canonical and its id
/// chosen and checked. An id derived from a folder name that is not itself
/// a valid id is said.
fn identify(den: &Den, src: &Source, reporter: &mut dyn Reporter) -> Result<Identified> {
    if let Some(remote) = &src.remote {
        return identify_remote(src, remote, reporter);
    }
    let folder = canonical_folder(&src.source)?;
    let id = match &src.id {
        Some(id) => id.clone(),
        None => {
            let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let id = derived_id(den, &folder, &name)?;
            if name != id {
                reporter.line(&format!("workspace id `{id}` (from the folder name `{name}`; --id chooses another)"));
            }
            id
        }
    };
    id::validate(&id).map_err(WorkspaceError::BadInput)?;
    Ok(Identified { id, folder, src: src.clone(), fetched: Fetched::default() })
}

/// A git or image SOURCE: the id from the repository's or image's name.
/// Nothing is cloned yet (that happens under the workspace's lock, in
/// [`fetch_remote`]).
fn identify_remote(src: &Source, remote: &RemoteSource, reporter: &mut dyn Reporter) -> Result<Identified> {
    use den_source::Spec;
    let name = match &remote.spec {
        Spec::Git(g) => den_source::repo_name(&g.url),
        Spec::Image(i) => {
            let last = i.rsplit('/').next().unwrap_or(i);
            last.split(['@', ':']).next().unwrap_or(last).to_string()
        }
        Spec::Local(_) => unreachable!("a local source is a folder"),
    };
    let id = match &src.id {
        Some(id) => id.clone(),
        None => {
            let id = id::normalize(&name);
            if id != name {
                reporter.line(&format!("workspace id `{id}` (from `{name}`; --id chooses another)"));
            }
            id
        }
    };
    id::validate(&id).map_err(WorkspaceError::BadInput)?;
    // The folder is den's, and made under the lock (fetch_remote).
    Ok(Identified { id, folder: src.source.clone(), src: src.clone(), fetched: Fetched::default() })
}

/// den's folder for a git or image SOURCE: the clone (made once; later
/// `up`s reuse it and never pull; `--reset` clones again) or an empty
/// folder. Runs under the workspace's lock; refuses, before cloning, an id
/// that belongs to another source.
fn fetch_remote(
    den: &Den,
    w: &mut Identified,
    record: Option<&crate::WorkspaceRecord>,
    reset: bool,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    use den_source::Spec;
    let Some(remote) = w.src.remote.clone() else { return Ok(()) };
    let id = w.id.clone();
    let info = match &remote.spec {
        Spec::Git(g) => fetch_git(den, w, (g, &remote), record, reset, reporter)?,
        Spec::Image(image) => {
            if let Some(r) = &record {
                match &r.source {
                    Some(old) if old.kind == "image" => {}
                    Some(old) => return Err(taken(&id, &old.url)),
                    None => return Err(taken(&id, &r.local_folder.display().to_string())),
                }
            }
            let dir = crate::record::source_dir(den, &id);
            std::fs::create_dir_all(&dir).map_err(WorkspaceError::io(format!("making {}", dir.display())))?;
            w.folder = dir;
            w.fetched.image = Some(image.clone());
            crate::record::SourceInfo { kind: "image".into(), url: image.clone(), ..Default::default() }
        }
        Spec::Local(_) => unreachable!(),
    };
    if !w.fetched.clone_on_machine {
        w.folder = canonical_folder(&w.folder)?;
    }
    w.fetched.info = Some(info);
    Ok(())
}

/// The error for an id that another source's workspace has.
fn taken(id: &str, what: &str) -> WorkspaceError {
    WorkspaceError::Conflict(format!(
        "workspace `{id}` was made from {what}; choose another id with --id, or `den delete {id}` first"
    ))
}

/// A git SOURCE: refuses an id of another source (or another ref without
/// `--reset`), then clones here, on the machine, or (the configuration
/// only) for the pod.
fn fetch_git(
    den: &Den,
    w: &mut Identified,
    (g, remote): (&den_source::GitSource, &crate::plan::RemoteSource),
    record: Option<&crate::WorkspaceRecord>,
    reset: bool,
    reporter: &mut dyn Reporter,
) -> Result<crate::record::SourceInfo> {
    let id = w.id.clone();
    let dir = crate::record::source_dir(den, &id);
    let url = den_source::redact(&g.url);
    let reference = g.reference.to_string();
    if let Some(r) = record {
        match &r.source {
            None => return Err(taken(&id, &r.local_folder.display().to_string())),
            Some(old) if old.url != url => return Err(taken(&id, &old.url)),
            Some(old) if old.reference != reference && !reset && dir.is_dir() => {
                return Err(WorkspaceError::Conflict(format!(
                    "workspace `{id}` was cloned at `{}`, not `{reference}`; `den up --reset` clones it again",
                    if old.reference.is_empty() { "the default branch" } else { &old.reference }
                )))
            }
            Some(_) => {}
        }
    }
    if dir.exists() && record.is_none() {
        // Left by a den that died before it recorded anything.
        crate::record::remove_dir(&dir)?;
    }
    // A machine provider's machine clones for itself (its own den checks
    // the same things there). A pod clones into its volume; den here needs
    // the configuration only (it names the pod's image).
    let entry = crate::plan::pick_provider(den, &w.src, record)?;
    let clone_at = Backend::of(&entry)?.clone_at();
    w.fetched.clone_in_pod = clone_at == CloneAt::Pod;
    let commit = if clone_at == CloneAt::Machine {
        reporter.phase("source", &format!("{url} (cloned on the machine)"));
        w.fetched.clone_on_machine = true;
        record.and_then(|r| r.source.as_ref()).map(|s| s.commit.clone()).unwrap_or_default()
    } else if dir.is_dir() && !reset {
        reporter.phase("source", &format!("{url} (the clone den made before; not pulled)"));
        den_source::head(&dir).unwrap_or_default()
    } else {
        let what = if w.fetched.clone_in_pod {
            format!("{url}: its configuration (the pod clones the rest)")
        } else {
            format!("cloning {url}")
        };
        reporter.phase("source", &what);
        clone_here(w, (g, remote), &dir, reporter)?
    };
    w.folder = match &g.subpath {
        Some(sub) => dir.join(sub),
        None => dir.clone(),
    };
    Ok(crate::record::SourceInfo {
        kind: "git".into(),
        url,
        reference,
        commit,
        subpath: g.subpath.clone().unwrap_or_default(),
    })
}

/// Clones into `dir` (the configuration only, for a pod); with `--reset`
/// the new clone is made beside the old one, which goes only once the new
/// one is complete. Returns the commit checked out.
fn clone_here(
    w: &Identified,
    (g, remote): (&den_source::GitSource, &crate::plan::RemoteSource),
    dir: &std::path::Path,
    reporter: &mut dyn Reporter,
) -> Result<String> {
    let target = if dir.exists() { dir.with_extension("den-new") } else { dir.to_path_buf() };
    let _ = crate::record::remove_dir(&target.with_extension("den-new"));
    let mut line = |l: &str| reporter.line(&format!("  │ {l}"));
    let cloned = if w.fetched.clone_in_pod {
        den_source::clone_config(g, &target, &mut line)
    } else {
        den_source::clone_with_env(g, remote.strategy, remote.recursive_submodules, &w.src.git_env, &target, &mut line)
    }?;
    if target != dir {
        crate::record::remove_dir(dir)?;
        std::fs::rename(&target, dir)
            .map_err(WorkspaceError::io(format!("moving the new clone to {}", dir.display())))?;
    }
    Ok(cloned.commit)
}

/// Brings a workspace up: finds or makes its container, injects the agent,
/// runs setup and the lifecycle hooks that are due, records the workspace.
pub fn up(den: &Den, opts: &UpOptions, reporter: &mut dyn Reporter) -> Result<UpResult> {
    reporter.phase("resolve", &opts.workspace.source.display().to_string());
    let mut w = identify(den, &opts.workspace, reporter)?;
    // The lock comes first: the record the plan reads is the one it guards.
    let id = w.id.clone();
    let lock = den.lock_workspace(&id, reporter)?;
    let result = crate::WorkspaceRecord::load(den, &id)
        .and_then(|record| fetch_remote(den, &mut w, record.as_ref(), opts.reset, reporter).map(|()| record))
        .and_then(|record| Plan::load(den, &w, record))
        // Global options given with an up that fails before it makes
        // anything are never saved (the sequence saves them with the first
        // record): later ups would fail the same way without saying why.
        .and_then(|plan| Backend::for_plan(&plan).and_then(|backend| backend.up(den, opts, plan, reporter)));
    // Nothing of a workspace that never came to be stays behind: not its
    // lock, not den's clone.
    if result.is_err() && matches!(crate::WorkspaceRecord::load(den, &id), Ok(None)) {
        if w.src.remote.is_some() {
            let _ = crate::record::remove_dir(&crate::record::source_dir(den, &id));
        }
        lock.remove();
    }
    result
}

/// Builds (or fetches) the workspace's image without starting anything.
/// Returns the image reference.
pub fn build(den: &Den, src: &Source, reporter: &mut dyn Reporter) -> Result<String> {
    reporter.phase("resolve", &src.source.display().to_string());
    let mut w = identify(den, src, reporter)?;
    // A clone is made under the workspace's lock, as `up` makes it.
    let lock = if w.src.remote.is_some() { Some(den.lock_workspace(&w.id, reporter)?) } else { None };
    let record = crate::WorkspaceRecord::load(den, &w.id)?;
    if let Some(lock) = lock {
        let fetched = fetch_remote(den, &mut w, record.as_ref(), false, reporter);
        if record.is_none() {
            lock.remove();
        }
        fetched?;
    }
    let plan = Plan::load(den, &w, record)?;
    Backend::of(&plan.entry)?.build(den, &plan, reporter)
}
