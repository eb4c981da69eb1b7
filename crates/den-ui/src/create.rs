//! `POST /api/workspaces`: a workspace from a folder path, a git URL or
//! an image, with the options `den up` takes, through the same den-ops
//! functions (`source`, `ide::check`, `up`, `ide::open_after_up`).

use serde::Deserialize;

use den_ops::ide::Opened;
use den_ops::OpsError;

use crate::server::Shared;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateBody {
    pub context: Option<String>,
    pub source: String,
    pub provider: Option<String>,
    pub ide: Option<String>,
    pub id: Option<String>,
    pub options: CreateOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateOptions {
    pub git_branch: Option<String>,
    pub git_commit: Option<String>,
    pub git_subpath: Option<String>,
    pub devcontainer_path: Option<String>,
    pub recreate: bool,
    pub provider_options: Vec<String>,
    pub workspace_env: Vec<String>,
    pub dotfiles: Option<String>,
}

/// `K=V` strings as pairs; `what` names the option in the error.
fn pairs(values: &[String], what: &str) -> Result<Vec<(String, String)>, OpsError> {
    values
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(OpsError::BadInput(format!("{what}: expected KEY=VALUE, got `{s}`"))),
        })
        .collect()
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

/// Checks the request as `den up` checks its flags, then starts the up.
pub fn start_create(app: &Shared, body: CreateBody) -> Result<String, OpsError> {
    let ctx = app.ctx(body.context.as_deref())?;
    let o = body.options;
    let ide = nonempty(body.ide);
    den_ops::ide::check(&ctx.den, ide.as_deref(), &[], "none")?;
    let workspace = den_ops::source::source(den_ops::source::SourceRequest {
        given: body.source.trim().to_string(),
        id: nonempty(body.id),
        devcontainer_path: nonempty(o.devcontainer_path).map(Into::into),
        provider: nonempty(body.provider),
        provider_options: pairs(&o.provider_options, "provider option")?,
        git_branch: nonempty(o.git_branch),
        git_commit: nonempty(o.git_commit),
        git_subpath: nonempty(o.git_subpath),
        workspace_env: pairs(&o.workspace_env, "workspace env")?,
        ..Default::default()
    })?;
    let label = workspace.id.clone().unwrap_or_else(|| body.source.clone());
    let req = den_ops::UpRequest {
        up: den_workspace::UpOptions {
            workspace,
            recreate: o.recreate,
            ssh_config: app.opts.ssh_config.clone(),
            ..Default::default()
        },
        dotfiles: den_ops::dotfiles::Flags { url: nonempty(o.dotfiles), ..Default::default() },
        forward_ports: true,
    };
    crate::ops::spawn(app, ctx, &label, move |ctx, r| {
        let report = den_ops::up(ctx, &req, r)?;
        let mut last = up_line(&report);
        if ide.is_some() {
            let opened = den_ops::ide::open_after_up(ctx, &report.result.record, ide.as_deref(), &[], true)?;
            if let Some(line) = opened_line(opened) {
                last = format!("{last}\n{line}");
            }
        }
        Ok(Some(last))
    })
}

/// What `den up` prints at its end.
pub fn up_line(report: &den_ops::UpReport) -> String {
    report.summary()
}

/// What `den open` prints; the browser IDE's URL for the page to open.
pub fn opened_line(opened: Opened) -> Option<String> {
    match opened {
        Opened::Desktop { title, host, folder } => Some(format!("opening {title} on {host}:{folder}")),
        Opened::Nothing => None,
        Opened::Failed(why) => Some(format!("den: {why}")),
        Opened::Browser(b) => Some(format!("OpenVSCode Server: {}", b.url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_pairs() {
        let got = pairs(&["A=1".into(), "B=x=y".into()], "workspace env").unwrap();
        assert_eq!(got, [("A".to_string(), "1".to_string()), ("B".into(), "x=y".into())]);
        let e = pairs(&["=1".into()], "provider option").unwrap_err().to_string();
        assert_eq!(e, "provider option: expected KEY=VALUE, got `=1`");
    }

    #[test]
    fn the_form_reads_like_the_flags() {
        let body: CreateBody = serde_json::from_str(
            r#"{"source":"https://h/r.git","options":{"git_branch":"dev","recreate":true,"provider_options":["K=V"]}}"#,
        )
        .unwrap();
        assert_eq!(body.options.git_branch.as_deref(), Some("dev"));
        assert!(body.options.recreate && body.ide.is_none());
    }
}
