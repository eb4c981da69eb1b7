//! Dotfiles: a repository (or folder) cloned on this machine with the
//! user's own git credentials, sent into the workspace as the remote user's
//! `~/dotfiles` through den's own SSH path (so it works on every provider),
//! and installed once per container: the named script, else the first of
//! the usual install scripts, else its `.*` files linked into the home.

use std::path::Path;
use std::process::Command;

use den_workspace::{Den, WorkspaceError};

use crate::{Ctx, OpsError, Progress, Result};

/// The scripts looked for, in order, when none is named.
const SCRIPTS: &[&str] =
    &["install.sh", "install", "bootstrap.sh", "bootstrap", "script/bootstrap", "setup.sh", "setup", "script/setup"];

/// The dotfiles flags of `den up` (each else the context's option).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub url: Option<String>,
    pub script: Option<String>,
    pub env: Vec<(String, String)>,
}

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct Dotfiles {
    pub source: String,
    pub script: Option<String>,
    pub env: Vec<(String, String)>,
}

/// The flags, else the context's DOTFILES_URL / DOTFILES_SCRIPT options.
pub fn wanted(den: &Den, flags: &Flags) -> Result<Option<Dotfiles>> {
    let opts = den_workspace::context::options(den, &den.context)?;
    let pick =
        |v: &Option<String>, key: &str| v.clone().or_else(|| opts.get(key).cloned()).filter(|s| !s.trim().is_empty());
    Ok(pick(&flags.url, "DOTFILES_URL").map(|source| Dotfiles {
        source,
        script: pick(&flags.script, "DOTFILES_SCRIPT"),
        env: flags.env.clone(),
    }))
}

/// Clones the dotfiles here and installs them in workspace `id`; their
/// output goes to `r` as `dotfiles` lines. A failing install is a
/// [`WorkspaceError::HookFailed`] with its exit code.
pub fn install(ctx: &Ctx, id: &str, d: &Dotfiles, r: &mut dyn Progress) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("den-dotfiles-")
        .tempdir()
        .map_err(OpsError::io("making a temporary folder"))?;
    let clone = tmp.path().join("dotfiles");
    r.output("dotfiles", &format!("cloning {}", den_source::redact(&d.source)));
    fetch(&d.source, &clone)?;
    let script = choose_script(&clone, d.script.as_deref())?;
    let bytes = pack(&clone)?;
    let remote = remote_script(&exports(&d.env)?, script.as_deref());
    let argv = ["sh", "-c", remote.as_str()];
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(bytes));
    let out = crate::ssh::exec(ctx, id, &argv, Some(input), &mut |_, line| r.output("dotfiles", line))?;
    if out.code == 0 {
        return Ok(());
    }
    let hook = match &script {
        Some(s) => format!("installing the dotfiles ({s})"),
        None => "installing the dotfiles (linking them)".into(),
    };
    Err(WorkspaceError::HookFailed { hook, code: out.code }.into())
}

/// The dotfiles at `source` into `clone`: a repository is cloned, a plain
/// local folder copied.
fn fetch(source: &str, clone: &Path) -> Result<()> {
    let shallow = |g: &den_source::GitSource| {
        den_source::clone(g, den_source::Strategy::Shallow, false, clone, &mut |_| {}).map_err(OpsError::Dotfiles)
    };
    match den_source::parse(source, &|p| p.exists()).map_err(OpsError::BadInput)? {
        den_source::Spec::Local(p) => {
            let p = std::fs::canonicalize(&p).map_err(OpsError::io(format!("reading {}", p.display())))?;
            let is_repo = Command::new("git")
                .arg("-C")
                .arg(&p)
                .args(["rev-parse", "--git-dir"])
                .output()
                .is_ok_and(|o| o.status.success());
            if is_repo {
                shallow(&den_source::GitSource { url: format!("file://{}", p.display()), ..Default::default() })?;
            } else {
                den_features::layers::copy_dir(&p, clone).map_err(OpsError::io(format!("copying {}", p.display())))?;
            }
        }
        den_source::Spec::Git(g) => {
            shallow(&g)?;
        }
        den_source::Spec::Image(_) => {
            return Err(OpsError::BadInput(format!("`{source}` is not a git repository or a folder (--dotfiles)")))
        }
    }
    Ok(())
}

/// The script to run in the clone, checked on this side.
fn choose_script(dir: &Path, named: Option<&str>) -> Result<Option<String>> {
    if let Some(n) = named {
        let n = n.trim_start_matches("./");
        if !dir.join(n).is_file() {
            return Err(OpsError::BadInput(format!("the dotfiles have no script `{n}` (--dotfiles-script)")));
        }
        return Ok(Some(n.to_string()));
    }
    Ok(SCRIPTS.iter().find(|s| dir.join(s).is_file()).map(|s| s.to_string()))
}

/// The clone as a tar stream (links kept as links).
fn pack(dir: &Path) -> Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    archive.append_dir_all(".", dir).map_err(OpsError::io("packing the dotfiles"))?;
    archive.into_inner().map_err(OpsError::io("packing the dotfiles"))
}

/// `export` lines for the script's environment (`--dotfiles-script-env`).
fn exports(env: &[(String, String)]) -> Result<String> {
    let mut exports = String::new();
    for (k, v) in env {
        let name_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(OpsError::BadInput(format!("`{k}` is not a variable name (--dotfiles-script-env)")));
        }
        exports.push_str(&format!("export {k}={}\n", den_process::shell_quote(v)));
    }
    Ok(exports)
}

/// What runs in the workspace: unpack stdin into `~/dotfiles`, then the
/// script (or the links), once per container.
fn remote_script(exports: &str, script: Option<&str>) -> String {
    let run = match script {
        Some(s) => {
            let q = den_process::shell_quote(&format!("./{s}"));
            format!("chmod +x {q} 2>/dev/null || true\n{q}\n")
        }
        None => "for f in .[!.]* ..?*; do [ -e \"$f\" ] && [ \"$f\" != .git ] && ln -sfn \"$HOME/dotfiles/$f\" \"$HOME/$f\"; done\necho \"linked the dotfiles into $HOME\"\n".to_string(),
    };
    format!(
        "set -e\nmarker=\"$HOME/.den-dotfiles-installed\"\nif [ -e \"$marker\" ]; then cat >/dev/null; echo 'already installed in this container'; exit 0; fi\nrm -rf \"$HOME/.dotfiles.den-new\"\nmkdir -p \"$HOME/.dotfiles.den-new\"\ntar -x -C \"$HOME/.dotfiles.den-new\"\nrm -rf \"$HOME/dotfiles\"\nmv \"$HOME/.dotfiles.den-new\" \"$HOME/dotfiles\"\ncd \"$HOME/dotfiles\"\n{exports}{run}touch \"$marker\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_checked() {
        let env = |k: &str| vec![(k.to_string(), "a b".to_string())];
        assert_eq!(exports(&env("_X1")).unwrap(), "export _X1='a b'\n");
        for bad in ["1X", "A-B", "", "A B"] {
            assert!(exports(&env(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_named_script_must_be_there() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("setup.sh"), "").unwrap();
        assert_eq!(choose_script(d.path(), None).unwrap().as_deref(), Some("setup.sh"));
        assert_eq!(choose_script(d.path(), Some("./setup.sh")).unwrap().as_deref(), Some("setup.sh"));
        assert!(choose_script(d.path(), Some("install.sh")).is_err());
    }
}
