//! `den ui`: the workspaces dashboard on 127.0.0.1, until Ctrl-C.

use crate::cli::UiArgs;
use crate::exit;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: UiArgs) -> anyhow::Result<i32> {
    let ctx = settings.ctx()?;
    let home = ctx.den.home.clone();
    let open = |url: &str| {
        if !args.no_open {
            if let Err(e) = den_ui::open_browser(&home, url) {
                eprintln!("den: {}", den_ops::one_line(&e));
            }
        }
    };
    if let Some(running) = den_ui::running(&ctx.den.home) {
        eprintln!("den ui already runs at {} (pid {})", running.url, running.pid);
        open(&running.url);
        return Ok(exit::OK);
    }
    let opts = den_ui::Options {
        home: ctx.den.home.clone(),
        context: settings.context.clone(),
        exe: ctx.exe,
        env: ctx.env,
        port: args.port,
        ssh_config: Some(crate::commands::workspace::ssh_config_path(None)?),
    };
    den_ui::serve(opts, |url| {
        println!("{url}");
        eprintln!("den ui: serving the dashboard at {url} (Ctrl-C ends it)");
        open(url);
    })?;
    Ok(exit::OK)
}
