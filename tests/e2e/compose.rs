//! Compose workspaces against the real engine, on both compose CLIs:
//! Debian's docker-compose 1.29 (v1) and the compose 2.26 plugin (v2) that
//! tests/engine/setup.sh installs. Each test runs its body once per CLI,
//! chosen with the provider option COMPOSE_PATH (without it den takes the
//! plugin when there is one, else docker-compose on PATH); the ssh
//! provider's test runs on what den on the machine finds (v2 here).

use std::process::{Command, Stdio};

use crate::common::*;

/// The compose CLIs to run each test with (the provider option value).
fn compose_clis() -> Vec<&'static str> {
    let answers = |prog: &str, args: &[&str]| {
        Command::new(prog).args(args).arg("version").output().is_ok_and(|o| o.status.success())
    };
    let clis = [("docker-compose", &[][..]), ("docker compose", &["compose"][..])];
    for (cli, args) in clis {
        let prog = if args.is_empty() { cli } else { "docker" };
        assert!(answers(prog, args), "`{cli}` is missing: tests/engine/setup.sh installs it");
    }
    clis.iter().map(|(cli, _)| *cli).collect()
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
    sorted_lines(&out)
}

/// The lines of `text`, sorted.
fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
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
                "services:\n  app:\n    build:\n      context: .\n      dockerfile: Dockerfile\n    command: {IDLE}\n  side:\n    build: {{context: ., dockerfile: Dockerfile}}\n    command: {IDLE}\n  never:\n    image: den-test/busybox\n    command: {IDLE}\n"
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
        for built in [format!("{project}-*"), format!("{project}_*")] {
            assert_eq!(docker(&["images", "-q", &built]), "", "{cli}: the services' images were left");
        }
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
    for (n, cli) in compose_clis().into_iter().enumerate() {
        let opt = format!("COMPOSE_PATH={cli}");
        let own: &[&str] = &["--provider-option", &opt];
        for (name, config, file, wants, extra, code) in cases {
            // `nocli` names its own compose CLI.
            if extra.is_empty() || n == 0 {
                let ws = sb.workspace(&format!("cmp-bad{n}-{name}"), config);
                std::fs::write(ws.folder.join(".devcontainer/docker-compose.yml"), file).unwrap();
                let mut args = vec!["--ide", "none"];
                args.extend_from_slice(if extra.is_empty() { own } else { extra });
                let r = ws.up(&args);
                r.assert_code(*code);
                for w in *wants {
                    assert!(r.stderr.contains(w), "{cli}, {name}: `{w}` not in:\n{}", r.stderr);
                }
                let left = docker(&["ps", "-a", "-q", "--filter", &format!("name=den-{}", ws.id)]);
                assert_eq!(left, "", "{cli}, {name}: containers were left");
                let networks = docker(&["network", "ls", "-q", "--filter", &format!("name=den-{}", ws.id)]);
                assert_eq!(networks, "", "{cli}, {name}");
            }
        }
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

/// The names of a project's volumes, sorted.
fn volumes_of(project: &str) -> Vec<String> {
    sorted_lines(&docker(&["volume", "ls", "-q", "--filter", &format!("label=com.docker.compose.project={project}")]))
}

#[test]
fn named_volumes_in_mounts_and_yaml_tags() {
    require_engine();
    for cli in compose_clis() {
        let sb = Sandbox::new();
        // Both forms of a named volume in `mounts`, and one the compose
        // file declares itself (its definition stays).
        let ws = sb.workspace(
            "cmp-vol",
            r#"{
  "dockerComposeFile": ["docker-compose.yml", "docker-compose.more.yml"],
  "service": "app",
  "mounts": [{"type": "volume", "source": "cache", "target": "/cache"},
             "source=home-cache,target=/home-cache,type=volume",
             "type=volume,source=shared,target=/shared-too"]
}"#,
        );
        let d = ws.folder.join(".devcontainer");
        std::fs::write(
            d.join("docker-compose.yml"),
            format!(
                "services:\n  app:\n    image: den-test/busybox\n    command: {IDLE}\n    ports: ['127.0.0.1::8139']\n    environment: {{FROM: base}}\n    volumes: ['shared:/shared']\nvolumes:\n  shared:\n    labels: {{den.test: from-the-file}}\n"
            ),
        )
        .unwrap();
        // compose ≥ 2.24 reads `!reset` and `!override`; v1 knows no tags.
        let more = if cli == "docker-compose" {
            "services:\n  app:\n    environment: {MORE: plain}\n"
        } else {
            "services:\n  app:\n    ports: !reset []\n    environment: !override {MORE: tagged}\n"
        };
        std::fs::write(d.join("docker-compose.more.yml"), more).unwrap();
        let opt = format!("COMPOSE_PATH={cli}");
        ws.up(&["--ide", "none", "--provider-option", &opt]).assert_ok();
        let c = ws.container();
        let project = project_of(&c);
        exec(&c, "echo kept > /cache/a && echo kept > /home-cache/b && echo kept > /shared-too/c && cat /shared/c");
        let names: Vec<String> = ["cache", "home-cache", "shared"].iter().map(|v| format!("{project}_{v}")).collect();
        assert_eq!(volumes_of(&project), names, "{cli}");
        let label = docker(&["volume", "inspect", "-f", "{{index .Labels \"den.test\"}}", &names[2]]);
        assert_eq!(label.trim(), "from-the-file", "{cli}: the file's own definition of `shared`");
        let env = exec(&c, "echo $FROM-$MORE");
        let ports = docker(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", &c]);
        if cli == "docker-compose" {
            assert_eq!(env, "base-plain\n");
        } else {
            assert_eq!(env, "-tagged\n", "!override replaces the environment");
            assert_eq!(ports.trim(), "{}", "!reset leaves no ports");
        }
        // A new container of the project finds what the volumes hold.
        ws.up(&["--ide", "none", "--recreate"]).assert_ok();
        assert_eq!(exec(&c, "cat /cache/a /home-cache/b /shared/c"), "kept\nkept\nkept\n", "{cli}");
        run(sb.den().args(["delete", "--force", &ws.id])).assert_ok();
        assert!(volumes_of(&project).is_empty(), "{cli}");
    }
}
