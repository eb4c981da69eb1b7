//! The image build that installs Features: a build context with one folder
//! per Feature and a Dockerfile with one `COPY` + `RUN` per Feature in
//! install order, so that the engine's layer cache rebuilds from the first
//! changed Feature on and keeps the layers before it.

use std::path::{Path, PathBuf};

use crate::options::{env_file, sh_quote};
use crate::Feature;

/// Who the install scripts are told the users are.
#[derive(Debug, Clone)]
pub struct Users {
    /// The base image's own user (`Config.User`, else root), restored at
    /// the end.
    pub image_user: String,
    pub container_user: String,
    pub remote_user: String,
}

/// Where Feature files are put in the image while they install.
const STAGE: &str = "/tmp/den-features";

/// The wrapper each Feature's install runs through: the option and user
/// variables, the users' homes from the image's passwd, then install.sh.
fn wrapper(n: usize, f: &Feature) -> String {
    let label = match &f.json.version {
        Some(v) => format!("{} ({v})", f.user_id),
        None => f.user_id.clone(),
    };
    format!(
        r#"#!/bin/sh
set -e
cd {STAGE}/{n}
trap 'code=$?; [ "$code" = 0 ] || echo "den: Feature {label_q} failed: install.sh exited with $code" >&2' EXIT
echo "den: installing Feature {label_q}"
home_of() {{ (getent passwd "$1" 2>/dev/null || grep "^$1:" /etc/passwd) | head -n 1 | cut -d: -f6; }}
set -a
. ./devcontainer-features.builtin.env
. ./devcontainer-features.env
_CONTAINER_USER_HOME=$(home_of "$_CONTAINER_USER")
_REMOTE_USER_HOME=$(home_of "$_REMOTE_USER")
set +a
chmod +x ./install.sh
case "$(head -c 2 ./install.sh)" in
  '#!') ./install.sh ;;
  *) sh ./install.sh ;;
esac
"#,
        // Shown in the build's output: only characters that mean nothing
        // to the shell (ids and versions come from Feature files).
        label_q = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._:/@+-() ".contains(c) { c } else { '_' })
            .collect::<String>()
    )
}

/// Copies a folder (links as links), as a Feature goes into a build
/// context; den's dotfiles copy a plain folder with it too.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Writes one of den's files into a Feature's copy, in place of whatever
/// the Feature has there: a link of that name is replaced, never written
/// through to the file it points to.
fn put(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(text.as_bytes())
}

/// A value in a Dockerfile `ENV K="v"` line. `$NAME`, `${NAME}` and the
/// builder's own forms (`${NAME:-word}`, `${NAME%pattern}`, …) stay for the
/// builder to expand (`/opt/x/bin:${PATH}`, as Features expect); any other
/// `${…}` (one den did not substitute, such as `${containerEnv:X}`, or an
/// unclosed one) is kept as literal text, which the builder would
/// otherwise refuse ("unsupported modifier").
fn env_value(v: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in v.char_indices() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '$' if v[i + 1..].starts_with('{') && !builder_expands(&v[i + 2..]) => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether the text after `${` is a variable reference the Dockerfile
/// builder reads: a name, then `}` or one of its modifiers, and a `}`.
fn builder_expands(after: &str) -> bool {
    let name = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    if name == 0 || after.as_bytes()[0].is_ascii_digit() {
        return false;
    }
    let rest = &after[name..];
    let modifier = rest.starts_with('}')
        || [":-", ":+", ":?"].iter().any(|m| rest.starts_with(m))
        || rest.starts_with(['-', '+', '?', '#', '%', '/']);
    modifier && rest.contains('}')
}

/// Writes the build context into `dir` (made empty first) and returns the
/// Dockerfile's path. `base` is the image the Features go on.
pub fn write_context(dir: &Path, base: &str, features: &[Feature], users: &Users) -> std::io::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    if base.is_empty() || base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{base}` is not an image reference"),
        ));
    }
    let mut df = format!("FROM {base}\nUSER root\n");
    for (n, f) in features.iter().enumerate() {
        let folder = dir.join(n.to_string());
        copy_dir(&f.fetched.dir, &folder)?;
        put(&folder.join("devcontainer-features.env"), &env_file(&f.options))?;
        put(
            &folder.join("devcontainer-features.builtin.env"),
            &format!(
                "_CONTAINER_USER={}\n_REMOTE_USER={}\n",
                sh_quote(&users.container_user),
                sh_quote(&users.remote_user)
            ),
        )?;
        put(&folder.join("den-feature-install.sh"), &wrapper(n, f))?;
        // Before the Feature's own install, so it and every later one see
        // them (a PATH entry, a home folder variable).
        for (k, v) in &f.json.container_env {
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                df.push_str(&format!("ENV {k}={}\n", env_value(v)));
            }
        }
        df.push_str(&format!("COPY {n}/ {STAGE}/{n}/\n"));
        // den's files are private on the host (umask 077); in the image
        // the Feature's files are readable, as their install may copy them
        // for other users.
        df.push_str(&format!(
            "RUN chmod -R a+rX {STAGE}/{n} && sh {STAGE}/{n}/den-feature-install.sh && rm -rf {STAGE}/{n}\n"
        ));
    }
    df.push_str(&format!("USER {}\n", if users.image_user.is_empty() { "root" } else { &users.image_user }));
    let path = dir.join("Dockerfile");
    std::fs::write(&path, df)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile_feature(dir: &Path) -> Feature {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("install.sh"), "#!/bin/sh\n").unwrap();
        let json: crate::FeatureJson =
            serde_json::from_value(serde_json::json!({"id": "x", "version": "1.0$(touch /pwned)`id`\"'"})).unwrap();
        Feature {
            user_id: "./x;$(reboot)".into(),
            source: crate::Source::Local(dir.to_path_buf()),
            fetched: crate::Fetched { dir: dir.to_path_buf(), digest: "sha256:0".into(), manifest_digest: None },
            json,
            options: Default::default(),
            needed_by: None,
        }
    }

    #[test]
    fn feature_ids_and_versions_cannot_reach_the_shell() {
        let d = tempfile::tempdir().unwrap();
        let w = wrapper(0, &hostile_feature(&d.path().join("f")));
        for bad in ["$(", "`", ";$", "\"'"] {
            assert!(!w.lines().filter(|l| l.contains("den: ")).any(|l| l.contains(bad)), "{bad} in:\n{w}");
        }
        let users = Users { image_user: String::new(), container_user: "root".into(), remote_user: "root".into() };
        let err = write_context(&d.path().join("ctx"), "img\nRUN evil", &[], &users).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_failing_feature_is_named_with_its_version() {
        let d = tempfile::tempdir().unwrap();
        let mut f = hostile_feature(&d.path().join("f"));
        f.user_id = "ghcr.io/devcontainers/features/github-cli:1".into();
        f.json.version = Some("1.1.0".into());
        let w = wrapper(0, &f);
        assert!(w.contains("den: Feature ghcr.io/devcontainers/features/github-cli:1 (1.1.0) failed"), "{w}");
    }

    #[test]
    fn den_s_files_replace_links_of_their_name() {
        let d = tempfile::tempdir().unwrap();
        let f = hostile_feature(&d.path().join("f"));
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("f/devcontainer-features.env")).unwrap();
        let users = Users { image_user: String::new(), container_user: "root".into(), remote_user: "root".into() };
        write_context(&d.path().join("ctx"), "img", &[f], &users).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(std::fs::symlink_metadata(d.path().join("ctx/0/devcontainer-features.env")).unwrap().is_file());
    }

    #[test]
    fn env_values_keep_variables_and_escape_quotes() {
        assert_eq!(env_value("/opt/x/bin:${PATH}"), "\"/opt/x/bin:${PATH}\"");
        assert_eq!(env_value("a\"b\\c"), "\"a\\\"b\\\\c\"");
        // What den did not substitute is literal text for the builder.
        assert_eq!(env_value("${localEnv:X}/a:${PATH}"), "\"\\${localEnv:X}/a:${PATH}\"");
        assert_eq!(env_value("${containerEnv:HOME}"), "\"\\${containerEnv:HOME}\"");
        assert_eq!(
            env_value("${X:-d} ${X%.so} $HOME ${ ${} ${1} ${open"),
            "\"${X:-d} ${X%.so} $HOME \\${ \\${} \\${1} \\${open\""
        );
    }
}
