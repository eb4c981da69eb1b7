//! The workspace as an SSH host on the client: its keys, its pinned host
//! key, and the `Host ID.den` block in the user's ssh config with the
//! `ProxyCommand` that reaches it.

use std::path::{Path, PathBuf};

use crate::record::WorkspaceRecord;
use crate::{Den, Result, WorkspaceError};

/// The host name of a workspace in ssh configs and known_hosts.
pub fn host_alias(id: &str) -> String {
    format!("{id}.den")
}

pub fn client_key_path(den: &Den, id: &str) -> PathBuf {
    den.home.workspace_dir(&den.context, id).join("id_ed25519")
}

/// A path as an ssh_config argument (`IdentityFile`, `UserKnownHostsFile`):
/// in double quotes, `%` doubled (ssh's token character). Refused when ssh
/// could not read it back as written: a line break ends the option, and
/// `${` starts an environment variable there, with no way to escape it.
fn config_path(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains(['\n', '\r']) || s.contains("${") {
        return Err(WorkspaceError::BadInput(format!(
            "{s:?} cannot be written into an ssh config (it holds a line break or `${{`); choose another DEN_HOME"
        )));
    }
    Ok(format!("\"{}\"", s.replace('%', "%%").replace('\\', "\\\\").replace('"', "\\\"")))
}

/// One word of a `ProxyCommand`. OpenSSH expands its `%` tokens and then
/// runs the line with `/bin/sh -c`, so the word is quoted for the shell (a
/// `$(…)` or backtick in a path stays text) and its `%` doubled.
fn proxy_word(s: &str) -> Result<String> {
    if s.contains(['\n', '\r']) {
        return Err(WorkspaceError::BadInput(format!(
            "{s:?} cannot be written into an ssh config ProxyCommand (it holds a line break)"
        )));
    }
    Ok(den_process::shell_quote(s).replace('%', "%%"))
}

/// The `ProxyCommand` for a workspace: this den binary, with the same
/// DEN_HOME when one was chosen.
pub fn proxy_command(den: &Den, id: &str) -> Result<String> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "den".into());
    let mut words = vec![proxy_word(&exe)?];
    if den.home.is_chosen() {
        words.push("--home".into());
        words.push(proxy_word(&den.home.root().display().to_string())?);
    }
    if den.context != crate::context::DEFAULT_CONTEXT {
        words.push("--context".into());
        words.push(proxy_word(&den.context)?);
    }
    words.extend(["ssh".into(), "--stdio".into(), proxy_word(id)?]);
    Ok(words.join(" "))
}

/// The login user as an ssh_config `User`: it comes from the config
/// (`remoteUser`), so anything that could end the line or the word is
/// refused rather than written.
fn config_user(user: &str) -> Result<String> {
    if user.is_empty()
        || user.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%' | '#'))
    {
        return Err(WorkspaceError::BadInput(format!(
            "remote user {user:?} cannot be written into an ssh config; use a plain user name"
        )));
    }
    Ok(user.to_string())
}

/// Pins the host key and writes the `Host ID.den` block.
pub(crate) fn publish(
    den: &Den,
    rec: &mut WorkspaceRecord,
    host_key: &str,
    user: &str,
    ssh_config: Option<&Path>,
) -> Result<()> {
    let alias = host_alias(&rec.id);
    den_state::ssh_config::pin_host_key(&den.home.known_hosts(), &alias, host_key)?;
    let Some(config) = ssh_config else { return Ok(()) };
    let body = format!(
        "Host {alias}\n  HostName {alias}\n  User {}\n  ProxyCommand {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  Ciphers {}\n",
        config_user(user)?,
        proxy_command(den, &rec.id)?,
        config_path(&client_key_path(den, &rec.id))?,
        config_path(&den.home.known_hosts())?,
        den_ssh::OPENSSH_CIPHERS,
    );
    den_state::ssh_config::upsert_block(config, &rec.id, &body)?;
    if rec.ssh_config.as_deref() != Some(config) {
        if let Some(old) = rec.ssh_config.as_deref() {
            den_state::ssh_config::remove_block(old, &rec.id)?;
        }
        rec.ssh_config = Some(config.to_path_buf());
        rec.save(den)?;
    }
    Ok(())
}

pub(crate) fn unpublish(den: &Den, id: &str, ssh_config: Option<&Path>) -> Result<()> {
    den_state::ssh_config::unpin_host_key(&den.home.known_hosts(), &host_alias(id))?;
    if let Some(c) = ssh_config {
        den_state::ssh_config::remove_block(c, id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What OpenSSH does with a ProxyCommand: `%%` becomes `%`, then
    /// `/bin/sh -c "exec LINE"`. Here the program is printf, so the words
    /// the shell made come back one per line.
    fn as_ssh_runs_it(words: &[String]) -> Vec<String> {
        let words = words.join(" ").replace("%%", "%");
        let line = format!("printf '%s\\n' {words}");
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(format!("exec {line}")).output().unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn proxy_command_words_survive_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let hostile = [
            format!("/h/$(touch {})", marker.display()),
            format!("/h/`touch {}`", marker.display()),
            "/with space/a'b\"c".to_string(),
            "/pct/%h%%p".to_string(),
            "/back\\slash/$HOME;ls".to_string(),
        ];
        let words: Vec<String> = hostile.iter().map(|h| proxy_word(h).unwrap()).collect();
        assert_eq!(as_ssh_runs_it(&words), hostile.to_vec());
        assert!(!marker.exists(), "a path ran as a command");
        assert!(proxy_word("a\nb").is_err());
    }

    #[test]
    fn ssh_config_paths_and_users() {
        assert_eq!(config_path(Path::new("/a b/%x\"y")).unwrap(), r#""/a b/%%x\"y""#);
        assert!(config_path(Path::new("/a/${HOME}")).is_err());
        assert!(config_path(Path::new("/a\nProxyCommand x")).is_err());
        assert_eq!(config_user("dev").unwrap(), "dev");
        for bad in ["dev\n  ProxyCommand touch /tmp/x", "a b", "", "x\"y", "%u"] {
            assert!(config_user(bad).is_err(), "{bad:?}");
        }
    }
}
