//! Whether an engine sees this machine's files: the test that decides
//! both of den's mounts into a new container, the agent's copy
//! (agent_mount.rs) and the direct line's folder (line.rs).

use std::path::{Path, PathBuf};

use den_driver::Docker;

/// A variable of the engine's CLI: the provider's value, else den's own.
fn engine_var(docker: &Docker, key: &str) -> Option<String> {
    docker
        .env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var(key).ok())
        .filter(|v| !v.is_empty())
}

/// Whether the engine sees this machine's files: it is reached through a
/// unix socket (DOCKER_HOST or podman's CONTAINER_HOST, else the docker
/// context in use: DOCKER_CONTEXT, else the CLI's current one). `context`
/// gives a named context's endpoint.
fn engine_is_here(var: &dyn Fn(&str) -> Option<String>, context: &dyn Fn(&str) -> Option<String>) -> bool {
    let local = |host: &str| host.starts_with("unix://") || host.starts_with('/');
    if let Some(host) = var("DOCKER_HOST").or_else(|| var("CONTAINER_HOST")) {
        return local(&host);
    }
    let named = var("DOCKER_CONTEXT").or_else(|| current_docker_context(var));
    match named.as_deref() {
        None | Some("default") => true,
        Some(name) => context(name).is_some_and(|h| local(&h)),
    }
}

/// Whether `docker`'s engine sees this machine's files (see
/// [`engine_is_here`]): what decides the direct line's mount too.
pub(crate) fn engine_is_local(docker: &Docker) -> bool {
    engine_is_here(&|k| engine_var(docker, k), &docker_context_host)
}

/// The docker CLI's folder (DOCKER_CONFIG, else ~/.docker).
fn docker_config_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("DOCKER_CONFIG").map(PathBuf::from).or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker")))
}

/// `currentContext` of the docker CLI's config.json.
fn current_docker_context(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let text = std::fs::read(docker_config_dir(var)?.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v.get("currentContext")?.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The docker endpoint of a named context (`contexts/meta/SHA256(NAME)/meta.json`).
fn docker_context_host(name: &str) -> Option<String> {
    use sha2::Digest;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let hash: String = sha2::Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let meta = docker_config_dir(&var)?.join("contexts/meta").join(hash).join("meta.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).ok()?).ok()?;
    v.pointer("/Endpoints/docker/Host")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn only_an_engine_behind_a_unix_socket_gets_the_mount() {
        let no_context = |_: &str| None;
        assert!(engine_is_here(&vars(&[]), &no_context));
        assert!(engine_is_here(&vars(&[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")]), &no_context));
        assert!(!engine_is_here(&vars(&[("DOCKER_HOST", "ssh://me@box")]), &no_context));
        assert!(!engine_is_here(&vars(&[("DOCKER_HOST", "tcp://10.0.0.2:2376")]), &no_context));
        assert!(!engine_is_here(&vars(&[("CONTAINER_HOST", "ssh://core@vm/run/podman.sock")]), &no_context));
        assert!(engine_is_here(&vars(&[("DOCKER_CONTEXT", "default")]), &no_context));
        let contexts = |n: &str| (n == "rootless").then(|| "unix:///run/user/1000/docker.sock".to_string());
        assert!(engine_is_here(&vars(&[("DOCKER_CONTEXT", "rootless")]), &contexts));
        assert!(!engine_is_here(&vars(&[("DOCKER_CONTEXT", "far")]), &contexts));
    }

    #[test]
    fn the_cli_current_context_counts_when_nothing_else_says() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"currentContext": "far"}"#).unwrap();
        let var = vars(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())]);
        assert!(!engine_is_here(&var, &|_| Some("ssh://box".into())));
        assert!(engine_is_here(&var, &|_| Some("unix:///var/run/docker.sock".into())));
    }
}
