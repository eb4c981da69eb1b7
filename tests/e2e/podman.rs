//! The podman provider: the same workflow through podman's CLI.

use std::process::Command;

use crate::common::{run, unique_id, Sandbox};

const CONTAINERS_CONF: &str = "/var/tmp/den-engine/containers.conf";

fn podman(args: &[&str]) -> String {
    let o = Command::new("podman").args(args).env("CONTAINERS_CONF", CONTAINERS_CONF).output().expect("podman runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn up_ssh_stop_delete_through_podman() {
    assert!(
        Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success()),
        "podman is missing: tests/engine/setup.sh installs it"
    );
    let s = Sandbox::new();
    let id = unique_id("podman");
    let den = |args: &[&str]| {
        let mut c = s.den();
        c.args(args).env("CONTAINERS_CONF", CONTAINERS_CONF);
        run(&mut c)
    };
    let p = s.project(
        "podproj",
        &[(".devcontainer.json", r#"{"image": "den-test/busybox", "postCreateCommand": "echo created > /tmp/created", "remoteEnv": {"VIA": "podman"}}"#)],
    );
    let folder = p.to_str().unwrap();
    let r = den(&["up", "--provider", "podman", "--id", &id, "--output", "json", folder]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["provider"], "podman");
    // the container is podman's, not docker's
    let name = format!("den-{id}");
    assert!(podman(&["ps", "--format", "{{.Names}}"]).lines().any(|l| l == name), "podman runs {name}");
    assert!(!Command::new("docker").args(["inspect", &name]).output().unwrap().status.success());
    let r = den(&["ssh", &id, "--command", "cat /tmp/created; echo $VIA"]);
    assert_eq!(r.stdout, "created\npodman\n", "{}", r.stderr);
    let o = s.openssh(&id).arg("echo over-openssh").env("CONTAINERS_CONF", CONTAINERS_CONF).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "over-openssh\n", "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(den(&["stop", &id]).code, 0);
    assert_eq!(den(&["status", &id]).stdout.trim(), "Stopped");
    let list = den(&["list", "--output", "json"]);
    assert!(list.stdout.contains("\"status\":\"Stopped\""), "{}", list.stdout);
    let r = den(&["up", "--id", &id, folder]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(den(&["status", &id]).stdout.trim(), "Running");
    let list = den(&["list", "--output", "json"]);
    assert!(list.stdout.contains("\"status\":\"Running\""), "podman's `Up …` reads as Running: {}", list.stdout);
    assert_eq!(den(&["delete", &id]).code, 0);
    assert!(!podman(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|l| l == name), "no container left");
}
