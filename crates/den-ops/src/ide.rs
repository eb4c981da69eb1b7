//! Opening an IDE on a workspace: a desktop one over SSH, or OpenVSCode
//! Server in the browser ([`crate::openvscode`]).

use den_workspace::{Den, DenConfig, WorkspaceError, WorkspaceRecord};

use crate::openvscode::Browser;
use crate::{Ctx, OpsError, Progress, Result};

/// The IDE named, else the context's default (`den ide use`), else
/// `fallback`.
fn choose(den: &Den, name: Option<&str>, fallback: &str) -> Result<den_ide::Ide> {
    let saved = DenConfig::load(&den.home)?.default_ide.get(&den.context).cloned();
    Ok(den_ide::by_name(name.or(saved.as_deref()).unwrap_or(fallback))?)
}

/// The IDE `name` (or the default) with `options` it takes: checked before
/// anything is made.
pub fn check(den: &Den, name: Option<&str>, options: &[(String, String)], fallback: &str) -> Result<()> {
    let ide = choose(den, name, fallback)?;
    if ide.is_browser() {
        den_ide::browser::options(options)?;
    } else if let Some((k, _)) = options.first() {
        return Err(OpsError::BadInput(format!("--ide-option {k}: {} takes no options", ide.name)));
    }
    Ok(())
}

/// What opening an IDE did.
#[derive(Debug)]
pub enum Opened {
    /// A desktop IDE was started on `host:folder`.
    Desktop { title: String, host: String, folder: String },
    /// OpenVSCode Server runs; the browser is for the caller to open.
    Browser(Browser),
    /// No IDE was asked for (`none`).
    Nothing,
    /// The IDE could not be found or started (why, on one line): the
    /// workspace is up all the same.
    Failed(String),
}

/// Opens the IDE on a workspace that is up. An IDE that cannot be found
/// or started is [`Opened::Failed`], not an error.
pub fn open_after_up(
    ctx: &Ctx,
    rec: &WorkspaceRecord,
    name: Option<&str>,
    options: &[(String, String)],
    forward_ports: bool,
) -> Result<Opened> {
    let ide = choose(&ctx.den, name, "none")?;
    if !ide.is_browser() {
        return Ok(launch(ide, rec));
    }
    if !forward_ports {
        let why = "openvscode needs den's port forwarder, which --forward-ports=false turned off";
        return Ok(Opened::Failed(why.into()));
    }
    Ok(match crate::openvscode::start(ctx, rec, options) {
        Ok(b) => Opened::Browser(b),
        Err(e) => Opened::Failed(crate::one_line(&e)),
    })
}

/// `den open`: brings the workspace up when it does not run, then opens
/// the IDE (VS Code when none was chosen). The browser IDE failing to
/// start is an error here.
pub fn open(
    ctx: &Ctx,
    id: &str,
    name: Option<&str>,
    options: &[(String, String)],
    r: &mut dyn Progress,
) -> Result<Opened> {
    check(&ctx.den, name, options, "vscode")?;
    let ide = choose(&ctx.den, name, "vscode")?;
    let rec = WorkspaceRecord::load(&ctx.den, id)?.ok_or_else(|| WorkspaceError::NotFound(id.into()))?;
    let rec = if den_workspace::status(&ctx.den, id)? == den_workspace::Status::Running {
        rec
    } else {
        crate::restart(ctx, &rec, r)?
    };
    if ide.is_browser() {
        return Ok(Opened::Browser(crate::openvscode::start(ctx, &rec, options)?));
    }
    Ok(launch(ide, &rec))
}

fn launch(ide: den_ide::Ide, rec: &WorkspaceRecord) -> Opened {
    let ide = den_ide::for_backend(ide, &rec.jetbrains_backend);
    let target = den_ide::Target {
        host: den_workspace::ssh::host_alias(&rec.id),
        user: rec.remote_user.clone(),
        folder: rec.workspace_folder.clone(),
    };
    match den_ide::open(ide, &target, &den_ide::Search::from_env()) {
        Ok(()) if ide.name != "none" => {
            Opened::Desktop { title: ide.title.to_string(), host: target.host, folder: target.folder }
        }
        Ok(()) => Opened::Nothing,
        Err(e) => Opened::Failed(e.to_string()),
    }
}
