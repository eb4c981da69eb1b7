//! Where den must do what the reference CLI (devcontainers/cli) does, and
//! the rough edges a newcomer hits first.

use std::process::Command;

use crate::common::{exec, require_engine, run, Sandbox};

/// A Dockerfile's `ENV PATH=…:$PATH` reaches a non-root user's hooks, `den
/// ssh` and OpenSSH sessions, though a login shell resets PATH for them.
#[test]
fn a_non_root_user_keeps_the_images_path() {
    require_engine();
    let s = Sandbox::new();
    let dockerfile = "FROM den-test/debian:bookworm\n\
        RUN useradd -m -s /bin/bash dev && mkdir -p /opt/tool/bin \
        && printf '#!/bin/sh\\necho tool-ran\\n' > /opt/tool/bin/mytool && chmod +x /opt/tool/bin/mytool\n\
        ENV PATH=/opt/tool/bin:$PATH\n";
    let ws = s.workspace(
        "imagepath",
        r#"{"build": {"dockerfile": "Dockerfile"}, "remoteUser": "dev", "postCreateCommand": "mytool > /tmp/hook-tool"}"#,
    );
    std::fs::write(ws.folder.join(".devcontainer/Dockerfile"), dockerfile).unwrap();
    ws.up(&[]).assert_ok();
    assert_eq!(exec(&ws.container(), "cat /tmp/hook-tool"), "tool-ran\n", "the hook finds it");
    let r = run(s.den().args(["ssh", &ws.id, "--", "mytool"]));
    assert_eq!(r.assert_ok().stdout, "tool-ran\n");
    let path = run(s.den().args(["ssh", &ws.id, "--command", "echo $PATH"]));
    let path = path.assert_ok().stdout.trim().to_string();
    assert!(path.starts_with("/opt/tool/bin:"), "{path}");
    assert!(!path.split(':').any(|p| p.ends_with("sbin")), "no sbin for a non-root user: {path}");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(s.path().join("ssh_config"))
        .args(["-o", "BatchMode=yes", &format!("{}.den", ws.id), "mytool"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tool-ran\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// With no `build.context`, the Dockerfile's own folder is the context (as
/// the reference CLI and DevPod build), not the config's folder.
#[test]
fn a_dockerfile_outside_the_config_folder_builds_from_its_own_folder() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("ctx", r#"{"build": {"dockerfile": "../Dockerfile"}}"#);
    std::fs::write(ws.folder.join("Dockerfile"), "FROM den-test/busybox\nCOPY scripts /scripts\n").unwrap();
    std::fs::create_dir_all(ws.folder.join("scripts")).unwrap();
    std::fs::write(ws.folder.join("scripts/hello.sh"), "echo hello\n").unwrap();
    ws.up(&[]).assert_ok();
    assert_eq!(exec(&ws.container(), "cat /scripts/hello.sh"), "echo hello\n");
}

/// An engine den cannot reach, or a docker CLI that is not there, is exit
/// code 3 with a message, for `den list` as for `den status`, never a list
/// of `NotFound`s with exit 0.
#[test]
fn an_unreachable_engine_or_missing_cli_is_exit_3_everywhere() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("noengine-list", r#"{"image": "den-test/busybox"}"#);
    ws.up(&[]).assert_ok();
    let set = |kv: &str| run(s.den().args(["provider", "set-options", "docker", "-o", kv])).assert_ok().code;
    set("DOCKER_HOST=unix:///tmp/den-no-engine.sock");
    let r = run(s.den().args(["list"]));
    r.assert_code(3);
    // The row is there all the same: the list is how one finds it to fix.
    assert!(r.stdout.contains(&ws.id) && r.stdout.contains("Unreachable"), "{}", r.stdout);
    assert!(r.stderr.contains("Cannot reach the Docker engine at unix:///tmp/den-no-engine.sock"), "{}", r.stderr);
    run(s.den().args(["status", &ws.id])).assert_code(3);
    set("DOCKER_HOST=");
    set("DOCKER_PATH=/nonexistent/docker");
    let r = run(s.den().args(["list"]));
    r.assert_code(3);
    assert!(r.stderr.contains("`/nonexistent/docker` was not found"), "{}", r.stderr);
    run(s.den().args(["status", &ws.id])).assert_code(3);
    set("DOCKER_PATH=docker");
    run(s.den().args(["list"])).assert_ok();
}

/// A folder name that is not an id gives one den accepts, and den says
/// which.
#[test]
fn a_unicode_folder_name_gives_a_valid_id() {
    require_engine();
    let s = Sandbox::new();
    let folder = s.project("Ünïcødé-名前", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let id = "unicode-ming-qian";
    let _c = s.cleanup(id);
    let r = run(s.den().arg("up").arg(&folder));
    r.assert_ok();
    assert!(r.stderr.contains("workspace id `unicode-ming-qian` (from the folder name `Ünïcødé-名前`"), "{}", r.stderr);
    assert_eq!(run(s.den().args(["status", id])).assert_ok().stdout.trim(), "Running");
}

/// A manifest named like a built-in provider does not silently replace it.
#[test]
fn adding_a_provider_named_like_a_builtin_needs_force() {
    let s = Sandbox::new();
    let dir = s.project("shadow", &[("provider.yaml", "name: docker\nversion: v9\nexec:\n  command: echo mine\n")]);
    let builtin = |s: &Sandbox| {
        let list = run(s.den().args(["provider", "list", "--output", "json"])).assert_ok().json();
        list.as_array().unwrap().iter().find(|p| p["name"] == "docker").unwrap()["builtin"].clone()
    };
    let r = run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml")));
    r.assert_code(1);
    assert!(r.stderr.contains("like den's built-in provider") && r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(builtin(&s), true);
    run(s.den().args(["provider", "add", "--force"]).arg(dir.join("provider.yaml"))).assert_ok();
    assert_eq!(builtin(&s), false);
}

/// `exec.init` runs for a provider on this machine's engine too (as
/// docs/providers.md says), once per set of option values.
#[test]
fn exec_init_runs_for_a_local_provider() {
    require_engine();
    let s = Sandbox::new();
    let marker = s.path().join("init-ran");
    let manifest = format!(
        "name: localinit\nversion: v1\noptions:\n  MARK:\n    default: {}\n  FLAVOUR:\n    default: a\nagent:\n  local: true\n  driver: docker\nexec:\n  init: echo \"$FLAVOUR\" >> \"$MARK\"\n",
        marker.display()
    );
    let dir = s.project("localinit-provider", &[("provider.yaml", &manifest)]);
    run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml"))).assert_ok();
    let ws = s.workspace("localinit", r#"{"image": "den-test/busybox"}"#);
    ws.up(&["--provider", "localinit"]).assert_ok();
    ws.up(&["--provider", "localinit"]).assert_ok();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "a\n", "once per set of option values");
    ws.up(&["--provider", "localinit", "--provider-option", "FLAVOUR=b"]).assert_ok();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "a\nb\n", "again when they change");
}

/// `den completion bash` prints a script bash accepts and that completes
/// den's commands.
#[test]
fn bash_completion_completes_commands() {
    let s = Sandbox::new();
    let script = run(s.den().args(["completion", "bash"])).assert_ok().stdout.clone();
    let file = s.path().join("den.bash");
    std::fs::write(&file, script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(den pro); COMP_CWORD=1; COMP_LINE='den pro'; COMP_POINT=7; _den den pro den; echo \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "provider", "{}", String::from_utf8_lossy(&out.stderr));
    for shell in ["zsh", "fish", "powershell"] {
        assert!(!run(s.den().args(["completion", shell])).assert_ok().stdout.is_empty(), "{shell}");
    }
}

/// A command asked for `--output json` answers in JSON on failure too: a
/// script reads what failed and what the exit code means.
#[test]
fn json_output_reports_failures_as_json() {
    let s = Sandbox::new();
    let r = run(s.den().args(["status", "nope", "--output", "json"]));
    r.assert_ok();
    let r = run(s.den().args(["up", "--output", "json", "--id", "x"]).arg(s.path().join("missing")));
    r.assert_code(1);
    let e = &r.json()["error"];
    assert_eq!(e["exitCode"], 1);
    assert_eq!(e["kind"], "failure");
    assert!(e["message"].as_str().unwrap().contains("missing"), "{e}");
    let bad = s.project("badjson", &[(".devcontainer.json", "{\n  \"image\": 1\n}\n")]);
    let r = run(s.den().args(["read-config", "--output", "json"]).arg(&bad));
    r.assert_code(1);
    let e = &r.json()["error"];
    assert_eq!(e["kind"], "bad-config");
    assert!(e["message"].as_str().unwrap().contains(".devcontainer.json:2:"), "{e}");
    let r = run(s
        .den()
        .args(["up", "--output", "json", "--provider-option", "DOCKER_HOST=unix:///tmp/den-none.sock"])
        .arg(&bad));
    r.assert_code(1);
    assert_eq!(r.json()["error"]["kind"], "bad-config");
}

/// A failed `up` does not save the provider options it was given, and an
/// engine error names where the option that pointed at it came from.
#[test]
fn a_failed_up_keeps_no_options_and_names_their_source() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("optsource", r#"{"image": "den-test/busybox"}"#);
    let bad = "DOCKER_HOST=unix:///tmp/den-no-engine.sock";
    let r = ws.up(&["--provider-option", bad]);
    r.assert_code(3);
    assert!(
        r.stderr.contains("DOCKER_HOST=\"unix:///tmp/den-no-engine.sock\" was given with --provider-option"),
        "{}",
        r.stderr
    );
    let opts = run(s.den().args(["provider", "options", "docker", "--output", "json"])).assert_ok().json();
    assert_ne!(opts["DOCKER_HOST"]["source"], "user", "the failed up saved it: {opts}");
    ws.up(&[]).assert_ok();

    run(s.den().args(["provider", "set-options", "docker", "-o", bad])).assert_ok();
    let r = ws.up(&[]);
    r.assert_code(3);
    assert!(r.stderr.contains("comes from the options saved for provider `docker`"), "{}", r.stderr);
    run(s.den().args(["provider", "set-options", "docker", "-o", "DOCKER_HOST="])).assert_ok();
}

/// A failed `up` of a workspace that never came to be leaves no lock file
/// (nor options, nor a record) behind.
#[test]
fn a_failed_up_leaves_no_lock_file() {
    let s = Sandbox::new();
    let bad = s.project("lockless", &[(".devcontainer.json", "{\n  \"image\": 1\n}\n")]);
    run(s.den().args(["up", "--id", "lockless", "--provider-option", "DOCKER_HOST=unix:///x.sock"]).arg(&bad))
        .assert_code(1);
    let locks = s.home().join("contexts/default/locks");
    let left: Vec<_> =
        std::fs::read_dir(&locks).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!s.home().join("contexts/default/workspaces/lockless").exists());
    let opts = run(s.den().args(["provider", "options", "docker", "--output", "json"])).assert_ok().json();
    assert_ne!(opts["DOCKER_HOST"]["source"], "user", "{opts}");
}

/// A container removed behind den's back: `den logs` and `den stop` say so
/// and how to make it again, and `den ssh` makes it again (as it starts a
/// stopped one). A session whose container is killed under it says what
/// happened instead of exiting 255 in silence.
#[test]
fn a_container_gone_or_killed_under_den_is_said() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("gone", r#"{"image": "den-test/busybox"}"#);
    ws.up(&[]).assert_ok();
    crate::common::docker(&["rm", "-f", &ws.container()]);
    let r = run(s.den().args(["logs", &ws.id]));
    r.assert_code(1);
    assert!(r.stderr.contains("has no container any more") && r.stderr.contains("den up"), "{}", r.stderr);
    let r = run(s.den().args(["stop", &ws.id]));
    r.assert_ok();
    assert!(r.stderr.contains("has no container any more") && r.stderr.contains("nothing to stop"), "{}", r.stderr);
    let r = run(s.den().args(["ssh", &ws.id, "--", "echo", "back"]));
    assert_eq!(r.assert_ok().stdout, "back\n");

    let mut session = s
        .den()
        .args(["ssh", &ws.id, "--", "sleep", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    crate::common::docker(&["kill", &ws.container()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while session.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "den ssh did not notice the container going");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = session.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ended before the command did") && stderr.contains("den ssh"), "{stderr}");
}

/// `den man` prints a man page that names den's commands.
#[test]
fn man_page_names_the_commands() {
    let s = Sandbox::new();
    let page = run(s.den().arg("man")).assert_ok().stdout.clone();
    assert!(page.contains(".TH den 1") && page.contains(".SH SUBCOMMANDS"), "{}", &page[..page.len().min(300)]);
    for cmd in ["up", "ssh", "provider", "completion"] {
        assert!(page.contains(&format!("den\\-{cmd}(1)")), "{cmd} missing");
    }
}

/// A workspace brought up under den's earlier id rule keeps its id: `den
/// up FOLDER` finds it rather than making a second one.
#[test]
fn a_workspace_made_under_the_earlier_id_rule_is_found_again() {
    require_engine();
    let s = Sandbox::new();
    let folder = s.project("my_app_", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let _c = s.cleanup("my-app-");
    let _c2 = s.cleanup("my-app");
    // What an earlier den derived for this folder.
    run(s.den().args(["up", "--id", "my-app-"]).arg(&folder)).assert_ok();
    run(s.den().arg("up").arg(&folder)).assert_ok();
    let list = run(s.den().args(["list", "--output", "json"])).assert_ok().json();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["my-app-"]);
}

/// Options an up made a container with stay, even when a hook then fails:
/// they say which engine the container is on.
#[test]
fn options_stay_when_the_failed_up_made_a_container() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("optstay", r#"{"image": "den-test/busybox", "postCreateCommand": "exit 7"}"#);
    ws.up(&["--provider-option", "DOCKER_HOST=unix:///var/run/docker.sock"]).assert_code(7);
    let opts = run(s.den().args(["provider", "options", "docker", "--output", "json"])).assert_ok().json();
    assert_eq!(opts["DOCKER_HOST"]["value"], "unix:///var/run/docker.sock", "{opts}");
    run(s.den().args(["provider", "set-options", "docker", "-o", "DOCKER_HOST="])).assert_ok();
}
