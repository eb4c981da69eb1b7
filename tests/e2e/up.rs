//! `den up` and the workspace lifecycle against the real engine.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::common::{container, container_running, docker, exec, repo_root, require_engine, run, unique_id, Sandbox};

#[test]
fn image_only_then_warm_up_changes_nothing() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("image");
    let _c = s.cleanup(&id);
    let p = s.project("proj", &[(".devcontainer/devcontainer.json", r#"{"image": "den-test/debian:bookworm"}"#)]);
    std::fs::write(p.join("hello.txt"), "from the host").unwrap();

    let first = s.up(&p, &id, &[]);
    assert_eq!(first["status"], "Running");
    assert_eq!(first["created"], true);
    assert_eq!(first["agentUploaded"], false, "a local container mounts the agent");
    assert_eq!(first["workspaceFolder"], "/workspaces/proj");
    // the folder is mounted at the workspace folder
    assert_eq!(exec(&container(&id), "cat /workspaces/proj/hello.txt"), "from the host");
    // den's and the spec's labels
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &container(&id)]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["den.workspace"], id.as_str());
    assert_eq!(labels["devcontainer.local_folder"], p.canonicalize().unwrap().to_str().unwrap());
    assert!(labels["devcontainer.config_file"].as_str().unwrap().ends_with(".devcontainer/devcontainer.json"));
    assert!(labels["devcontainer.metadata"].as_str().unwrap().starts_with('['));
    let cid = docker(&["inspect", "-f", "{{.Id}}", &container(&id)]);

    let second = s.up(&p, &id, &[]);
    assert_eq!(second["created"], false);
    assert_eq!(second["started"], false);
    assert_eq!(second["agentUploaded"], false, "the agent is copied only once");
    assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &container(&id)]), cid, "same container");

    let st = run(s.den().args(["status", "--output", "json", &id]));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()["status"], "Running");
    let list = run(s.den().args(["list", "--output", "json"]));
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "Running");
}

#[test]
fn dockerfile_with_args_and_target() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("dockerfile");
    let _c = s.cleanup(&id);
    let p = s.project(
        "built",
        &[
            (
                ".devcontainer/Dockerfile",
                "FROM den-test/debian:bookworm AS base\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\n\
                 FROM base AS dev\nRUN echo dev > /stage\nFROM base AS prod\nRUN echo prod > /stage\n",
            ),
            (
                ".devcontainer/devcontainer.json",
                r#"{"build": {"dockerfile": "Dockerfile", "context": ".", "args": {"GREETING": "hello"}, "target": "dev"}}"#,
            ),
        ],
    );
    let r = s.up(&p, &id, &[]);
    assert_eq!(r["image"], format!("den-{id}:latest"));
    assert_eq!(exec(&container(&id), "cat /greeting /stage"), "hello\ndev\n");
    // `den build` builds without starting anything new
    let b = run(s.den().args(["build", "--output", "json", "--id", &id]).arg(&p));
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.stdout.contains(&format!("den-{id}:latest")), "{}", b.stdout);
}

#[test]
fn build_failure_shows_the_end_of_the_build_and_leaves_nothing() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("badbuild");
    let _c = s.cleanup(&id);
    let p = s.project(
        "badbuild",
        &[
            (
                ".devcontainer/Dockerfile",
                &format!("FROM den-test/debian:bookworm\nRUN echo going wrong {id} && exit 3\n"),
            ),
            (".devcontainer/devcontainer.json", r#"{"build": {"dockerfile": "Dockerfile"}}"#),
        ],
    );
    let r = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("building image den-{id}:latest failed")), "{}", r.stderr);
    assert!(r.stderr.contains("going wrong"), "the build's last lines: {}", r.stderr);
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists());
    let ps = docker(&["ps", "-a", "-q", "--filter", &format!("name=^den-{id}$")]);
    assert!(ps.trim().is_empty(), "no container: {ps}");
    // nor the builder's container of the failed step
    let all = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!all.contains(&format!("going wrong {id}")), "the failed step's container is left: {all}");
}

#[test]
fn lifecycle_hooks_once_and_every_start() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("hooks");
    let _c = s.cleanup(&id);
    let p = s.project(
        "hooks",
        &[(
            ".devcontainer/devcontainer.json",
            r#"{
              "image": "den-test/debian:bookworm",
              "initializeCommand": "echo init >> ${localWorkspaceFolder}/host-init.log",
              "onCreateCommand": "echo onCreate >> /tmp/hooks.log",
              "updateContentCommand": ["sh", "-c", "echo updateContent >> /tmp/hooks.log"],
              "postCreateCommand": {"one": "echo postCreate-one >> /tmp/hooks.log", "two": ["sh", "-c", "echo postCreate-two >> /tmp/hooks.log"]},
              "postStartCommand": "echo postStart >> /tmp/hooks.log",
              "postAttachCommand": "echo postAttach >> /tmp/hooks.log"
            }"#,
        )],
    );
    let log = || {
        let mut lines: Vec<String> = exec(&container(&id), "cat /tmp/hooks.log").lines().map(str::to_string).collect();
        // the two parallel commands may finish in either order
        lines.sort();
        lines
    };
    let count = |lines: &[String], what: &str| lines.iter().filter(|l| *l == what).count();

    let r = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("[postCreateCommand:one]"), "output is prefixed: {}", r.stderr);
    let l = log();
    for (hook, n) in [
        ("onCreate", 1),
        ("updateContent", 1),
        ("postCreate-one", 1),
        ("postCreate-two", 1),
        ("postStart", 1),
        ("postAttach", 1),
    ] {
        assert_eq!(count(&l, hook), n, "{hook} after the first up: {l:?}");
    }

    s.up(&p, &id, &[]);
    let l = log();
    assert_eq!((count(&l, "onCreate"), count(&l, "postStart"), count(&l, "postAttach")), (1, 1, 2), "{l:?}");

    assert_eq!(run(s.den().args(["stop", &id])).code, 0);
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "Stopped");
    let r = s.up(&p, &id, &[]);
    assert_eq!(r["started"], true);
    let l = log();
    assert_eq!(count(&l, "onCreate"), 1, "once per container: {l:?}");
    assert_eq!(count(&l, "updateContent"), 1, "{l:?}");
    assert_eq!(count(&l, "postCreate-one"), 1, "{l:?}");
    assert_eq!(count(&l, "postStart"), 2, "every start: {l:?}");
    assert_eq!(count(&l, "postAttach"), 3, "every attach: {l:?}");
    let host = std::fs::read_to_string(p.join("host-init.log")).unwrap();
    assert_eq!(host.lines().count(), 3, "initializeCommand runs on the host on every up: {host}");

    // the hook output is in the agent's log
    let logs = run(s.den().args(["logs", &id]));
    assert!(logs.stdout.contains("[onCreateCommand] running: echo onCreate"), "{}", logs.stdout);
}

#[test]
fn failing_hook_stops_up_with_its_code_and_name() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("failhook");
    let _c = s.cleanup(&id);
    let p = s.project(
        "failhook",
        &[(
            ".devcontainer.json",
            r#"{"image": "den-test/debian:bookworm", "onCreateCommand": "echo about to fail; exit 7", "postCreateCommand": "touch /tmp/never"}"#,
        )],
    );
    let r = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 7, "den exits with the hook's code: {}", r.stderr);
    assert!(r.stderr.contains("onCreateCommand failed with exit code 7"), "{}", r.stderr);
    assert!(r.stderr.contains("about to fail"), "{}", r.stderr);
    assert_eq!(exec(&container(&id), "test -e /tmp/never && echo yes || echo no").trim(), "no");
    // the container exists, so the workspace is recorded and can be deleted
    assert_eq!(run(s.den().args(["delete", &id])).code, 0);
    let ps = docker(&["ps", "-a", "-q", "--filter", &format!("name=^den-{id}$")]);
    assert!(ps.trim().is_empty(), "delete leaves no container: {ps}");
}

#[test]
fn non_root_remote_user_follows_the_folder_owner() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("uid");
    let _c = s.cleanup(&id);
    let p = s.project(
        "uid",
        &[
            ("Dockerfile", "FROM den-test/debian:bookworm\nRUN useradd -m -u 1000 -s /bin/bash dev && echo dotfile > /home/dev/.marker && chown dev:dev /home/dev/.marker\n"),
            (
                ".devcontainer.json",
                r#"{"build": {"dockerfile": "Dockerfile"}, "remoteUser": "dev",
                    "postCreateCommand": "id -u > /tmp/hook-uid; echo $HOME > /tmp/hook-home"}"#,
            ),
        ],
    );
    // The project folder belongs to 1234:1235 on the host.
    Command::new("chown").args(["-R", "1234:1235"]).arg(&p).status().unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().uid(), 1234);
    let r = s.up(&p, &id, &[]);
    assert_eq!(r["remoteUser"], "dev");
    let c = container(&id);
    assert_eq!(exec(&c, "id -u dev; id -g dev").trim(), "1234\n1235");
    assert_eq!(exec(&c, "stat -c %u /home/dev/.marker").trim(), "1234", "home follows");
    assert_eq!(exec(&c, "cat /tmp/hook-uid /tmp/hook-home").trim(), "1234\n/home/dev", "hooks run as the user");
}

#[test]
fn container_env_remote_env_and_mounts() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("env");
    let _c = s.cleanup(&id);
    let data = s.project("hostdata", &[("file.txt", "bind me")]);
    let config = format!(
        r#"{{
          "image": "den-test/debian:bookworm",
          "containerEnv": {{"FROM_CONTAINER": "c-value", "HOST_VAR": "${{localEnv:DEN_E2E_VAR}}"}},
          "remoteEnv": {{"FROM_REMOTE": "${{containerEnv:FROM_CONTAINER}}-r", "PATH": "${{containerEnv:PATH}}:/extra"}},
          "mounts": [
            "type=bind,source={},target=/data",
            {{"type": "volume", "source": "den-e2e-{id}", "target": "/vol"}}
          ],
          "postCreateCommand": "echo \"$FROM_CONTAINER $FROM_REMOTE $HOST_VAR $PATH\" > /tmp/env.txt"
        }}"#,
        data.display()
    );
    let p = s.project("envproj", &[(".devcontainer/devcontainer.json", &config)]);
    let r = run(s.den().args(["up", "--output", "json", "--id", &id]).arg(&p).env("DEN_E2E_VAR", "from-host"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = container(&id);
    let env = exec(&c, "cat /tmp/env.txt");
    assert!(env.starts_with("c-value c-value-r from-host "), "{env}");
    assert!(env.trim_end().ends_with(":/extra"), "{env}");
    // containerEnv is the container's, remoteEnv is not
    assert_eq!(docker(&["exec", &c, "printenv", "FROM_CONTAINER"]).trim(), "c-value");
    assert_eq!(exec(&c, "cat /data/file.txt"), "bind me");
    exec(&c, "echo persisted > /vol/x");
    let _ = docker(&["volume", "inspect", &format!("den-e2e-{id}")]);
    let _ = Command::new("docker").args(["rm", "-f", &c]).output();
    let _ = Command::new("docker").args(["volume", "rm", &format!("den-e2e-{id}")]).output();
}

#[test]
fn busybox_image_without_libc_gets_a_working_agent() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("busybox");
    let _c = s.cleanup(&id);
    let p = s.project(
        "bb",
        &[(
            ".devcontainer.json",
            r#"{"image": "den-test/busybox", "postCreateCommand": "echo ran > /tmp/ran", "remoteEnv": {"X": "1"}}"#,
        )],
    );
    let r = s.up(&p, &id, &[]);
    assert_eq!(r["agentUploaded"], false, "a local container mounts the agent");
    assert_eq!(exec(&container(&id), "cat /tmp/ran"), "ran\n");
    let again = s.up(&p, &id, &[]);
    assert_eq!(again["agentUploaded"], false);
}

#[test]
fn recreate_makes_a_new_container_and_reruns_create_hooks() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("recreate");
    let _c = s.cleanup(&id);
    let p = s.project(
        "re",
        &[(
            ".devcontainer.json",
            r#"{"image": "den-test/debian:bookworm", "onCreateCommand": "date +%s%N > /tmp/created"}"#,
        )],
    );
    s.up(&p, &id, &[]);
    let c = container(&id);
    let before = docker(&["inspect", "-f", "{{.Id}}", &c]);
    exec(&c, "touch /tmp/scratch");
    let r = s.up(&p, &id, &["--recreate"]);
    assert_eq!(r["created"], true);
    assert_ne!(docker(&["inspect", "-f", "{{.Id}}", &c]), before);
    assert_eq!(exec(&c, "test -e /tmp/scratch && echo kept || echo gone").trim(), "gone");
    assert_eq!(exec(&c, "test -s /tmp/created && echo yes").trim(), "yes");
    let r = s.up(&p, &id, &["--reset"]);
    assert_eq!(r["created"], true);
}

#[test]
fn delete_leaves_no_container_and_no_state() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("delete");
    let _c = s.cleanup(&id);
    let p = s.project("del", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    s.up(&p, &id, &[]);
    assert!(s.home().join(format!("contexts/default/workspaces/{id}/workspace.json")).exists());
    let r = run(s.den().args(["delete", &id]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ps = docker(&["ps", "-a", "-q", "--filter", &format!("label=den.workspace={id}")]);
    assert!(ps.trim().is_empty(), "{ps}");
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists());
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "NotFound");
    let again = run(s.den().args(["delete", &id]));
    assert_eq!(again.code, 4, "deleting what is not there: {}", again.stderr);
    assert!(again.stderr.contains(&format!("workspace `{id}` does not exist")), "{}", again.stderr);
}

#[test]
fn unreachable_engine_is_a_clear_error() {
    let s = Sandbox::new();
    let id = unique_id("noengine");
    let p = s.project("noengine", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s
        .den()
        .args(["up", "--id", &id, "--provider-option", "DOCKER_HOST=unix:///tmp/den-no-engine.sock"])
        .arg(&p));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("Cannot reach the Docker engine at unix:///tmp/den-no-engine.sock: is dockerd running?"),
        "{}",
        r.stderr
    );
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists(), "nothing half-written");
}

#[test]
fn malformed_config_is_located_and_creates_nothing() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("malformed");
    let _c = s.cleanup(&id);
    let p = s.project(
        "bad",
        &[(".devcontainer/devcontainer.json", "{\n  \"image\": \"den-test/busybox\",\n  \"forwardPorts\": \"x\"\n}\n")],
    );
    let r = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("devcontainer.json:3:19: property `forwardPorts`"), "{}", r.stderr);
    let ps = docker(&["ps", "-a", "-q", "--filter", &format!("label=den.workspace={id}")]);
    assert!(ps.trim().is_empty(), "{ps}");
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists());
}

#[test]
fn missing_image_is_a_clear_error() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("noimage");
    let _c = s.cleanup(&id);
    let p = s.project("noimage", &[(".devcontainer.json", r#"{"image": "den-test/does-not-exist:1"}"#)]);
    let r = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("image den-test/does-not-exist:1 is not present locally"), "{}", r.stderr);
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists());
}

#[test]
fn folder_without_config_uses_the_fallback_image() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("fallback");
    let _c = s.cleanup(&id);
    let p = s.project("plain", &[("README", "no devcontainer here")]);
    let r = s.up(&p, &id, &["--fallback-image", "den-test/busybox"]);
    assert_eq!(r["image"], "den-test/busybox");
    assert_eq!(exec(&container(&id), "cat /workspaces/plain/README"), "no devcontainer here");
}

#[test]
fn a_second_den_waits_and_status_says_busy() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("busy");
    let _c = s.cleanup(&id);
    let p = s
        .project("busy", &[(".devcontainer.json", r#"{"image": "den-test/busybox", "postCreateCommand": "sleep 3"}"#)]);
    let mut first = s.den().args(["up", "--id", &id]).arg(&p).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Bounded wait until the first den holds the lock.
    let mut saw_busy = false;
    for _ in 0..100 {
        if run(s.den().args(["status", &id])).stdout.trim() == "Busy" {
            saw_busy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(saw_busy, "status should say Busy while up runs");
    let second = run(s.den().args(["up", "--id", &id]).arg(&p));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("waiting for another den"), "{}", second.stderr);
    assert!(first.wait().unwrap().success());
}

#[test]
fn read_only_image_gets_the_agent_in_tmp() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("readonly");
    let _c = s.cleanup(&id);
    let p = s.project(
        "ro",
        &[(
            ".devcontainer.json",
            r#"{"image": "den-test/busybox", "runArgs": ["--read-only", "--tmpfs", "/tmp:exec"], "postCreateCommand": "echo ok > /tmp/ok"}"#,
        )],
    );
    assert_eq!(s.up(&p, &id, &[])["agentUploaded"], false, "the agent is mounted");
    let c = container(&id);
    assert_eq!(exec(&c, "cat /tmp/ok; test -e /tmp/den-agent/den && echo there || echo absent"), "ok\nabsent\n");
    // An upgraded den uploads its agent: /usr/local/bin is read-only and the
    // mounted agent is never written, so it goes to /tmp.
    let new = crate::agent_mount::upgraded_den(&s);
    let r = run(crate::agent_mount::den_at(&s, &new).args(["up", "--output", "json", "--id", &id]).arg(&p));
    assert_eq!(r.json()["agentUploaded"], true, "{}", r.stderr);
    assert_eq!(exec(&c, "ls /tmp/den-agent/den"), "/tmp/den-agent/den\n");
    assert_eq!(exec(&c, "test -e /usr/local/bin/den && echo there || echo absent").trim(), "absent");
}

#[test]
fn debug_shows_every_command() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("debug");
    let _c = s.cleanup(&id);
    let p = s.project("dbg", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["--debug", "up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("run: docker inspect --type container den-{id}")), "{}", r.stderr);
    assert!(r.stderr.contains("run: docker run -d --name"), "{}", r.stderr);
    assert!(r.stderr.contains("run: docker exec -i -u 0"), "{}", r.stderr);
}

#[test]
fn inactivity_timeout_stops_an_idle_container_but_not_a_busy_one() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("idle");
    let _c = s.cleanup(&id);
    let p = s.project("idle", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    s.up(&p, &id, &["--provider-option", "INACTIVITY_TIMEOUT=3s"]);
    // A session keeps it alive past the timeout…
    let o = s.den().args(["ssh", &id, "--command", "sleep 5; echo still-here"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "still-here\n", "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "Running");
    // …and without one it stops (bounded wait).
    let start = std::time::Instant::now();
    loop {
        let st = run(s.den().args(["status", &id])).stdout.trim().to_string();
        if st == "Stopped" {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "still {st} after 20 s idle");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // `den up` brings it back, with the watcher again.
    let r = s.up(&p, &id, &[]);
    assert_eq!(r["started"], true);
}

#[test]
fn a_container_of_another_den_home_is_not_taken_over() {
    require_engine();
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let id = unique_id("twohomes");
    let _c = a.cleanup(&id);
    let pa = a.project("one", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    a.up(&pa, &id, &[]);
    let pb = b.project("two", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(b.den().args(["up", "--id", &id]).arg(&pb));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("belongs to another den state folder"), "{}", r.stderr);
    assert!(!b.home().join(format!("contexts/default/workspaces/{id}")).exists());
    // nor deleted by it
    let r = run(b.den().args(["delete", &id]));
    assert_eq!(r.code, 4, "{}", r.stderr);
    // the first one is untouched
    let st = run(a.den().args(["status", &id]));
    assert_eq!(st.stdout.trim(), "Running");
}

/// Every project in examples/ comes up and goes again, as the README says
/// it does (a copy of each, so the repository stays clean).
#[test]
fn every_example_comes_up() {
    require_engine();
    let s = Sandbox::new();
    let examples = repo_root().join("examples");
    let mut names: Vec<String> =
        std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let copy = s.path().join(&name);
        let st = Command::new("cp").arg("-a").arg(examples.join(&name)).arg(&copy).status().unwrap();
        assert!(st.success());
        let id = unique_id(&format!("ex-{name}"));
        let _c = s.cleanup(&id);
        let r = run(s.den().args(["up", "--ide", "none", "--id", &id]).arg(&copy));
        assert_eq!(r.code, 0, "example {name}:\n{}", r.stderr);
        run(s.den().args(["delete", &id])).assert_ok();
    }
}

/// A DOCKER_PATH that runs docker, and before `run` first touches `marker`
/// and runs `before_run` (after a second's sleep: a slow engine).
fn slow_run_wrapper(dir: &std::path::Path, before_run: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("run-reached");
    let path = dir.join("slow-docker");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = run ]; then : > '{}'; sleep 1; {before_run}; fi\nexec docker \"$@\"\n",
        marker.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path, marker)
}

/// Waits (bounded) until `f` holds.
fn wait_for(what: &str, secs: u64, f: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < std::time::Duration::from_secs(secs), "{what}: not within {secs} s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_up_killed_during_docker_run_leaves_a_container_the_next_up_adopts() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("killed");
    let _c = s.cleanup(&id);
    let p = s.project(
        "killed",
        &[(".devcontainer.json", r#"{"image": "den-test/busybox", "postCreateCommand": "echo made > /tmp/created"}"#)],
    );
    let (wrapper, marker) = slow_run_wrapper(s.path(), ":");
    let opt = format!("DOCKER_PATH={}", wrapper.display());
    for second_is_slow in [false, true] {
        let _ = std::fs::remove_file(&marker);
        let mut first = s
            .den()
            .args(["up", "--ide", "none", "--id", &id, "--provider-option", &opt])
            .arg(&p)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the first up reaches `docker run`", 30, || marker.exists());
        std::thread::sleep(std::time::Duration::from_millis(500));
        first.kill().unwrap();
        first.wait().unwrap();
        let second = if second_is_slow {
            // Before the container is there: this up's own `docker run`
            // finds the name taken.
            s.den().args(["up", "--ide", "none", "--id", &id, "--provider-option", &opt]).arg(&p).output().unwrap()
        } else {
            wait_for("the container of the killed up", 20, || container_running(&container(&id)).is_some());
            s.den().args(["up", "--ide", "none", "--id", &id]).arg(&p).output().unwrap()
        };
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(second.status.success(), "slow second up: {second_is_slow}\n{err}");
        assert!(err.contains("left by an interrupted up"), "{err}");
        run(s.den().args(["ssh", &id, "--", "true"])).assert_ok();
        assert_eq!(exec(&container(&id), "cat /tmp/created"), "made\n", "setup and hooks ran");
        run(s.den().args(["delete", &id])).assert_ok();
    }
}

#[test]
fn a_container_of_another_den_home_made_during_docker_run_is_refused_and_kept() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("raced");
    let _c = s.cleanup(&id);
    let name = container(&id);
    let p = s.project("raced", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    // Another den home's container of that name appears while this up's
    // `docker run` is on its way.
    let other = format!(
        "docker create --name {name} --label den.home=0123456789abcdef --label den.workspace={id} den-test/busybox >/dev/null"
    );
    let (wrapper, _) = slow_run_wrapper(s.path(), &other);
    let r = run(s
        .den()
        .args(["up", "--ide", "none", "--id", &id, "--provider-option"])
        .arg(format!("DOCKER_PATH={}", wrapper.display()))
        .arg(&p));
    let kept = docker(&["inspect", "-f", "{{index .Config.Labels \"den.home\"}}", &name]);
    let _ = docker(&["rm", "-f", &name]);
    r.assert_code(1);
    assert!(r.stderr.contains("belongs to another den state folder"), "{}", r.stderr);
    assert_eq!(kept.trim(), "0123456789abcdef", "the other home's container is left as it was");
    assert!(!s.home().join(format!("contexts/default/workspaces/{id}")).exists());
}
