//! `den provider …` through the binary.

use crate::common::{require_engine, run, unique_id, Sandbox};

fn json(r: &crate::common::Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

#[test]
fn builtin_docker_is_listed_and_default() {
    let s = Sandbox::new();
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    let docker = list.as_array().unwrap().iter().find(|p| p["name"] == "docker").expect("docker is built in");
    assert_eq!(docker["default"], true);
    assert_eq!(docker["builtin"], true);
    let opts = json(&run(s.den().args(["provider", "options", "docker", "--output", "json"])));
    assert_eq!(opts["DOCKER_PATH"]["value"], "docker");
    assert_eq!(opts["DOCKER_PATH"]["source"], "default");
    assert!(opts.get("DOCKER_HOST").is_some() && opts.get("INACTIVITY_TIMEOUT").is_some());
}

#[test]
fn set_options_validates_and_saves() {
    let s = Sandbox::new();
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "INACTIVITY_TIMEOUT=soon"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("INACTIVITY_TIMEOUT=\"soon\" is not valid"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "NOPE=1"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider docker has no option NOPE"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "INACTIVITY_TIMEOUT=10m"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let opts = json(&run(s.den().args(["provider", "options", "--output", "json"])));
    assert_eq!(opts["INACTIVITY_TIMEOUT"]["value"], "10m");
    assert_eq!(opts["INACTIVITY_TIMEOUT"]["source"], "user");
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "bad"]));
    assert_eq!(r.code, 2, "not KEY=VALUE is a usage error: {}", r.stderr);
}

#[test]
fn add_use_and_delete_a_devpod_style_provider() {
    let s = Sandbox::new();
    let dir = s.project(
        "prov",
        &[(
            "provider.yaml",
            "name: mydocker\nversion: v1.0.0\ndescription: docker under another name\noptions:\n  DOCKER_PATH:\n    default: docker\n  REGION:\n    required: true\n    command: echo eu-1\nagent:\n  local: true\n  driver: docker\n  docker:\n    path: ${DOCKER_PATH}\nexec:\n  command: '\"${DEVPOD}\" helper sh -c \"${COMMAND}\"'\n",
        )],
    );
    let added = json(&run(s.den().args(["provider", "add", "--output", "json"]).arg(dir.join("provider.yaml"))));
    assert_eq!(added["name"], "mydocker");
    let opts = json(&run(s.den().args(["provider", "options", "mydocker", "--output", "json"])));
    assert_eq!(opts["REGION"]["value"], "eu-1");
    assert_eq!(opts["REGION"]["source"], "command");
    assert_eq!(run(s.den().args(["provider", "use", "mydocker"])).code, 0);
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    assert!(list.as_array().unwrap().iter().any(|p| p["name"] == "mydocker" && p["default"] == true));
    assert_eq!(run(s.den().args(["provider", "delete", "mydocker"])).code, 0);
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    assert!(list.as_array().unwrap().iter().any(|p| p["name"] == "docker" && p["default"] == true));
    let r = run(s.den().args(["provider", "delete", "docker"]));
    assert_eq!(r.code, 1, "a built-in cannot be deleted");
    let r = run(s.den().args(["provider", "use", "ghost"]));
    assert!(r.stderr.contains("provider `ghost` is not installed"), "{}", r.stderr);
}

#[test]
fn bad_manifest_is_refused_with_its_origin() {
    let s = Sandbox::new();
    let dir = s.project("bad", &[("provider.yaml", "name: x\noptions: [\n")]);
    let r = run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml")));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider.yaml: not a valid provider manifest"), "{}", r.stderr);
    assert!(!s.home().join("contexts/default/providers/x").exists());
}

#[test]
fn up_with_an_added_provider_and_a_required_option() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("addedprov");
    let _c = s.cleanup(&id);
    let dir = s.project(
        "prov2",
        &[(
            "provider.yaml",
            "name: strict\noptions:\n  DOCKER_PATH:\n    default: docker\n  TEAM:\n    required: true\nagent:\n  local: \"true\"\n  path: /opt/den-agent/den\n  docker:\n    path: ${DOCKER_PATH}\n",
        )],
    );
    assert_eq!(run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml"))).code, 0);
    let p = s.project("proj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["up", "--provider", "strict", "--id", &id]).arg(&p));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider option TEAM is required"), "{}", r.stderr);
    let up = s.up(&p, &id, &["--provider", "strict", "--provider-option", "TEAM=core"]);
    assert_eq!(up["provider"], "strict");
    // the provider's agent.path is where the agent went
    let ls = crate::common::exec(&format!("den-{id}"), "ls /opt/den-agent/den");
    assert_eq!(ls.trim(), "/opt/den-agent/den");
}

/// `den helper sh -c CMD [ARG0 ARGS…]` behaves as `sh -c` does, for
/// manifests' `"${DEVPOD}" helper sh -c "${COMMAND}"`.
#[test]
fn helper_sh_is_sh() {
    let s = Sandbox::new();
    let r = run(s.den().args(["helper", "sh", "-c", "printf '%s|' \"$0\" \"$@\"; exit 3", "a", "-b", "c d"]));
    assert_eq!(r.stdout, "a|-b|c d|");
    assert_eq!(r.code, 3);
    let r = run(s
        .den()
        .args(["helper", "sh", "-c", "echo \"$X\" ; cat"])
        .env("X", "$(nope); x")
        .stdin(std::process::Stdio::null()));
    assert_eq!(r.stdout, "$(nope); x\n");
}

/// A provider with two required options: `provider options` lists them
/// unset, and `set-options` takes them one at a time; `up` names what is
/// still missing.
#[test]
fn required_options_one_at_a_time() {
    let s = Sandbox::new();
    let m = s.path().join("two.yaml");
    std::fs::write(&m, "name: two\noptions:\n  TOKEN:\n    required: true\n  REGION:\n    required: true\n    enum: [eu, us]\nexec:\n  command: exit 1\n").unwrap();
    assert_eq!(run(s.den().args(["provider", "add"]).arg(&m)).code, 0);
    let r = run(s.den().args(["provider", "options", "two"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(required, not set)"), "{}", r.stdout);
    let r = run(s.den().args(["provider", "set-options", "two", "-o", "REGION=eu"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "two", "-o", "REGION=mars"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("it must be one of eu, us"), "{}", r.stderr);
    let p = s.project("twoproj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["up", "--provider", "two", "--id", "two"]).arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("provider option TOKEN is required"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "options", "two", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["REGION"]["value"], "eu");
}
