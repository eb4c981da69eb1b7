//! Variable substitution as the Dev Container specification defines it.
//!
//! `${localEnv:VAR}`, `${localEnv:VAR:default}` (and the older `${env:VAR}`),
//! `${localWorkspaceFolder}`, `${localWorkspaceFolderBasename}`,
//! `${containerWorkspaceFolder}`, `${containerWorkspaceFolderBasename}`,
//! `${devcontainerId}`, and `${containerEnv:VAR[:default]}`, which only the
//! agent inside the container can resolve. A variable that is not known yet,
//! or not known at all, is left exactly as written.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Looks up one environment variable.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What is known at the time of a substitution pass.
pub struct Context<'a> {
    pub local_env: EnvLookup<'a>,
    pub local_workspace_folder: Option<&'a str>,
    pub container_workspace_folder: Option<&'a str>,
    pub devcontainer_id: Option<&'a str>,
    /// The container's environment; `None` before the container exists.
    pub container_env: Option<EnvLookup<'a>>,
}

impl Context<'_> {
    fn lookup(&self, expr: &str) -> Option<String> {
        let (name, arg) = match expr.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (expr, None),
        };
        match (name, arg) {
            ("localEnv" | "env", Some(arg)) => {
                let (var, default) = split_default(arg);
                Some((self.local_env)(var).unwrap_or_else(|| default.unwrap_or("").to_string()))
            }
            ("containerEnv", Some(arg)) => {
                let env = self.container_env?;
                let (var, default) = split_default(arg);
                Some(env(var).unwrap_or_else(|| default.unwrap_or("").to_string()))
            }
            ("localWorkspaceFolder", None) => self.local_workspace_folder.map(str::to_string),
            ("localWorkspaceFolderBasename", None) => self.local_workspace_folder.map(basename),
            ("containerWorkspaceFolder", None) => self.container_workspace_folder.map(str::to_string),
            ("containerWorkspaceFolderBasename", None) => self.container_workspace_folder.map(basename),
            ("devcontainerId", None) => self.devcontainer_id.map(str::to_string),
            _ => None,
        }
    }
}

fn split_default(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once(':') {
        Some((v, d)) => (v, Some(d)),
        None => (arg, None),
    }
}

/// The last path component, for the `…Basename` variables.
pub fn basename(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) => b.to_string(),
        None => trimmed.to_string(),
    }
}

/// Substitutes every known `${…}` in one string.
pub fn substitute_str(s: &str, ctx: &Context<'_>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..start]);
        let expr = &after[..end];
        match ctx.lookup(expr) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Substitutes in every string value of a JSON tree (object keys stay).
pub fn substitute_value(v: &mut Value, ctx: &Context<'_>) {
    match v {
        Value::String(s) if s.contains("${") => *s = substitute_str(s, ctx),
        Value::Array(items) => items.iter_mut().for_each(|x| substitute_value(x, ctx)),
        Value::Object(map) => map.values_mut().for_each(|x| substitute_value(x, ctx)),
        _ => {}
    }
}

/// `${devcontainerId}`: stable for one workspace folder and config file, the
/// same as the reference implementation computes it: SHA-256 of the JSON of
/// the id labels (keys sorted), as a base-32 number padded to 52 digits.
pub fn devcontainer_id(local_folder: &str, config_file: &str) -> String {
    let labels = serde_json::json!({
        "devcontainer.config_file": config_file,
        "devcontainer.local_folder": local_folder,
    });
    // serde_json keeps insertion order here, which is the sorted order.
    let text = serde_json::to_string(&labels).expect("labels serialise");
    let hash = Sha256::digest(text.as_bytes());
    base32_of(&hash)
}

/// A big-endian number in base 32 (digits 0-9a-v), 52 digits, zero-padded.
fn base32_of(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let total_bits = bytes.len() * 8;
    let ndigits = total_bits.div_ceil(5);
    let bit = |i: usize| -> u8 {
        // bit i counted from the least significant end
        let byte = bytes[bytes.len() - 1 - i / 8];
        (byte >> (i % 8)) & 1
    };
    let mut out = Vec::with_capacity(ndigits);
    for d in (0..ndigits).rev() {
        let mut v = 0u8;
        for b in (0..5).rev() {
            let i = d * 5 + b;
            v = (v << 1) | if i < total_bits { bit(i) } else { 0 };
        }
        out.push(DIGITS[v as usize]);
    }
    String::from_utf8(out).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ctx() -> Context<'static> {
        Context {
            local_env: &env,
            local_workspace_folder: Some("/src/My Project"),
            container_workspace_folder: Some("/workspaces/My Project"),
            devcontainer_id: Some("abc"),
            container_env: None,
        }
    }

    #[test]
    fn local_env_forms() {
        let c = ctx();
        assert_eq!(substitute_str("${localEnv:HOME}/x", &c), "/home/me/x");
        assert_eq!(substitute_str("${env:HOME}", &c), "/home/me");
        assert_eq!(substitute_str("[${localEnv:NOPE}]", &c), "[]");
        assert_eq!(substitute_str("${localEnv:NOPE:fallback}", &c), "fallback");
        assert_eq!(substitute_str("${localEnv:NOPE:a:b}", &c), "a:b");
        // set but empty is a value, not a reason for the default
        assert_eq!(substitute_str("${localEnv:EMPTY:d}", &c), "");
    }

    #[test]
    fn workspace_variables() {
        let c = ctx();
        assert_eq!(substitute_str("${localWorkspaceFolder}", &c), "/src/My Project");
        assert_eq!(substitute_str("${localWorkspaceFolderBasename}", &c), "My Project");
        assert_eq!(substitute_str("${containerWorkspaceFolder}/a", &c), "/workspaces/My Project/a");
        assert_eq!(substitute_str("${containerWorkspaceFolderBasename}", &c), "My Project");
        assert_eq!(substitute_str("vol-${devcontainerId}", &c), "vol-abc");
    }

    #[test]
    fn container_env_waits_for_the_container() {
        let c = ctx();
        assert_eq!(substitute_str("${containerEnv:PATH}:/x", &c), "${containerEnv:PATH}:/x");
        let cenv = |n: &str| (n == "PATH").then(|| "/usr/bin".to_string());
        let inside = Context { container_env: Some(&cenv), ..ctx() };
        assert_eq!(substitute_str("${containerEnv:PATH}:/x", &inside), "/usr/bin:/x");
        assert_eq!(substitute_str("${containerEnv:NO:dflt}", &inside), "dflt");
    }

    #[test]
    fn unknown_and_malformed_are_left_alone() {
        let c = ctx();
        assert_eq!(substitute_str("${whatever}", &c), "${whatever}");
        assert_eq!(substitute_str("${localEnv}", &c), "${localEnv}");
        assert_eq!(substitute_str("$HOME ${ unclosed", &c), "$HOME ${ unclosed");
        assert_eq!(substitute_str("a${localEnv:HOME}b${x}c", &c), "a/home/meb${x}c");
    }

    #[test]
    fn unknown_before_the_folder_is_known() {
        let none = Context {
            local_env: &env,
            local_workspace_folder: None,
            container_workspace_folder: None,
            devcontainer_id: None,
            container_env: None,
        };
        assert_eq!(substitute_str("${containerWorkspaceFolder}", &none), "${containerWorkspaceFolder}");
    }

    #[test]
    fn values_are_walked_keys_are_not() {
        let mut v = json!({"${localEnv:HOME}": ["${localEnv:HOME}", 1, {"k": "${localWorkspaceFolderBasename}"}]});
        substitute_value(&mut v, &ctx());
        assert_eq!(v, json!({"${localEnv:HOME}": ["/home/me", 1, {"k": "My Project"}]}));
    }

    #[test]
    fn basenames() {
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(basename("b"), "b");
        assert_eq!(basename("/"), "");
    }

    #[test]
    fn devcontainer_id_is_stable_and_52_base32_digits() {
        let a = devcontainer_id("/src/a", "/src/a/.devcontainer/devcontainer.json");
        assert_eq!(a, devcontainer_id("/src/a", "/src/a/.devcontainer/devcontainer.json"));
        assert_ne!(a, devcontainer_id("/src/b", "/src/b/.devcontainer/devcontainer.json"));
        assert_eq!(a.len(), 52);
        assert!(a.chars().all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)));
    }

    #[test]
    fn base32_matches_known_values() {
        assert_eq!(base32_of(&[0x00, 0x20]), "0010"); // 32 = "10" in base 32
        assert_eq!(base32_of(&[0xff, 0xff]), "1vvv"); // 65535
        assert_eq!(base32_of(&[0x01]), "01");
    }
}
