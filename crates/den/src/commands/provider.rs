//! `den provider list|use|options|set-options|add|update|delete`.

use den_workspace::{providers, Den};
use serde_json::json;

use crate::cli::{Output, ProviderCommand};
use crate::commands::print_json;
use crate::exit;
use crate::settings::Settings;

pub fn run(settings: &Settings, cmd: ProviderCommand) -> anyhow::Result<i32> {
    let den = settings.den()?;
    match cmd {
        ProviderCommand::List(args) => list(&den, args.output)?,
        ProviderCommand::Use { name } => {
            providers::use_provider(&den, &name)?;
            eprintln!("default provider of context `{}` is now `{name}`", den.context);
        }
        ProviderCommand::Options { name, output } => options(&den, name, output)?,
        ProviderCommand::SetOptions { name, options } => {
            providers::set_options(&den, &name, &options)?;
        }
        ProviderCommand::Add { source, name, make_default, options, force, releases, output } => {
            let cwd = std::env::current_dir()?;
            let req = providers::AddRequest {
                source: &source,
                cwd: &cwd,
                name: name.as_deref(),
                force,
                options: &options,
                releases: &releases.url,
            };
            add(&den, &req, make_default, output)?
        }
        ProviderCommand::Update { name, source, releases, output } => {
            update(&den, &name, source.as_deref(), &releases.url, output)?
        }
        ProviderCommand::Delete { name } => {
            providers::delete(&den, &name)?;
        }
    }
    Ok(exit::OK)
}

fn list(den: &Den, output: Output) -> anyhow::Result<()> {
    let default = providers::default_provider(den)?;
    let all = providers::list(den)?;
    match output {
        Output::Json => print_json(
            &all.iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "version": p.manifest.version,
                        "description": p.manifest.description,
                        "default": p.name == default,
                        "builtin": p.builtin,
                        "source": p.source,
                    })
                })
                .collect::<Vec<_>>(),
        )?,
        Output::Text => {
            println!("{:<14} {:<10} {:<8} DESCRIPTION", "NAME", "VERSION", "DEFAULT");
            for p in &all {
                let d = if p.name == default { "yes" } else { "" };
                let row = format!("{:<14} {:<10} {:<8} {}", p.name, p.manifest.version, d, p.manifest.description);
                println!("{}", den_process::text::one_line(&row));
            }
        }
    }
    Ok(())
}

fn options(den: &Den, name: Option<String>, output: Output) -> anyhow::Result<()> {
    let name = match name {
        Some(n) => n,
        None => providers::default_provider(den)?,
    };
    let entry = providers::get(den, &name)?;
    let resolved = providers::options_for_display(den, &entry)?;
    match output {
        Output::Json => {
            let map: serde_json::Map<String, serde_json::Value> = resolved
                .iter()
                .map(|(k, v)| {
                    let o = &entry.manifest.options[k];
                    let value = if o.password && !v.value.is_empty() { "********".into() } else { v.value.clone() };
                    (
                        k.clone(),
                        json!({"value": value, "source": v.source, "description": o.description,
                               "required": o.required, "global": o.global}),
                    )
                })
                .collect();
            print_json(&map)?
        }
        Output::Text => {
            let w = resolved.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
            println!("{:<w$}  {:<24}  {:<8}  DESCRIPTION", "NAME", "VALUE", "SOURCE");
            for (k, v) in &resolved {
                let o = &entry.manifest.options[k];
                let value = if o.password && !v.value.is_empty() {
                    "********".to_string()
                } else if o.required && v.value.is_empty() {
                    "(required, not set)".to_string()
                } else {
                    v.value.clone()
                };
                let source = serde_json::to_value(v.source)?.as_str().unwrap_or_default().to_string();
                let row = format!("{k:<w$}  {value:<24}  {source:<8}  {}", o.description);
                println!("{}", den_process::text::one_line(&row));
            }
        }
    }
    Ok(())
}

fn add(den: &Den, req: &providers::AddRequest, make_default: bool, output: Output) -> anyhow::Result<()> {
    let p = providers::add(den, req)?;
    if make_default {
        providers::use_provider(den, &p.name)?;
    }
    match output {
        Output::Json => print_json(&json!({"name": p.name, "source": p.source, "builtin": p.builtin}))?,
        Output::Text if p.builtin => eprintln!("`{}` is built into den: nothing to add", p.name),
        Output::Text => eprintln!("added provider `{}` from {}", p.name, p.source),
    }
    if make_default && output == Output::Text {
        eprintln!("default provider of context `{}` is now `{}`", den.context, p.name);
    }
    Ok(())
}

fn update(den: &Den, name: &str, source: Option<&str>, releases: &str, output: Output) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let u = providers::update(den, name, source, &cwd, releases)?;
    for o in &u.dropped {
        eprintln!("warning: option {o} is no longer in the provider's manifest; its saved value was dropped");
    }
    let (old, new) = (&u.old_version, &u.entry.manifest.version);
    match output {
        Output::Json => print_json(&json!({"name": u.entry.name, "source": u.entry.source,
            "previousVersion": old, "version": new, "droppedOptions": u.dropped}))?,
        Output::Text => eprintln!("updated provider `{name}` from {} ({old:?} → {new:?})", u.entry.source),
    }
    Ok(())
}
