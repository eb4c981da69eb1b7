//! docker compose, v2 (`docker compose`) or v1 (`docker-compose`), driven
//! the same way: always with an explicit project name, project folder and
//! file list, so that nothing depends on the current folder, the
//! top-level `name:` (v1 has none) or `compose ls` (v1 has none either).

use std::path::PathBuf;

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
    /// What `version --short` said.
    pub version: String,
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
    /// The compose CLI to use: `explicit` when given (a path to a v1-style
    /// binary, or `docker compose`), else the docker CLI's `compose`
    /// plugin when it has one, else `docker-compose`.
    pub fn detect(docker: &Docker, explicit: Option<&str>) -> Result<Compose, DriverError> {
        let env: Vec<(String, String)> = docker.env().to_vec();
        let mut candidates: Vec<Vec<String>> = Vec::new();
        match explicit.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => candidates.push(e.split_whitespace().map(String::from).collect()),
            None => {
                candidates.push(vec![docker.path().to_string(), "compose".into()]);
                candidates.push(vec!["docker-compose".into()]);
            }
        }
        for program in &candidates {
            let c = Cmd::new(&program[0]).args(&program[1..]).args(["version", "--short"]);
            let c = env.iter().fold(c, |c, (k, v)| c.env(k, v));
            if let Ok(out) = c.output() {
                let version = out.stdout.trim().trim_start_matches('v').to_string();
                if !version.is_empty() && version.chars().next().is_some_and(|ch| ch.is_ascii_digit()) {
                    return Ok(Compose { program: program.clone(), env, version });
                }
            }
        }
        let looked: Vec<String> = candidates.iter().map(|p| format!("`{}`", p.join(" "))).collect();
        Err(DriverError::ComposeMissing(format!(
            "this configuration uses docker compose, and no compose CLI answered (looked for {}); install the compose plugin or docker-compose, or name one with the provider option COMPOSE_PATH",
            looked.join(" and ")
        )))
    }

    /// Version 1 (`docker-compose` 1.x).
    pub fn is_v1(&self) -> bool {
        self.version.starts_with("1.")
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
        serde_norway::from_str::<Value>(&out.stdout)
            .map_err(|e| DriverError::Parse { command: c.display(), message: e.to_string() })
    }

    /// `display`: how the program is called, for messages.
    pub fn display(&self) -> String {
        format!("{} {}", self.program.join(" "), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(c.is_v1());
    }
}
