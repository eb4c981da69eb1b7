//! Hostile input and busy machines: folder names that try to add mount
//! fields, shell text in paths that reach the ProxyCommand, manifests that
//! aim outside their folder, configs that nest too deep, secrets in the
//! container, an `up` killed during a hook, and a dozen dens at once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{container, docker, exec, require_engine, run, unique_id, Sandbox};

fn busybox_project(s: &Sandbox, name: &str) -> std::path::PathBuf {
    s.project(name, &[(".devcontainer/devcontainer.json", r#"{"image": "den-test/busybox"}"#), ("marker", "project")])
}

#[test]
fn folder_names_with_csv_and_shell_characters_mount_only_the_project() {
    require_engine();
    let s = Sandbox::new();
    // A folder the hostile names point at: it must never be mounted.
    let secret = s.project("secret", &[("secret.txt", "host secret")]);
    let names = [
        format!("y,source={}", secret.display()),
        "x,readonly".to_string(),
        "q\"uote".to_string(),
        "eq=a b".to_string(),
        "new\nline".to_string(),
    ];
    for (i, name) in names.iter().enumerate() {
        let id = unique_id(&format!("csv{i}"));
        let _c = s.cleanup(&id);
        let folder = busybox_project(&s, &format!("p{i}/{name}"));
        s.up(&folder, &id, &[]);
        let mounts = docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Source}}|{{.Destination}}|{{.RW}}\n{{end}}",
            &container(&id),
        ]);
        let basename = folder.file_name().unwrap().to_string_lossy().into_owned();
        // Besides the project, only den's own: the agent's copy (read-only)
        // and the workspace's direct-line folder (docs/line.md).
        let agent = mounts.lines().find(|l| l.contains("|/usr/local/lib/den-agent|")).unwrap_or_default().to_string();
        assert!(agent.starts_with(&format!("{}/", s.home().join("agents").display())), "{mounts}");
        assert!(agent.ends_with("|false"), "{mounts}");
        let line = s.home().join("contexts/default/workspaces").join(&id).join("line");
        let own = [agent.clone(), format!("{}|/run/den|true", line.display())];
        assert!(mounts.lines().any(|l| l == own[1]), "{mounts}");
        // (the project's own line may hold newlines: cut den's out instead)
        let project = own.iter().fold(mounts.clone(), |m, o| m.replacen(&format!("{o}\n"), "", 1));
        assert_eq!(
            project,
            format!("{}|/workspaces/{basename}|true\n\n", folder.display()),
            "folder {name:?} must be mounted as itself, read-write, and nothing else"
        );
        let inside = docker(&["exec", &container(&id), "cat", &format!("/workspaces/{basename}/marker")]);
        assert_eq!(inside, "project");
    }
}

/// Brings a busybox workspace up with `den` (a den whose state is not the
/// sandbox's own), then asks the real OpenSSH client to reach it through
/// the Host block den wrote, with no DEN_HOME in its environment; removes
/// the workspace either way. Returns what `echo reached` printed, ssh's
/// stderr, and the ssh config as den left it.
fn up_and_reach_with(s: &Sandbox, den: &dyn Fn() -> Command, name: &str) -> (String, String, String) {
    let id = unique_id(name);
    let folder = busybox_project(s, name);
    let r = run(den().args(["up", "--id", &id]).arg(&folder));
    let cleanup = || {
        let _ = den().args(["delete", "--force", &id]).output();
        let _ = Command::new("docker").args(["rm", "-f", &container(&id)]).output();
    };
    if r.code != 0 {
        cleanup();
        panic!("up failed: {}", r.stderr);
    }
    let cfg = s.path().join("ssh_config");
    let block = std::fs::read_to_string(&cfg).unwrap();
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .env_remove("DEN_HOME")
        .args(["-o", "BatchMode=yes", &format!("{id}.den"), "echo", "reached"])
        .output()
        .unwrap();
    cleanup();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (text(&out.stdout), text(&out.stderr), block)
}

#[test]
fn shell_text_in_den_home_never_runs_through_the_proxy_command() {
    require_engine();
    let s = Sandbox::new();
    let pwned1 = s.path().join("pwned1");
    let pwned2 = s.path().join("pwned2");
    let home =
        s.path().join(format!("h $(touch {}) `touch {}` %h %% 'q' \\ \"d\"", pwned1.display(), pwned2.display()));
    let den = || {
        let mut c = s.den();
        c.env("DEN_HOME", &home);
        c
    };
    let (reached, stderr, _) = up_and_reach_with(&s, &den, "proxy");
    assert_eq!(reached, "reached", "{stderr}");
    assert!(!pwned1.exists() && !pwned2.exists(), "text from DEN_HOME ran as a command");
}

#[test]
fn secrets_stay_out_of_labels_command_lines_and_other_users_reach() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace(
        "secretproj",
        r#"{"image": "den-test/busybox", "remoteEnv": {"TOKEN": "${localEnv:DEN_E2E_TOKEN}"}}"#,
    );
    let token = "tok-3f9a1c77e2";
    run(ws.up_cmd(&[]).env("DEN_E2E_TOKEN", token)).assert_ok();
    let (id, c) = (&ws.id, ws.container());
    // The session has it …
    let r = run(s.den().args(["ssh", id, "--command", "echo $TOKEN"]));
    assert_eq!(r.assert_ok().stdout.trim(), token);
    // … but nothing an onlooker reads does.
    assert!(!docker(&["inspect", &c]).contains(token), "the token is in docker inspect");
    let modes = exec(&c, "cd /var/lib/den && stat -c '%a %n' workspace.json probed-env.json agent.log");
    assert_eq!(modes, "600 workspace.json\n600 probed-env.json\n600 agent.log\n");
    let other = Command::new("docker")
        .args(["exec", "-u", "65534", &c, "cat", "/var/lib/den/workspace.json"])
        .output()
        .unwrap();
    assert!(!other.status.success(), "another user of the container read workspace.json");
}

#[test]
fn a_manifest_cannot_place_binaries_outside_its_folder() {
    let s = Sandbox::new();
    let target = s.path().join("outside-tool");
    for (i, name) in [target.display().to_string(), "../../../escaped".to_string()].iter().enumerate() {
        let dir = s.project(&format!("prov{i}"), &[("tool.sh", "#!/bin/sh\necho hi\n")]);
        let manifest = format!(
            "name: evil{i}\nversion: v1\nbinaries:\n  TOOL:\n    - os: linux\n      arch: amd64\n      path: tool.sh\n      name: '{name}'\nexec:\n  command: ${{TOOL}}\n"
        );
        std::fs::write(dir.join("provider.yaml"), manifest).unwrap();
        let r = run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml")));
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("binaries.TOOL[0].name"), "{}", r.stderr);
        let listed = run(s.den().args(["provider", "list"]));
        assert!(!listed.stdout.contains(&format!("evil{i}")), "a refused provider was added");
    }
    assert!(!target.exists());
    assert!(!s.path().join("escaped").exists() && !s.home().join("escaped").exists());

    // A good one is added, and every folder its first add made is 0700.
    let dir = s.project("good", &[("tool.sh", "#!/bin/sh\necho hi\n")]);
    let manifest = "name: good\nversion: v1\nbinaries:\n  TOOL:\n    - os: linux\n      arch: amd64\n      path: tool.sh\nexec:\n  command: ${TOOL}\n";
    std::fs::write(dir.join("provider.yaml"), manifest).unwrap();
    let r = run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut stack = vec![s.home()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        seen += 1;
        stack.extend(std::fs::read_dir(&d).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    assert!(seen >= 5, "the provider's folders were not made");
}

#[test]
fn a_deeply_nested_config_is_a_located_error_not_a_crash() {
    let s = Sandbox::new();
    let deep = format!("{{\"image\": \"den-test/busybox\", \"x\": {}{}}}", "[".repeat(20_000), "]".repeat(20_000));
    let folder = s.project("deep", &[(".devcontainer/devcontainer.json", &deep)]);
    for cmd in [&["read-config"][..], &["up", "--id", "deep-x"][..]] {
        let r = run(s.den().args(cmd).arg(&folder));
        r.assert_code(1);
        assert!(r.stderr.contains("devcontainer.json:1:163: arrays and objects nest deeper than 128"), "{}", r.stderr);
    }
    assert!(Command::new("docker")
        .args(["inspect", "den-deep-x"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true));
}

/// Polls (bounded) until `check` holds.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_up_ends_its_hook_and_the_next_up_runs_it_once() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("killhook");
    let _c = s.cleanup(&id);
    let folder = s.project(
        "killhook",
        &[(
            ".devcontainer/devcontainer.json",
            r#"{"image": "den-test/busybox",
                "postCreateCommand": "trap 'echo trapped >> /tmp/hook.log; exit 0' TERM; echo start >> /tmp/hook.log; sleep 3 & wait; echo end >> /tmp/hook.log"}"#,
        )],
    );
    let c = container(&id);
    let mut first =
        s.den().args(["up", "--id", &id]).arg(&folder).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let log = || {
        Command::new("docker")
            .args(["exec", &c, "cat", "/tmp/hook.log"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    wait_until("the hook to start", Duration::from_secs(60), || log().contains("start"));
    first.kill().unwrap();
    first.wait().unwrap();
    // The hook dies with its up: no `end` ever follows the first `start`.
    // It catches SIGTERM and exits 0, which must not count as done.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(log(), "start\ntrapped\n", "the hook outlived the up that ran it");
    s.up(&folder, &id, &[]);
    assert_eq!(log(), "start\ntrapped\nstart\nend\n", "the next up runs the hook once, to its end");
    s.up(&folder, &id, &[]);
    assert_eq!(log(), "start\ntrapped\nstart\nend\n", "and not again");
}

#[test]
fn a_dozen_ups_and_deletes_at_once_lose_no_ssh_config_entry() {
    require_engine();
    let s = Sandbox::new();
    let cfg = s.path().join("ssh_config");
    std::fs::write(&cfg, "# mine\nHost *\n  ServerAliveInterval 30\n").unwrap();
    let ids: Vec<String> = (0..12).map(|i| unique_id(&format!("many{i}"))).collect();
    let cleanups: Vec<_> = ids.iter().map(|id| s.cleanup(id)).collect();
    let folder = busybox_project(&s, "many");
    let spawn_all = |args: &dyn Fn(&str) -> Vec<String>| {
        let children: Vec<_> = ids
            .iter()
            .map(|id| s.den().args(args(id)).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        for (id, c) in ids.iter().zip(children) {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{id}: {}", String::from_utf8_lossy(&out.stderr));
        }
    };
    let f = folder.display().to_string();
    spawn_all(&|id| vec!["up".into(), "--id".into(), id.into(), f.clone()]);
    let text = std::fs::read_to_string(&cfg).unwrap();
    for id in &ids {
        assert!(text.contains(&format!("Host {id}.den\n")), "{id} has no Host block");
        let out = Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(["-o", "BatchMode=yes", &format!("{id}.den"), "echo", id])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id, "{}", String::from_utf8_lossy(&out.stderr));
    }
    spawn_all(&|id| vec!["delete".into(), id.into()]);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "# mine\nHost *\n  ServerAliveInterval 30\n");
    let pins = std::fs::read_to_string(s.home().join("known_hosts")).unwrap_or_default();
    assert_eq!(pins, "", "pins left after delete");
    drop(cleanups);
    assert!(Path::new(&cfg).exists());
}

/// `--home` is resolved once in the binary and handed down (no library
/// reads DEN_HOME again): the ProxyCommand still carries it, so OpenSSH
/// reaches a workspace whose state is not in the default place.
#[test]
fn a_home_given_by_flag_reaches_the_proxy_command() {
    require_engine();
    let s = Sandbox::new();
    let home = s.path().join("flag home");
    let den = || {
        let mut c = s.den();
        c.env_remove("DEN_HOME").arg("--home").arg(&home);
        c
    };
    let (reached, stderr, block) = up_and_reach_with(&s, &den, "flaghome");
    assert!(block.contains("--home '"), "{block}");
    assert_eq!(reached, "reached", "{stderr}");
    assert!(home.join("known_hosts").exists(), "state went elsewhere than --home");
}
