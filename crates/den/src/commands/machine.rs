//! `den machine list|status|stop|delete`.

use den_workspace::machine;

use crate::cli::{MachineCommand, Output};
use crate::commands::print_json;
use crate::exit;
use crate::progress::Progress;
use crate::settings::Settings;

pub fn run(settings: &Settings, cmd: MachineCommand) -> anyhow::Result<i32> {
    let den = settings.den()?;
    match cmd {
        MachineCommand::List { output } => {
            let all = machine::list(&den)?;
            match output {
                Output::Json => print_json(&all)?,
                Output::Text => {
                    if all.is_empty() {
                        eprintln!("no machines (machine providers make them on `den up`)");
                    }
                    for m in &all {
                        let row = format!("{}\t{}\t{}\t{}", m.id, m.provider, m.status, m.workspaces.join(","));
                        println!("{}", den_process::text::lines(&row));
                    }
                }
            }
        }
        MachineCommand::Status { name, output } => {
            let m = machine::summary(&den, &name)?;
            match output {
                Output::Json => print_json(&m)?,
                Output::Text => println!("{}", m.status),
            }
        }
        MachineCommand::Stop { name } => {
            let mut progress = Progress::new();
            let r = machine::stop(&den, &name, &mut progress);
            progress.finish();
            r?;
            eprintln!("machine `{name}` is stopped");
        }
        MachineCommand::Delete { name, force } => {
            let mut progress = Progress::new();
            let r = machine::delete(&den, &name, force, &mut progress);
            progress.finish();
            r?;
            eprintln!("machine `{name}` is deleted");
        }
    }
    Ok(exit::OK)
}
