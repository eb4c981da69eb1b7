//! Dotfiles: a repository (or folder) cloned on this machine with the
//! user's own git credentials, sent into the workspace as the remote user's
//! `~/dotfiles` through den's own SSH path (so it works on every provider),
//! and installed once per container: the named script, else the first of
//! the usual install scripts, else its `.*` files linked into the home.

use std::process::Command;

use anyhow::Context;

/// The scripts looked for, in order, when none is named.
const SCRIPTS: &[&str] =
    &["install.sh", "install", "bootstrap.sh", "bootstrap", "script/bootstrap", "setup.sh", "setup", "script/setup"];

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct Dotfiles {
    pub source: String,
    pub script: Option<String>,
    pub env: Vec<(String, String)>,
}

/// The flags, else the context's DOTFILES_URL / DOTFILES_SCRIPT options.
pub fn wanted(
    den: &den_workspace::Den,
    url: Option<String>,
    script: Option<String>,
    env: Vec<(String, String)>,
) -> anyhow::Result<Option<Dotfiles>> {
    let opts = den_workspace::context::options(den, &den.context)?;
    let pick = |v: Option<String>, key: &str| v.or_else(|| opts.get(key).cloned()).filter(|s| !s.trim().is_empty());
    Ok(pick(url, "DOTFILES_URL").map(|source| Dotfiles { source, script: pick(script, "DOTFILES_SCRIPT"), env }))
}

/// The script to run in the clone, checked on this side.
fn choose_script(dir: &std::path::Path, named: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(n) = named {
        let n = n.trim_start_matches("./");
        if !dir.join(n).is_file() {
            anyhow::bail!("the dotfiles have no script `{n}` (--dotfiles-script)");
        }
        return Ok(Some(n.to_string()));
    }
    Ok(SCRIPTS.iter().find(|s| dir.join(s).is_file()).map(|s| s.to_string()))
}

/// Clones the dotfiles here and installs them in workspace `id`.
pub fn install(settings: &crate::settings::Settings, id: &str, d: &Dotfiles) -> anyhow::Result<()> {
    let den = settings.den()?;
    let tmp = tempfile::Builder::new().prefix("den-dotfiles-").tempdir().context("making a temporary folder")?;
    let clone = tmp.path().join("dotfiles");
    eprintln!("[dotfiles] cloning {}", den_source::redact(&d.source));
    match den_source::parse(&d.source, &|p| p.exists()).map_err(anyhow::Error::msg)? {
        den_source::Spec::Local(p) => {
            // A local repository is cloned; a plain folder is copied.
            let p = std::fs::canonicalize(&p).with_context(|| format!("reading {}", p.display()))?;
            let is_repo = Command::new("git")
                .arg("-C")
                .arg(&p)
                .args(["rev-parse", "--git-dir"])
                .output()
                .is_ok_and(|o| o.status.success());
            if is_repo {
                let spec = den_source::GitSource { url: format!("file://{}", p.display()), ..Default::default() };
                den_source::clone(&spec, den_source::Strategy::Shallow, false, &clone, &mut |_| {})
                    .map_err(|e| anyhow::anyhow!("dotfiles: {e}"))?;
            } else {
                den_features::layers::copy_dir(&p, &clone).with_context(|| format!("copying {}", p.display()))?;
            }
        }
        den_source::Spec::Git(g) => {
            den_source::clone(&g, den_source::Strategy::Shallow, false, &clone, &mut |_| {})
                .map_err(|e| anyhow::anyhow!("dotfiles: {e}"))?;
        }
        den_source::Spec::Image(_) => anyhow::bail!("`{}` is not a git repository or a folder (--dotfiles)", d.source),
    }
    let script = choose_script(&clone, d.script.as_deref())?;
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    archive.append_dir_all(".", &clone).context("packing the dotfiles")?;
    let bytes = archive.into_inner()?;

    let mut exports = String::new();
    for (k, v) in &d.env {
        let name_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            anyhow::bail!("`{k}` is not a variable name (--dotfiles-script-env)");
        }
        exports.push_str(&format!("export {k}={}\n", den_process::shell_quote(v)));
    }
    let run = match &script {
        Some(s) => {
            let q = den_process::shell_quote(&format!("./{s}"));
            format!("chmod +x {q} 2>/dev/null || true\n{q}\n")
        }
        None => "for f in .[!.]* ..?*; do [ -e \"$f\" ] && [ \"$f\" != .git ] && ln -sfn \"$HOME/dotfiles/$f\" \"$HOME/$f\"; done\necho \"linked the dotfiles into $HOME\"\n".to_string(),
    };
    let remote = format!(
        "set -e\nmarker=\"$HOME/.den-dotfiles-installed\"\nif [ -e \"$marker\" ]; then cat >/dev/null; echo 'already installed in this container'; exit 0; fi\nrm -rf \"$HOME/.dotfiles.den-new\"\nmkdir -p \"$HOME/.dotfiles.den-new\"\ntar -x -C \"$HOME/.dotfiles.den-new\"\nrm -rf \"$HOME/dotfiles\"\nmv \"$HOME/.dotfiles.den-new\" \"$HOME/dotfiles\"\ncd \"$HOME/dotfiles\"\n{exports}{run}touch \"$marker\"\n"
    );
    let argv = ["sh", "-c", remote.as_str()];
    let (mut child, writer) =
        crate::commands::ssh::spawn_in(&den, id, &argv, Some(Box::new(std::io::Cursor::new(bytes))))?;
    let stderr = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[dotfiles] {line}");
        }
    });
    {
        use std::io::BufRead;
        for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
            eprintln!("[dotfiles] {line}");
        }
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let _ = errs.join();
    let status = child.wait()?;
    if !status.success() {
        let code = status.code().unwrap_or(1);
        return Err(den_workspace::WorkspaceError::HookFailed {
            hook: match &script {
                Some(s) => format!("installing the dotfiles ({s})"),
                None => "installing the dotfiles (linking them)".into(),
            },
            code,
        }
        .into());
    }
    Ok(())
}
