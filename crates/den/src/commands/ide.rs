//! `den open`, `den ide list/use`, and the IDE step of `den up`.

use den_workspace::{Den, DenConfig, WorkspaceRecord};
use serde_json::json;

use crate::cli::{IdeCommand, Output};
use crate::commands::print_json;
use crate::exit;
use crate::settings::Settings;

/// The IDE named, else the context's default (`den ide use`), else
/// `fallback`.
fn choose(den: &Den, name: Option<&str>, fallback: &str) -> anyhow::Result<den_ide::Ide> {
    let saved = DenConfig::load(&den.home)?.default_ide.get(&den.context).cloned();
    Ok(den_ide::by_name(name.or(saved.as_deref()).unwrap_or(fallback))?)
}

/// The IDE `name` (or the default) with `options` it takes: checked before
/// anything is made.
pub fn check(den: &Den, name: Option<&str>, options: &[(String, String)], fallback: &str) -> anyhow::Result<()> {
    let ide = choose(den, name, fallback)?;
    if ide.is_browser() {
        den_ide::browser::options(options)?;
    } else if let Some((k, _)) = options.first() {
        anyhow::bail!("--ide-option {k}: {} takes no options", ide.name);
    }
    Ok(())
}

/// Opens the IDE on a workspace that is up. An IDE that cannot be found
/// or started is said, not fatal: the workspace is up all the same.
pub fn open_after_up(
    den: &Den,
    rec: &WorkspaceRecord,
    name: Option<&str>,
    options: &[(String, String)],
    forward_ports: bool,
) -> anyhow::Result<()> {
    let ide = choose(den, name, "none")?;
    if ide.is_browser() {
        if !forward_ports {
            eprintln!("den: openvscode needs den's port forwarder, which --forward-ports=false turned off");
        } else if let Err(e) = crate::commands::openvscode::open(den, rec, options) {
            eprintln!("den: {}", den_process::text::lines(&format!("{e:#}")));
        }
        return Ok(());
    }
    launch(ide, rec);
    Ok(())
}

fn launch(ide: den_ide::Ide, rec: &WorkspaceRecord) {
    let ide = den_ide::for_backend(ide, &rec.jetbrains_backend);
    let target = den_ide::Target {
        host: den_workspace::ssh::host_alias(&rec.id),
        user: rec.remote_user.clone(),
        folder: rec.workspace_folder.clone(),
    };
    match den_ide::open(ide, &target, &den_ide::Search::from_env()) {
        Ok(()) if ide.name != "none" => eprintln!("opening {} on {}:{}", ide.title, target.host, target.folder),
        Ok(()) => {}
        Err(e) => eprintln!("den: {}", den_process::text::lines(&e.to_string())),
    }
}

/// `den open ID [--ide NAME]`: brings the workspace up when it does not
/// run, then opens the IDE (VS Code when none was chosen).
pub fn open(settings: &Settings, id: &str, name: Option<&str>, options: &[(String, String)]) -> anyhow::Result<i32> {
    let den = settings.den()?;
    check(&den, name, options, "vscode")?;
    let ide = choose(&den, name, "vscode")?;
    let rec = WorkspaceRecord::load(&den, id)?.ok_or_else(|| den_workspace::WorkspaceError::NotFound(id.into()))?;
    let rec = if den_workspace::status(&den, id)? == den_workspace::Status::Running {
        rec
    } else {
        let opts = den_workspace::UpOptions {
            workspace: den_workspace::Source::of_record(&rec),
            ssh_config: rec.ssh_config.clone(),
            ..Default::default()
        };
        let mut progress = crate::progress::Progress::new();
        let r = den_workspace::up(&den, &opts, &mut progress);
        progress.finish();
        let rec = r?.record;
        // Its ports come back with it, as after `den up`.
        if let Err(e) = crate::commands::ports::start(&den, &rec) {
            eprintln!("den: warning: {}", den_process::text::lines(&e.to_string()));
        }
        rec
    };
    if ide.is_browser() {
        crate::commands::openvscode::open(&den, &rec, options)?;
        return Ok(exit::OK);
    }
    launch(ide, &rec);
    Ok(exit::OK)
}

pub fn run(settings: &Settings, cmd: IdeCommand) -> anyhow::Result<i32> {
    let den = settings.den()?;
    match cmd {
        IdeCommand::List(args) => {
            let default = DenConfig::load(&den.home)?.default_ide.get(&den.context).cloned();
            let default = default.as_deref().unwrap_or("none");
            match args.output {
                Output::Json => print_json(
                    &den_ide::all()
                        .iter()
                        .map(|i| json!({"name": i.name, "title": i.title, "default": i.name == default}))
                        .collect::<Vec<_>>(),
                )?,
                Output::Text => {
                    for i in den_ide::all() {
                        let mark = if i.name == default { "*" } else { " " };
                        println!("{mark} {:<16} {}", i.name, i.title);
                    }
                }
            }
        }
        IdeCommand::Use { name } => {
            den_ide::by_name(&name)?;
            let mut cfg = DenConfig::load(&den.home)?;
            cfg.default_ide.insert(den.context.clone(), name);
            cfg.save(&den.home)?;
        }
    }
    Ok(exit::OK)
}
