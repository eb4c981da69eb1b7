//! `den open`, `den ide list/use`, and the IDE step of `den up`.

use den_ops::ide::Opened;
use den_workspace::DenConfig;
use serde_json::json;

use crate::cli::{IdeCommand, Output};
use crate::commands::print_json;
use crate::exit;
use crate::progress::Progress;
use crate::settings::Settings;

/// `den open ID [--ide NAME]`: brings the workspace up when it does not
/// run, then opens the IDE (VS Code when none was chosen).
pub fn open(settings: &Settings, id: &str, name: Option<&str>, options: &[(String, String)]) -> anyhow::Result<i32> {
    let opened = den_ops::ide::open(&settings.ctx()?, id, name, options, &mut Progress::new())?;
    show(opened, true)?;
    Ok(exit::OK)
}

/// Says what opening the IDE did, and opens the browser on the browser
/// IDE's page. An IDE that could not be opened is said; the browser that
/// cannot be opened is an error only when `browser_fatal`.
pub fn show(opened: Opened, browser_fatal: bool) -> anyhow::Result<()> {
    let say = |text: &str| eprintln!("den: {}", den_process::text::lines(text));
    match opened {
        Opened::Desktop { title, host, folder } => eprintln!("opening {title} on {host}:{folder}"),
        Opened::Nothing => {}
        Opened::Failed(why) => say(&why),
        Opened::Browser(b) => {
            eprintln!("OpenVSCode Server: {}", b.url);
            if b.open {
                match den_ide::open_url(&den_ide::file_url(&b.page)) {
                    Err(e) if browser_fatal => return Err(e.into()),
                    Err(e) => say(&den_ops::one_line(&e)),
                    Ok(()) => {}
                }
            }
        }
    }
    Ok(())
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
