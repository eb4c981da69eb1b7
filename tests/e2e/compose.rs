//! Compose workspaces against the real engine with Debian's docker-compose
//! 1.29 (and the compose v2 plugin when the machine has one: every test
//! runs once per compose CLI found, and says which it skipped and why).

use std::process::{Command, Stdio};

use crate::common::*;

/// The compose CLIs to run each test with (the provider option value),
/// and a line for each one that is not here.
fn compose_clis() -> Vec<&'static str> {
    let mut out = Vec::new();
    let answers = |prog: &str, args: &[&str]| {
        Command::new(prog).args(args).arg("version").output().is_ok_and(|o| o.status.success())
    };
    if answers("docker-compose", &[]) {
        out.push("docker-compose");
    } else {
        panic!("docker-compose is missing: tests/engine/setup.sh installs it");
    }
    if answers("docker", &["compose"]) {
        out.push("docker compose");
    } else {
        eprintln!(
            "compose v2: skipped: `docker compose` is not installed here (Debian 12 packages only docker-compose 1.29)"
        );
    }
    out
}

/// The compose project of a workspace's container.
fn project_of(container: &str) -> String {
    docker(&["inspect", "-f", "{{index .Config.Labels \"com.docker.compose.project\"}}", container]).trim().to_string()
}

/// `name state` of every container of a project, sorted.
fn project_states(project: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.Label \"com.docker.compose.service\"}} {{.State}}",
    ]);
    let mut v: Vec<String> = out.lines().map(String::from).collect();
    v.sort();
    v
}

fn networks_of(project: &str) -> String {
    docker(&["network", "ls", "-q", "--filter", &format!("label=com.docker.compose.project={project}")])
}

/// A shell loop that runs until SIGTERM and stops at once on it.
const IDLE: &str =
    r#"["sh", "-c", "echo $$0 started; trap 'exit 0' TERM; while sleep 1 & wait $$!; do :; done", "service"]"#;

#[test]
fn a_two_service_project_with_env_files_overrides_forwards_stop_and_delete() {
    require_engine();
    for cli in compose_clis() {
        let sb = Sandbox::new();
        let compose = format!(
            r#"version: "3.8"
services:
  app:
    image: den-test/busybox
    volumes:
      - ..:/workspace
    environment:
      FROM_ENV_FILE: ${{MESSAGE}}
  web:
    image: den-test/busybox
    command: ["sh", "-c", "mkdir -p /www && echo \"$$MESSAGE\" > /www/index.html && httpd -p 8137 -h /www && echo web-started && trap 'exit 0' TERM && while sleep 1 & wait $$!; do :; done"]
    environment:
      MESSAGE: ${{MESSAGE}}
    volumes:
      - webdata:/data
volumes:
  webdata: {{}}
"#
        );
        let ws = sb.workspace(
            "cmp-two",
            r#"{
  "dockerComposeFile": ["docker-compose.yml", "docker-compose.extra.yml"],
  "service": "app",
  "workspaceFolder": "/workspace",
  "overrideCommand": true,
  "forwardPorts": ["web:8137"],
  "containerEnv": {"FROM_CONFIG": "yes"},
  "postCreateCommand": "wget -qO- http://web:8137/ > /tmp/web.html"
}"#,
        );
        let d = ws.folder.join(".devcontainer");
        std::fs::write(d.join("docker-compose.yml"), compose).unwrap();
        std::fs::write(
            d.join("docker-compose.extra.yml"),
            "version: \"3.8\"\nservices:\n  app:\n    environment:\n      SECOND: from-the-second-file\n",
        )
        .unwrap();
        std::fs::write(d.join(".env"), "MESSAGE=hello-from-dotenv\n").unwrap();
        std::fs::write(ws.folder.join("marker.txt"), "project-files\n").unwrap();
        let opt = format!("COMPOSE_PATH={cli}");
        let up = ws.up(&["--ide", "none", "--provider-option", &opt]);
        up.assert_ok();
        let c = ws.container();
        let project = project_of(&c);
        assert_eq!(project_states(&project), ["app running", "web running"], "{cli}");
        let r = run(sb.den().args([
            "ssh",
            &ws.id,
            "--",
            "sh",
            "-c",
            "cat /tmp/web.html; echo $FROM_ENV_FILE $SECOND $FROM_CONFIG; pwd; cat marker.txt",
        ]));
        r.assert_ok();
        assert_eq!(
            r.stdout, "hello-from-dotenv\nhello-from-dotenv from-the-second-file yes\n/workspace\nproject-files\n",
            "{cli}"
        );

        // forwardPorts "web:8137": the other service's port, on this
        // machine, while a session is open.
        let mut session = sb
            .den()
            .args(["ssh", &ws.id, "--command", "sleep 15"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(8137);
        assert_eq!(http_get(8137).trim(), "hello-from-dotenv", "{cli}");
        let _ = session.kill();
        let _ = session.wait();

        // A warm up touches nothing.
        let warm = ws.up(&["--ide", "none"]);
        warm.assert_ok();
        assert!(!warm.stderr.contains("compose up"), "{}", warm.stderr);
        assert!(run(sb.den().args(["logs", &ws.id, "--service", "web"])).stdout.contains("web-started"));

        // stop: the whole project (shutdownAction stopCompose); up starts it all.
        run(sb.den().args(["stop", &ws.id])).assert_ok();
        assert_eq!(project_states(&project), ["app exited", "web exited"], "{cli}");
        assert_eq!(run(sb.den().args(["status", &ws.id])).stdout.trim(), "Stopped");
        ws.up(&["--ide", "none"]).assert_ok();
        assert_eq!(project_states(&project), ["app running", "web running"], "{cli}");

        // delete: no container, no network; the named volume stays...
        run(sb.den().args(["delete", &ws.id])).assert_ok();
        assert!(project_states(&project).is_empty(), "{cli}");
        assert_eq!(networks_of(&project), "", "{cli}");
        let volume = format!("{project}_webdata");
        assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]).trim(), volume);
        // ...unless --force.
        ws.up(&["--ide", "none", "--provider-option", &opt]).assert_ok();
        run(sb.den().args(["delete", "--force", &ws.id])).assert_ok();
        assert!(project_states(&project).is_empty(), "{cli}");
        assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]).trim(), "", "{cli}");
    }
}

#[test]
fn a_built_service_with_features_run_services_and_shutdown_action_none() {
    require_engine();
    for cli in compose_clis() {
        let sb = Sandbox::new();
        let ws = sb.workspace(
            "cmp-build",
            r#"{
  "dockerComposeFile": "docker-compose.yml",
  "service": "app",
  "runServices": ["app", "side"],
  "shutdownAction": "none",
  "features": {"./feat": {"word": "compose-feature"}},
  "postCreateCommand": "cat /built /feature-word > /tmp/seen"
}"#,
        );
        let d = ws.folder.join(".devcontainer");
        std::fs::write(
            d.join("docker-compose.yml"),
            format!(
                "services:\n  app:\n    build:\n      context: .\n      dockerfile: Dockerfile\n    command: {IDLE}\n  side:\n    image: den-test/busybox\n    command: {IDLE}\n  never:\n    image: den-test/busybox\n    command: {IDLE}\n"
            ),
        )
        .unwrap();
        std::fs::write(d.join("Dockerfile"), "FROM den-test/busybox\nRUN echo built > /built\n").unwrap();
        std::fs::create_dir_all(d.join("feat")).unwrap();
        std::fs::write(
            d.join("feat/devcontainer-feature.json"),
            r#"{"id": "feat", "options": {"word": {"type": "string", "default": "x"}}}"#,
        )
        .unwrap();
        std::fs::write(d.join("feat/install.sh"), "#!/bin/sh\necho \"$WORD\" > /feature-word\n").unwrap();
        let opt = format!("COMPOSE_PATH={cli}");
        ws.up(&["--ide", "none", "--provider-option", &opt]).assert_ok();
        let c = ws.container();
        let project = project_of(&c);
        // runServices: `never` is not started.
        assert_eq!(project_states(&project), ["app running", "side running"], "{cli}");
        assert_eq!(exec(&c, "cat /tmp/seen"), "built\ncompose-feature\n");
        // No mount of the project in the service: den mounts it, at
        // /workspaces/<folder>, and sessions start there.
        let r = run(sb.den().args(["ssh", &ws.id, "--", "sh", "-c", "pwd; ls .devcontainer/Dockerfile"]));
        assert_eq!(r.stdout, "/workspaces/cmp-build\n.devcontainer/Dockerfile\n", "{cli}: {}", r.stderr);
        // shutdownAction none: stop stops the workspace's container only.
        run(sb.den().args(["stop", &ws.id])).assert_ok();
        assert_eq!(project_states(&project), ["app exited", "side running"], "{cli}");
        // A warm up after a stop keeps the folder den chose.
        ws.up(&["--ide", "none"]).assert_ok();
        let r = run(sb.den().args(["ssh", &ws.id, "--", "pwd"]));
        assert_eq!(r.stdout, "/workspaces/cmp-build\n", "{cli}");
        run(sb.den().args(["delete", &ws.id])).assert_ok();
        assert!(project_states(&project).is_empty(), "{cli}");
        assert_eq!(docker(&["images", "-q", &format!("{project}-*")]), "", "{cli}: the service's base image was left");
    }
}

#[test]
fn bad_compose_inputs_are_clear_errors_that_leave_nothing_running() {
    require_engine();
    let sb = Sandbox::new();
    let good = format!("services:\n  app:\n    image: den-test/busybox\n    command: {IDLE}\n");
    let cases: &[(&str, &str, String, &[&str], &[&str], i32)] = &[
        (
            "missing",
            r#"{"dockerComposeFile": "nope.yml", "service": "app"}"#,
            good.clone(),
            &["nope.yml", "does not exist"],
            &[],
            1,
        ),
        (
            "unknown",
            r#"{"dockerComposeFile": "docker-compose.yml", "service": "db"}"#,
            good.clone(),
            &["devcontainer.json:1:", "service `db` is not in the compose files (they have: app)"],
            &[],
            1,
        ),
        (
            "yaml",
            r#"{"dockerComposeFile": "docker-compose.yml", "service": "app"}"#,
            "services:\n  app:\n    image: [unclosed\n".to_string(),
            &["docker-compose.yml", "line 3"],
            &[],
            1,
        ),
        (
            "exits",
            r#"{"dockerComposeFile": "docker-compose.yml", "service": "app"}"#,
            "services:\n  app:\n    image: den-test/busybox\n    command: [\"sh\", \"-c\", \"echo bye-now; exit 3\"]\n"
                .to_string(),
            &["exited at once (exit code 3)", "bye-now", "overrideCommand"],
            &[],
            1,
        ),
        (
            "nocli",
            r#"{"dockerComposeFile": "docker-compose.yml", "service": "app"}"#,
            good.clone(),
            &["no compose CLI answered", "/nonexistent/compose"],
            &["--provider-option", "COMPOSE_PATH=/nonexistent/compose"],
            3,
        ),
    ];
    for (name, config, file, wants, extra, code) in cases {
        let ws = sb.workspace(&format!("cmp-bad-{name}"), config);
        std::fs::write(ws.folder.join(".devcontainer/docker-compose.yml"), file).unwrap();
        let mut args = vec!["--ide", "none"];
        args.extend_from_slice(extra);
        let r = ws.up(&args);
        r.assert_code(*code);
        for w in *wants {
            assert!(r.stderr.contains(w), "{name}: `{w}` not in:\n{}", r.stderr);
        }
        let left = docker(&["ps", "-a", "-q", "--filter", &format!("name=den-{}", ws.id)]);
        assert_eq!(left, "", "{name}: containers were left");
        assert_eq!(docker(&["network", "ls", "-q", "--filter", &format!("name=den-{}", ws.id)]), "", "{name}");
    }
}

#[test]
fn the_ssh_provider_runs_compose_on_the_machine() {
    require_engine();
    let sb = Sandbox::new();
    let sshd = crate::remote::Sshd::start(&sb.path().join("sshd"));
    let ws = sb.workspace(
        "cmp-remote",
        r#"{"dockerComposeFile": "docker-compose.yml", "service": "app", "workspaceFolder": "/workspace",
            "postCreateCommand": "wget -qO- http://web:8138/ > /tmp/web.html"}"#,
    );
    std::fs::write(
        ws.folder.join(".devcontainer/docker-compose.yml"),
        format!(
            "services:\n  app:\n    image: den-test/busybox\n    command: {IDLE}\n    volumes: ['..:/workspace']\n  web:\n    image: den-test/busybox\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo on-the-machine > /www/index.html && httpd -p 8138 -h /www && trap 'exit 0' TERM && while sleep 1 & wait $$!; do :; done\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(ws.folder.join("sent.txt"), "sent-over-the-tunnel\n").unwrap();
    let mut up = ws.up_cmd(&["--ide", "none", "--provider", "ssh"]);
    up.args(sshd.provider_args());
    run(&mut up).assert_ok();
    let c = ws.container();
    let project = project_of(&c);
    assert_eq!(project_states(&project), ["app running", "web running"]);
    // The project folder is the copy den sent to the machine.
    let mount = docker(&["inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", &c]);
    assert!(!mount.contains(ws.folder.to_str().unwrap()), "{mount}");
    let r = run(sb.den().args(["ssh", &ws.id, "--", "sh", "-c", "cat /tmp/web.html /workspace/sent.txt"]));
    assert_eq!(r.stdout, "on-the-machine\nsent-over-the-tunnel\n", "{}", r.stderr);
    run(sb.den().args(["delete", &ws.id])).assert_ok();
    assert!(project_states(&project).is_empty());
    assert_eq!(networks_of(&project), "");
}
