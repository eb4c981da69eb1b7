//! This machine's docker registry credentials, found the way docker finds
//! them: `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), its
//! `credHelpers` for the registry, else its `credsStore`, else the
//! registry's `auths` entry. Answers in the credential-helper protocol's
//! JSON (`{"ServerURL", "Username", "Secret"}`), empty when there is none.

use den_process::Cmd;
use serde_json::{json, Value};

fn config() -> Option<Value> {
    let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
    };
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).ok()?).ok()
}

/// The registry a server URL or `auths` key names (`index.docker.io` for
/// Docker Hub's `https://index.docker.io/v1/`).
fn registry(url: &str) -> String {
    let rest = url.trim().trim_start_matches("https://").trim_start_matches("http://");
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

fn helper(name: &str, op: &str, input: &str) -> Option<String> {
    Cmd::new(format!("docker-credential-{name}"))
        .arg(op)
        .output_with_stdin(Some(input.as_bytes()))
        .ok()
        .map(|o| o.stdout)
}

pub fn get(server: &str) -> String {
    let Some(cfg) = config() else { return String::new() };
    let want = registry(server);
    let by_helper = cfg
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| registry(k) == want))
        .and_then(|(_, v)| v.as_str())
        .or_else(|| cfg.get("credsStore").and_then(|v| v.as_str()));
    if let Some(name) = by_helper {
        return helper(name, "get", server).unwrap_or_default();
    }
    let auth = cfg
        .get("auths")
        .and_then(|a| a.as_object())
        .and_then(|a| a.iter().find(|(k, _)| registry(k) == want))
        .and_then(|(_, v)| v.get("auth"))
        .and_then(|v| v.as_str());
    let Some(decoded) = auth.and_then(|a| {
        use base64ct::Encoding;
        base64ct::Base64::decode_vec(a.trim()).ok()
    }) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((user, secret)) => json!({ "ServerURL": server, "Username": user, "Secret": secret }).to_string(),
        None => String::new(),
    }
}

/// Server URL → user name, of every registry this machine has credentials for.
pub fn list() -> String {
    let Some(cfg) = config() else { return "{}".into() };
    let mut out = serde_json::Map::new();
    if let Some(name) = cfg.get("credsStore").and_then(|v| v.as_str()) {
        if let Some(Value::Object(m)) = helper(name, "list", "").and_then(|t| serde_json::from_str(&t).ok()) {
            out.extend(m);
        }
    }
    for key in
        cfg.get("auths").and_then(|a| a.as_object()).map(|a| a.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
    {
        if let Ok(v) = serde_json::from_str::<Value>(&get(&key)) {
            if let Some(user) = v.get("Username") {
                out.insert(key, user.clone());
            }
        }
    }
    Value::Object(out).to_string()
}

/// The user name and secret this machine has for a registry host
/// (`localhost:5000`, `ghcr.io`; `docker.io` is Docker Hub's index).
pub fn login(registry_host: &str) -> Option<(String, String)> {
    let host = match registry_host {
        "docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        h => h,
    };
    let v: Value = serde_json::from_str(&get(host)).ok()?;
    let user = v.get("Username")?.as_str()?.to_string();
    let secret = v.get("Secret")?.as_str()?.to_string();
    (!secret.is_empty()).then_some((user, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_compare_by_host() {
        assert_eq!(registry("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(registry("registry.example.com"), "registry.example.com");
        assert_eq!(registry("http://Registry.Example.com:5000/v2/"), "registry.example.com:5000");
    }
}
