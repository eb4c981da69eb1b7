//! `den context list|create|use|delete|set-options|options`.

use den_workspace::context;
use serde_json::json;

use crate::cli::{ContextCommand, Output};
use crate::commands::print_json;
use crate::exit;
use crate::settings::Settings;

pub fn run(settings: &Settings, cmd: ContextCommand) -> anyhow::Result<i32> {
    let den = settings.den_any()?;
    match cmd {
        ContextCommand::List(args) => {
            let all = context::list(&den)?;
            match args.output {
                Output::Json => print_json(
                    &all.iter().map(|n| json!({"name": n, "current": *n == den.context})).collect::<Vec<_>>(),
                )?,
                Output::Text => {
                    for n in &all {
                        println!("{} {n}", if *n == den.context { "*" } else { " " });
                    }
                }
            }
        }
        ContextCommand::Create { name, options } => {
            context::create(&den, &name, &options)?;
            eprintln!("created context `{name}` (use it with `den context use {name}`)");
        }
        ContextCommand::Use { name } => {
            context::use_context(&den, &name)?;
            eprintln!("context `{name}` is now the current one");
        }
        ContextCommand::Delete { name } => context::delete(&den, &name)?,
        ContextCommand::SetOptions { name, options } => {
            context::set_options(&den, name.as_deref().unwrap_or(&den.context), &options)?
        }
        ContextCommand::Options { name, output } => {
            let opts = context::options(&den, name.as_deref().unwrap_or(&den.context))?;
            match output {
                Output::Json => print_json(&opts)?,
                Output::Text => {
                    for (k, v) in &opts {
                        println!("{k}={v}");
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}
