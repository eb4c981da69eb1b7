//! A docker-compatible CLI (docker, podman) as den's container driver.

use std::collections::BTreeMap;
use std::path::PathBuf;

use den_process::{Cmd, ProcessError};
use serde::Deserialize;

use crate::DriverError;

/// How to reach the engine: the CLI and its environment.
#[derive(Debug, Clone)]
pub struct Docker {
    pub path: String,
    /// Extra environment for the CLI (e.g. DOCKER_HOST); empty values are
    /// left out so the CLI's own defaults apply.
    pub env: Vec<(String, String)>,
}

/// The parts of `docker inspect` (container) den reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    pub config: ContainerConfig,
    #[serde(default)]
    pub image: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub exit_code: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub labels: Option<BTreeMap<String, String>>,
    pub env: Option<Vec<String>>,
    pub user: String,
    pub image: String,
}

impl Container {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// The parts of `docker image inspect` den reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub config: ImageConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    pub labels: Option<BTreeMap<String, String>>,
    pub user: String,
    pub env: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

impl Image {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// What `docker build` gets.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    pub tag: String,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    pub cache_from: Vec<String>,
    pub options: Vec<String>,
    pub labels: Vec<(String, String)>,
    /// Where the build output goes.
    pub log: PathBuf,
}

/// What `docker run` gets.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub name: String,
    pub image: String,
    pub labels: Vec<(String, String)>,
    pub mounts: Vec<String>,
    pub env: Vec<(String, String)>,
    pub init: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub security_opt: Vec<String>,
    pub user: Option<String>,
    pub ports: Vec<String>,
    /// Passed as they are, after den's own flags (so they can override).
    pub run_args: Vec<String>,
    /// `Some(script)`: replace the entrypoint with `/bin/sh -c script`
    /// (keep-alive); `None`: the image's own entrypoint and command.
    pub keep_alive: Option<String>,
}

impl Docker {
    pub fn new(path: impl Into<String>, env: Vec<(String, String)>) -> Self {
        Docker { path: path.into(), env: env.into_iter().filter(|(_, v)| !v.is_empty()).collect() }
    }

    /// A command for the CLI with den's environment.
    pub fn cmd(&self) -> Cmd {
        let mut c = Cmd::new(&self.path);
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }

    fn host(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "DOCKER_HOST")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
    }

    /// Turns CLI failures that mean "no engine" into a clear error.
    fn classify(&self, e: ProcessError) -> DriverError {
        if e.is_not_found() {
            return DriverError::CliMissing(self.path.clone());
        }
        let s = e.stderr();
        if s.contains("Cannot connect to the Docker daemon")
            || s.contains("error during connect")
            || s.contains("Is the docker daemon running")
            || s.contains("connect: connection refused")
            || s.contains("connect: no such file or directory")
        {
            return DriverError::EngineUnreachable {
                host: self.host(),
                detail: s.trim().lines().last().unwrap_or_default().to_string(),
            };
        }
        DriverError::Command(e)
    }

    pub fn run_cmd(&self, c: Cmd) -> Result<String, DriverError> {
        c.output().map(|o| o.stdout).map_err(|e| self.classify(e))
    }

    /// Checks the engine answers.
    pub fn ping(&self) -> Result<(), DriverError> {
        self.run_cmd(self.cmd().args(["version", "--format", "{{.Server.Version}}"])).map(|_| ())
    }

    /// `docker inspect` of one container by name or id; `None` if absent.
    pub fn inspect_container(&self, name: &str) -> Result<Option<Container>, DriverError> {
        let c = self.cmd().args(["inspect", "--type", "container", name]);
        match c.output() {
            Ok(o) => {
                let mut list: Vec<Container> = serde_json::from_str(&o.stdout)
                    .map_err(|e| DriverError::Parse { command: c.display(), message: e.to_string() })?;
                Ok(list.pop())
            }
            Err(e) if is_no_such(&e) => Ok(None),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// `docker image inspect`; `None` if the image is not present locally.
    pub fn inspect_image(&self, image: &str) -> Result<Option<Image>, DriverError> {
        let c = self.cmd().args(["image", "inspect", image]);
        match c.output() {
            Ok(o) => {
                let mut list: Vec<Image> = serde_json::from_str(&o.stdout)
                    .map_err(|e| DriverError::Parse { command: c.display(), message: e.to_string() })?;
                Ok(list.pop())
            }
            Err(e) if is_no_such(&e) => Ok(None),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Pulls an image; `false` when the registry does not have it.
    pub fn pull(&self, image: &str) -> Result<bool, DriverError> {
        match self.cmd().args(["pull", "-q", image]).output() {
            Ok(_) => Ok(true),
            Err(e) => match self.classify(e) {
                DriverError::Command(e)
                    if ["not found", "manifest unknown", "does not exist", "no such host"]
                        .iter()
                        .any(|m| e.stderr().contains(m)) =>
                {
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), DriverError> {
        self.run_cmd(self.cmd().args(["tag", source, target])).map(|_| ())
    }

    /// `docker push IMAGE`.
    pub fn push(&self, image: &str) -> Result<(), DriverError> {
        self.run_cmd(self.cmd().args(["push", image])).map(|_| ())
    }

    /// The image, pulled only when it is not present locally.
    pub fn ensure_image(&self, image: &str) -> Result<Image, DriverError> {
        if let Some(i) = self.inspect_image(image)? {
            return Ok(i);
        }
        match self.cmd().args(["pull", image]).output() {
            Ok(_) => {}
            Err(e) => {
                return Err(match self.classify(e) {
                    DriverError::Command(e) => {
                        DriverError::ImageMissing { image: image.into(), detail: e.stderr().trim().to_string() }
                    }
                    other => other,
                })
            }
        }
        self.inspect_image(image)?.ok_or_else(|| DriverError::ImageMissing {
            image: image.into(),
            detail: "the pull succeeded but the image is not there".into(),
        })
    }

    /// Builds an image; each line of the builder's output goes to
    /// `on_line` as it comes, and all of it to the spec's log file.
    pub fn build(&self, spec: &BuildSpec, on_line: &mut dyn FnMut(&str)) -> Result<(), DriverError> {
        // --force-rm: the legacy builder otherwise keeps the container of a
        // failed step (podman's default is the same as this).
        let mut c = self.cmd().args(["build", "--force-rm", "-f"]).arg(&spec.dockerfile).arg("-t").arg(&spec.tag);
        for (k, v) in &spec.args {
            c = c.arg("--build-arg").arg(format!("{k}={v}"));
        }
        if let Some(t) = &spec.target {
            c = c.arg("--target").arg(t);
        }
        for cf in &spec.cache_from {
            c = c.arg("--cache-from").arg(cf);
        }
        for (k, v) in &spec.labels {
            c = c.arg("--label").arg(format!("{k}={v}"));
        }
        c = c.args(&spec.options).arg(&spec.context);
        let (log, failure) = self.stream(&c, on_line)?;
        let _ = std::fs::write(&spec.log, &log);
        let Some(failure) = failure else { return Ok(()) };
        match self.classify(failure) {
            DriverError::Command(_) => {
                let tail = den_process::last_lines(&log, 15);
                Err(DriverError::BuildFailed { image: spec.tag.clone(), tail, log: spec.log.display().to_string() })
            }
            other => Err(other),
        }
    }

    /// Runs a command, passing each line of its output (stdout as it
    /// comes, then stderr) to `on_line`; returns the whole output as a log
    /// and, when it failed, its error.
    pub fn stream(
        &self,
        c: &Cmd,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(String, Option<ProcessError>), DriverError> {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut log = format!("$ {}\n", c.display());
        let mut child = c.spawn(Stdio::null(), Stdio::piped(), Stdio::piped()).map_err(|e| self.classify(e))?;
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = child.stdout.take().expect("piped");
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            on_line(&line);
            log.push_str(&line);
            log.push('\n');
        }
        let status = child.wait().map_err(|e| self.classify(c.spawn_error(e)))?;
        let stderr = strip_ansi(&errors.join().unwrap_or_default());
        for line in stderr.lines() {
            on_line(line);
        }
        log.push_str(&stderr);
        Ok((log, (!status.success()).then(|| c.failed(status, stderr))))
    }

    /// The environment den gives the CLI (DOCKER_HOST and the like).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The CLI's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Turns a failed command into den's error for it (no engine, no CLI,
    /// or the command and its stderr).
    pub fn error(&self, e: ProcessError) -> DriverError {
        self.classify(e)
    }

    /// The `docker run` command line for `spec` (detached).
    pub fn run_command(&self, spec: &RunSpec) -> Cmd {
        let mut c = self.cmd().args(["run", "-d", "--name", &spec.name]);
        for (k, v) in &spec.labels {
            c = c.arg("--label").arg(format!("{k}={v}"));
        }
        for m in &spec.mounts {
            c = c.arg("--mount").arg(m);
        }
        for (k, v) in &spec.env {
            c = c.arg("-e").arg(format!("{k}={v}"));
        }
        if spec.init {
            c = c.arg("--init");
        }
        if spec.privileged {
            c = c.arg("--privileged");
        }
        for cap in &spec.cap_add {
            c = c.arg("--cap-add").arg(cap);
        }
        for so in &spec.security_opt {
            c = c.arg("--security-opt").arg(so);
        }
        if let Some(u) = &spec.user {
            c = c.arg("-u").arg(u);
        }
        for p in &spec.ports {
            c = c.arg("-p").arg(p);
        }
        if spec.keep_alive.is_some() {
            c = c.args(["--entrypoint", "/bin/sh"]);
        }
        c = c.args(&spec.run_args).arg(&spec.image);
        if let Some(script) = &spec.keep_alive {
            c = c.arg("-c").arg(script).arg("-");
        }
        c
    }

    /// Creates and starts a container; returns its id. A container of
    /// that name already there is [`DriverError::NameInUse`].
    pub fn run(&self, spec: &RunSpec) -> Result<String, DriverError> {
        match self.run_cmd(self.run_command(spec)) {
            Ok(id) => Ok(id.trim().to_string()),
            // docker: `Conflict. The container name "/x" is already in use
            // by container …`; podman: `the container name "x" is already
            // in use by …`.
            Err(DriverError::Command(e)) if e.stderr().contains("is already in use") => {
                Err(DriverError::NameInUse { name: spec.name.clone(), detail: e.stderr().trim().to_string() })
            }
            Err(e) => Err(e),
        }
    }

    pub fn start(&self, container: &str) -> Result<(), DriverError> {
        self.run_cmd(self.cmd().args(["start", container])).map(|_| ())
    }

    pub fn stop(&self, container: &str) -> Result<(), DriverError> {
        self.run_cmd(self.cmd().args(["stop", "-t", "5", container])).map(|_| ())
    }

    /// Removes a container and its anonymous volumes; absent is fine.
    pub fn remove(&self, container: &str) -> Result<(), DriverError> {
        match self.cmd().args(["rm", "-f", "-v", container]).output() {
            Ok(_) => Ok(()),
            Err(e) if is_no_such(&e) => Ok(()),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// `docker exec` as a command to run: `-i` keeps stdin open (the tunnel).
    /// `docker exec -i [-u USER] CONTAINER ARGV…`. It takes no environment:
    /// what the program needs travels on its stdin, not on a command line
    /// every user of this machine can read (`ps`).
    pub fn exec(&self, container: &str, user: Option<&str>, argv: &[String]) -> Cmd {
        let mut c = self.cmd().args(["exec", "-i"]);
        if let Some(u) = user {
            c = c.arg("-u").arg(u);
        }
        c.arg(container).args(argv)
    }
}

/// The engine's word (docker's and podman's) that a container exists but
/// does not run: `docker exec` on a stopped one.
pub fn says_not_running(stderr: &str) -> bool {
    stderr.to_ascii_lowercase().contains("is not running")
}

/// The engine's word that there is no such container (removed outside
/// den): docker's "No such container", podman's "no such container".
pub fn says_no_such_container(stderr: &str) -> bool {
    stderr.to_ascii_lowercase().contains("no such container")
}

/// docker says "No such …"; podman "no such container" / "image not known".
fn is_no_such(e: &ProcessError) -> bool {
    let s = e.stderr();
    ["No such container", "No such image", "No such object", "no such", "image not known"].iter().any(|m| s.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keep_alive_script;

    #[test]
    fn engine_phrases() {
        // (stderr, not running, no such container)
        let table = [
            ("Error response from daemon: container 3f2a is not running", true, false),
            ("Error response from daemon: Container 3f2a Is Not Running", true, false),
            ("Error: No such container: den-api", false, true),
            ("Error: no such container den-api", false, true),
            ("Error response from daemon: No such image: x", false, false),
            ("error: pods \"den-x\" not found", false, false),
            ("", false, false),
        ];
        for (text, stopped, gone) in table {
            assert_eq!(says_not_running(text), stopped, "{text}");
            assert_eq!(says_no_such_container(text), gone, "{text}");
        }
    }

    #[test]
    fn run_command_line() {
        let d = Docker::new("docker", vec![("DOCKER_HOST".into(), String::new())]);
        assert!(d.env.is_empty(), "empty values are left out");
        let spec = RunSpec {
            name: "den-api".into(),
            image: "img".into(),
            labels: vec![("den.workspace".into(), "api".into())],
            mounts: vec!["type=bind,source=/a,target=/b".into()],
            env: vec![("A".into(), "1 2".into())],
            init: true,
            cap_add: vec!["SYS_PTRACE".into()],
            run_args: vec!["--network=host".into()],
            keep_alive: Some("sleep".into()),
            ..Default::default()
        };
        assert_eq!(
            d.run_command(&spec).display(),
            "docker run -d --name den-api --label den.workspace=api --mount type=bind,source=/a,target=/b -e 'A=1 2' --init --cap-add SYS_PTRACE --entrypoint /bin/sh --network=host img -c sleep -"
        );
        let plain = RunSpec { name: "n".into(), image: "i".into(), ..Default::default() };
        assert_eq!(d.run_command(&plain).display(), "docker run -d --name n i");
    }

    #[test]
    fn keep_alive_runs_entrypoints_then_sleeps() {
        let s = keep_alive_script(&["/usr/local/share/docker-init.sh".into()]);
        assert!(s.contains("trap \"exit 0\" 15\n/usr/local/share/docker-init.sh\nexec \"$@\""), "{s}");
        assert!(s.ends_with("while sleep 1 & wait $!; do :; done"));
    }

    #[test]
    fn parses_container_inspect() {
        let json = r#"[{"Id":"abc","Name":"/den-x","Image":"sha256:1","State":{"Status":"running","Running":true,"StartedAt":"2026-01-01T00:00:00Z"},
            "Config":{"Labels":{"den.workspace":"x"},"Env":["PATH=/bin"],"User":"","Image":"img"}}]"#;
        let v: Vec<Container> = serde_json::from_str(json).unwrap();
        assert_eq!(v[0].label("den.workspace"), Some("x"));
        assert!(v[0].state.running);
    }

    #[test]
    fn engine_unreachable_is_explained() {
        let d = Docker::new("sh", vec![("DOCKER_HOST".into(), "unix:///nope.sock".into())]);
        let e = d
            .run_cmd(d.cmd().args(["-c", "echo 'Cannot connect to the Docker daemon at unix:///nope.sock. Is the docker daemon running?' >&2; exit 1"]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with("Cannot reach the Docker engine at unix:///nope.sock: is dockerd running?"),
            "{e}"
        );
        let missing = Docker::new("/nonexistent/docker", vec![]);
        assert!(matches!(missing.ping(), Err(DriverError::CliMissing(_))));
    }
}

/// Text without terminal colour sequences (the builder colours a failing
/// step's output).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod ansi_tests {
    #[test]
    fn colour_sequences_are_dropped() {
        assert_eq!(super::strip_ansi("\u{1b}[91merror\u{1b}[0m here"), "error here");
        assert_eq!(super::strip_ansi("plain [x]"), "plain [x]");
    }
}
