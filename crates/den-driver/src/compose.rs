//! docker compose, v2 (`docker compose`) or v1 (`docker-compose`), driven
//! the same way: always with an explicit project name, project folder and
//! file list, so that nothing depends on the current folder, the
//! top-level `name:` (v1 has none) or `compose ls` (v1 has none either).

use std::path::{Path, PathBuf};

use den_process::Cmd;
use serde_json::Value;

use crate::{Docker, DriverError};

/// The label compose puts on every container, network and volume of a
/// project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The label compose puts on a service's containers.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";

/// A compose CLI.
#[derive(Debug, Clone)]
pub struct Compose {
    /// `["docker", "compose"]` or `["docker-compose"]` (or a given path).
    program: Vec<String>,
    env: Vec<(String, String)>,
    /// What `version --short` said (a CLI given by path; empty for one
    /// found by looking).
    pub version: String,
}

/// An executable of that name in PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// One compose application as den runs it.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// Where relative paths and `.env` are read from: the folder of the
    /// first compose file, as compose itself takes it.
    pub directory: PathBuf,
    pub files: Vec<PathBuf>,
}

impl Compose {
    /// The compose CLI to use: `explicit` when given (a path, or
    /// `docker compose`), else the docker CLI's `compose` plugin when one
    /// is installed, else `docker-compose` on PATH. Found by looking, not
    /// by running (v1 is a Python program: each start costs a third of a
    /// second); an explicit one is asked for its version.
    pub fn detect(docker: &Docker, explicit: Option<&str>) -> Result<Compose, DriverError> {
        let env: Vec<(String, String)> = docker.env().to_vec();
        if let Some(e) = explicit.map(str::trim).filter(|e| !e.is_empty()) {
            let program: Vec<String> = e.split_whitespace().map(String::from).collect();
            let c = Cmd::new(&program[0]).args(&program[1..]).args(["version", "--short"]);
            let c = env.iter().fold(c, |c, (k, v)| c.env(k, v));
            return match c.output() {
                Ok(out) => Ok(Compose { program, env, version: out.stdout.trim().trim_start_matches('v').to_string() }),
                Err(err) => Err(DriverError::ComposeMissing(format!(
                    "this configuration uses docker compose, and no compose CLI answered at `{e}` (the provider option COMPOSE_PATH): {}",
                    err.stderr().trim().lines().last().unwrap_or("it could not be run")
                ))),
            };
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let config = std::env::var_os("DOCKER_CONFIG").map(PathBuf::from).or_else(|| home.map(|h| h.join(".docker")));
        let mut plugin_dirs: Vec<PathBuf> = config.into_iter().map(|c| c.join("cli-plugins")).collect();
        for d in [
            "/usr/local/lib/docker/cli-plugins",
            "/usr/local/libexec/docker/cli-plugins",
            "/usr/lib/docker/cli-plugins",
            "/usr/libexec/docker/cli-plugins",
        ] {
            plugin_dirs.push(PathBuf::from(d));
        }
        let docker_is_docker = Path::new(docker.path()).file_name().is_some_and(|n| n == "docker");
        if docker_is_docker && plugin_dirs.iter().any(|d| d.join("docker-compose").is_file()) {
            return Ok(Compose {
                program: vec![docker.path().to_string(), "compose".into()],
                env,
                version: String::new(),
            });
        }
        if let Some(v1) = on_path("docker-compose") {
            return Ok(Compose { program: vec![v1.display().to_string()], env, version: String::new() });
        }
        Err(DriverError::ComposeMissing(format!(
            "this configuration uses docker compose, and there is no compose CLI (looked for the docker compose plugin in {} and for docker-compose on PATH); install one, or name it with the provider option COMPOSE_PATH",
            plugin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )))
    }

    /// The command for the project, with every file given.
    pub fn cmd(&self, p: &Project, extra_files: &[PathBuf]) -> Cmd {
        let mut c = Cmd::new(&self.program[0]).args(&self.program[1..]);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c = c.arg("-p").arg(&p.name).arg("--project-directory").arg(&p.directory);
        for f in p.files.iter().chain(extra_files) {
            c = c.arg("-f").arg(f);
        }
        c
    }

    /// The project's configuration as compose reads it (files merged,
    /// `.env` and `${VAR}` substituted), as JSON.
    pub fn config(&self, p: &Project) -> Result<Value, DriverError> {
        let c = self.cmd(p, &[]).arg("config");
        let out = c.output().map_err(DriverError::Command)?;
        serde_norway::from_str::<serde_norway::Value>(&out.stdout)
            .map(|v| to_json(&v))
            .map_err(|e| DriverError::Parse { command: c.display(), message: e.to_string() })
    }

    /// How the program is called, for messages.
    pub fn display(&self) -> String {
        match self.version.as_str() {
            "" => self.program.join(" "),
            v => format!("{} {v}", self.program.join(" ")),
        }
    }
}

/// Compose YAML as JSON. Tags are read past (`ports: !reset []` is
/// `ports: []`: compose 2.24 added `!reset` and `!override`; see
/// [`replaces`] for what they mean), and keys that are numbers or booleans
/// become text; other keys (null, lists) are left out.
pub fn to_json(v: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let key = match untag(k) {
                        Y::String(s) => s.clone(),
                        Y::Number(n) => n.to_string(),
                        Y::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((key, to_json(v)))
                })
                .collect(),
        ),
        Y::Tagged(t) => to_json(&t.value),
    }
}

/// The value under its tags.
pub fn untag(mut v: &serde_norway::Value) -> &serde_norway::Value {
    while let serde_norway::Value::Tagged(t) = v {
        v = &t.value;
    }
    v
}

/// Whether a value in a later file takes the place of what the earlier
/// files gave (`!reset`, `!override`) instead of being merged with it.
pub fn replaces(v: &serde_norway::Value) -> bool {
    matches!(v, serde_norway::Value::Tagged(t) if t.tag == "reset" || t.tag == "override")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_past() {
        let y: serde_norway::Value = serde_norway::from_str(
            "services:\n  app:\n    ports: !reset []\n    volumes: !override ['a:/b']\n    image: !custom x\n    labels: {8080: web, true: yes}\n",
        )
        .unwrap();
        assert_eq!(
            to_json(&y),
            serde_json::json!({"services": {"app": {"ports": [], "volumes": ["a:/b"], "image": "x", "labels": {"8080": "web", "true": "yes"}}}})
        );
        let app = &y["services"]["app"];
        assert!(replaces(&app["ports"]) && replaces(&app["volumes"]));
        assert!(!replaces(&app["image"]) && !replaces(&app["labels"]));
    }

    #[test]
    fn the_command_names_project_folder_and_files() {
        let c = Compose { program: vec!["docker-compose".into()], env: vec![], version: "1.29.2".into() };
        let p = Project {
            name: "den-app-1a2b".into(),
            directory: "/p/.devcontainer".into(),
            files: vec!["/p/.devcontainer/docker-compose.yml".into()],
        };
        assert_eq!(
            c.cmd(&p, &["/home/den/override.yml".into()]).arg("up").display(),
            "docker-compose -p den-app-1a2b --project-directory /p/.devcontainer -f /p/.devcontainer/docker-compose.yml -f /home/den/override.yml up"
        );
    }
}
