//! `den up/stop/delete/status/list/logs/build`.

use serde_json::json;

use crate::cli::{BuildArgs, DeleteArgs, IdArgs, ListArgs, LogsArgs, Output, StatusArgs, UpArgs};
use crate::commands::print_json;
use crate::exit;
use crate::progress::Progress;
use crate::settings::Settings;

pub fn up(settings: &Settings, args: UpArgs) -> anyhow::Result<i32> {
    let ctx = settings.ctx()?;
    // A wrong IDE name or option is said before anything is made.
    den_ops::ide::check(&ctx.den, args.ide.as_deref(), &args.ide_options, "none")?;
    let mut workspace = args.workspace.into_source()?;
    if let Some(r) = &args.prebuild_repository {
        workspace.prebuild = Some(den_workspace::features::Prebuild::new(r, false)?);
    }
    let req = den_ops::UpRequest {
        up: den_workspace::UpOptions {
            workspace,
            recreate: args.recreate,
            reset: args.reset,
            ssh_config: Some(ssh_config_path(args.ssh_config)?),
            machine: args.machine,
            authorized_key: None,
            skip_initialize: false,
            credentials: None,
            lockfile: match args.lockfile {
                Some(crate::cli::LockfileMode::Write) => den_workspace::features::LockMode::Write,
                None => den_workspace::features::LockMode::Auto,
            },
        },
        dotfiles: den_ops::dotfiles::Flags {
            url: args.dotfiles,
            script: args.dotfiles_script,
            env: args.dotfiles_script_env,
        },
        forward_ports: args.forward_ports,
    };
    let report = den_ops::up(&ctx, &req, &mut Progress::new())?;
    print_up(&report, args.output)?;
    if args.open_ide {
        let rec = &report.result.record;
        let opened =
            den_ops::ide::open_after_up(&ctx, rec, args.ide.as_deref(), &args.ide_options, args.forward_ports)?;
        crate::commands::ide::show(opened, false)?;
    }
    Ok(exit::OK)
}

fn print_up(report: &den_ops::UpReport, output: Output) -> anyhow::Result<()> {
    let (r, rec) = (&report.result, &report.result.record);
    match output {
        Output::Json => print_json(&json!({
            "ports": report.ports,
            "id": rec.id,
            "status": "Running",
            "provider": rec.provider,
            "container": rec.container_name,
            "image": rec.image,
            "localFolder": rec.local_folder,
            "workspaceFolder": rec.workspace_folder,
            "remoteUser": rec.remote_user,
            "created": r.created,
            "started": r.started,
            "agentUploaded": r.uploaded_agent,
            "hooksRan": r.hooks_ran,
            "source": rec.source,
        }))?,
        Output::Text => {
            eprintln!("{}", report.summary());
            for p in &report.ports {
                eprintln!("  {}", crate::commands::ports::describe(p));
            }
        }
    }
    Ok(())
}

/// `--ssh-config`, else $DEN_SSH_CONFIG, else ~/.ssh/config.
pub fn ssh_config_path(flag: Option<std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("DEN_SSH_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(p.into());
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("cannot find your ssh config: HOME is not set (use --ssh-config or DEN_SSH_CONFIG)")
    })?;
    Ok(std::path::PathBuf::from(home).join(".ssh").join("config"))
}

pub fn stop(settings: &Settings, args: IdArgs) -> anyhow::Result<i32> {
    den_ops::stop(&settings.ctx()?, &args.id, &mut Progress::new())?;
    Ok(exit::OK)
}

pub fn delete(settings: &Settings, args: DeleteArgs) -> anyhow::Result<i32> {
    den_ops::delete(&settings.ctx()?, &args.id, args.force, &mut Progress::new())?;
    Ok(exit::OK)
}

pub fn status(settings: &Settings, args: StatusArgs) -> anyhow::Result<i32> {
    let den = settings.den()?;
    let s = den_workspace::status(&den, &args.id)?;
    match args.output {
        Output::Json => {
            let mut doc = json!({ "id": args.id, "status": s });
            if let Some(source) = den_workspace::WorkspaceRecord::load(&den, &args.id)?.and_then(|r| r.source) {
                doc["source"] = serde_json::to_value(source)?;
            }
            print_json(&doc)?
        }
        Output::Text => println!("{s}"),
    }
    Ok(exit::OK)
}

pub fn list(settings: &Settings, args: ListArgs) -> anyhow::Result<i32> {
    let all = den_workspace::list(&settings.den()?)?;
    match args.output {
        Output::Json => print_json(&all)?,
        Output::Text => {
            if all.is_empty() {
                eprintln!("no workspaces yet: `den up FOLDER` makes one");
            } else {
                let w = all.iter().map(|s| s.id.len()).max().unwrap_or(2).max(2);
                println!("{:<w$}  {:<11}  {:<10}  FOLDER", "ID", "STATUS", "PROVIDER");
                for s in &all {
                    // A git or image workspace shows where it came from.
                    let from = match &s.source {
                        Some(src) if src.kind == "image" => format!("image:{}", src.url),
                        Some(src) if !src.reference.is_empty() => format!("{}@{}", src.url, src.reference),
                        Some(src) => src.url.clone(),
                        None => s.local_folder.clone(),
                    };
                    let row = format!("{:<w$}  {:<11}  {:<10}  {}", s.id, s.status.to_string(), s.provider, from);
                    println!("{}", den_process::text::one_line(&row));
                }
            }
        }
    }
    // Rows whose engine den cannot reach are listed, then said, exit 3.
    let mut problems: Vec<&str> = Vec::new();
    for p in all.iter().filter_map(|s| s.problem.as_deref()) {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        return Ok(exit::OK);
    }
    for p in problems {
        eprintln!("den: {}", den_process::text::lines(p));
    }
    Ok(exit::ENGINE_UNREACHABLE)
}

pub fn logs(settings: &Settings, args: LogsArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let den = settings.den()?;
    let text = match &args.service {
        Some(service) => den_workspace::service_logs(&den, &args.id, service)?,
        None => den_workspace::logs(&den, &args.id)?,
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(exit::OK)
}

pub fn build(settings: &Settings, args: BuildArgs) -> anyhow::Result<i32> {
    let den = settings.den()?;
    let mut progress = Progress::new();
    let mut src = args.workspace.into_source()?;
    if let Some(r) = &args.repository {
        src.prebuild = Some(den_workspace::features::Prebuild::new(r, args.push)?);
    }
    let result = den_workspace::build(&den, &src, &mut progress);
    progress.finish();
    let image = result?;
    match args.output {
        Output::Json => print_json(&json!({ "image": image }))?,
        Output::Text => println!("{image}"),
    }
    Ok(exit::OK)
}
