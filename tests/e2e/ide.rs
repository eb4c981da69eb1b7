//! Opening the IDE. No editor runs on these machines, so the editors are
//! recording stand-ins (named as such): scripts on PATH under the editors'
//! names that write the arguments den gave them. What is checked is den's
//! side: which program, with exactly which arguments.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{require_engine, run, Sandbox};

/// Recording stand-ins for `names` in a folder of their own; each writes
/// its arguments, one per line, to `<folder>/<name>.args`.
fn standins(dir: &Path, names: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("standin-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for n in names {
        let p = bin.join(n);
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}.args.tmp' && mv '{0}.args.tmp' '{0}.args'\n",
            bin.join(n).display()
        );
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// The arguments a stand-in got (it runs detached from den: bounded wait).
fn args_of(bin: &Path, name: &str) -> Vec<String> {
    let file = bin.join(format!("{name}.args"));
    let start = Instant::now();
    while !file.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "{name} was never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    text.lines().map(str::to_string).collect()
}

fn path_with(bin: &Path) -> String {
    format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", bin.display())
}

#[test]
fn up_and_open_start_the_chosen_ide_with_its_arguments() {
    require_engine();
    let s = Sandbox::new();
    let bin = standins(s.path(), &["code", "cursor", "zed", "xdg-open"]);
    let ws = s.workspace("ideproj", r#"{"image": "den-test/busybox"}"#);
    let (id, folder) = (ws.id.clone(), "/workspaces/ideproj");
    run(ws.up_cmd(&["--ide", "vscode"]).env("PATH", path_with(&bin))).assert_ok();
    assert_eq!(args_of(&bin, "code"), ["--folder-uri", &format!("vscode-remote://ssh-remote+{id}.den{folder}")]);

    run(s.den().args(["open", &id, "--ide", "cursor"]).env("PATH", path_with(&bin))).assert_ok();
    assert_eq!(args_of(&bin, "cursor"), ["--folder-uri", &format!("vscode-remote://ssh-remote+{id}.den{folder}")]);

    run(s.den().args(["open", &id, "--ide", "goland"]).env("PATH", path_with(&bin))).assert_ok();
    assert_eq!(
        args_of(&bin, "xdg-open"),
        [format!(
            "jetbrains-gateway://connect#type=ssh&deploy=true&host={id}.den&port=22&user=root&projectPath=%2Fworkspaces%2Fideproj&productCode=GO"
        )]
    );

    // The default of the context, for up and open alike.
    run(s.den().args(["ide", "use", "zed"])).assert_ok();
    let list = run(s.den().args(["ide", "list", "--output", "json"])).assert_ok().json();
    let zed = list.as_array().unwrap().iter().find(|i| i["name"] == "zed").unwrap();
    assert_eq!(zed["default"], true);
    run(ws.up_cmd(&["--open-ide=false"]).env("PATH", path_with(&bin))).assert_ok();
    // The stand-in would have written within milliseconds of its start.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!bin.join("zed.args").exists(), "--open-ide=false opened it all the same");
    run(ws.up_cmd(&[]).env("PATH", path_with(&bin))).assert_ok();
    assert_eq!(args_of(&bin, "zed"), [format!("ssh://root@{id}.den{folder}")]);
}

#[test]
fn a_missing_ide_is_said_and_up_still_succeeds() {
    require_engine();
    let s = Sandbox::new();
    let bin = standins(s.path(), &[]);
    let ws = s.workspace("noide", r#"{"image": "den-test/busybox"}"#);
    let r = run(ws.up_cmd(&["--ide", "vscode"]).env("PATH", path_with(&bin)).env("HOME", s.path()));
    r.assert_ok();
    assert!(r.stderr.contains("Visual Studio Code was not found (looked for "), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("ssh {}.den", ws.id)), "{}", r.stderr);
    assert!(r.stderr.contains("vscode-remote://ssh-remote+"), "{}", r.stderr);
    let r = ws.up(&["--ide", "notepad"]);
    r.assert_code(1);
    assert!(r.stderr.contains("there is no IDE `notepad`"), "{}", r.stderr);
}

/// What VS Code's Remote-SSH extension does on connecting, with the real
/// OpenSSH client through the Host block den wrote: `ssh -T -D PORT ID.den
/// bash` with a script on stdin that looks at the system and the home,
/// makes ~/.vscode-server, starts a server, and `exec`s a long-lived
/// process; the editor then reaches the server through the -D SOCKS proxy.
#[test]
fn a_remote_ssh_session_as_vs_code_opens_it() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace("remotessh", r#"{"image": "den-test/debian:bookworm"}"#);
    ws.up(&[]).assert_ok();
    // A small HTTP server for the workspace (busybox's, copied in).
    crate::common::docker(&["cp", "/bin/busybox", &format!("{}:/usr/local/bin/busybox", ws.container())]);
    crate::common::exec(&ws.container(), "mkdir -p /tmp/www && echo hello-socks > /tmp/www/index.html");
    let socks = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut ssh = Command::new("ssh")
        .arg("-F")
        .arg(s.path().join("ssh_config"))
        .args(["-T", "-o", "BatchMode=yes", "-D", &format!("127.0.0.1:{socks}"), &format!("{}.den", ws.id), "bash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = "uname -s\necho \"HOME=$HOME\"\nmkdir -p \"$HOME/.vscode-server/bin\" && touch \"$HOME/.vscode-server/.probe\" && echo writable\n\
        busybox httpd -p 127.0.0.1:8123 -h /tmp/www\necho ready\nexec sleep 60\n";
    ssh.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let mut lines = BufReader::new(ssh.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let start = Instant::now();
    while !seen.iter().any(|l: &String| l == "ready") {
        assert!(start.elapsed() < Duration::from_secs(30), "no ready: {seen:?}");
        match lines.next() {
            Some(Ok(l)) => seen.push(l),
            _ => panic!("the session ended early: {seen:?}"),
        }
    }
    assert_eq!(seen, ["Linux", "HOME=/root", "writable", "ready"]);
    // Through the SOCKS proxy of the same connection, as the editor does.
    let mut body = String::new();
    for _ in 0..50 {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                "--socks5-hostname",
                &format!("127.0.0.1:{socks}"),
                "http://127.0.0.1:8123/",
            ])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains("hello-socks") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = ssh.kill();
    let _ = ssh.wait();
    assert_eq!(body.trim(), "hello-socks");
}

/// `customizations.vscode.settings` reach the VS Code family servers'
/// machine settings in the workspace, owned by the remote user.
#[test]
fn vscode_settings_reach_the_servers_machine_settings() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace(
        "vssettings",
        r#"{"build": {"dockerfile": "Dockerfile"}, "remoteUser": "dev",
            "customizations": {"vscode": {"settings": {"editor.tabSize": 3, "files.eol": "\n"}}}}"#,
    );
    std::fs::write(
        ws.folder.join(".devcontainer/Dockerfile"),
        "FROM den-test/debian:bookworm\nRUN useradd -m -s /bin/bash dev\n",
    )
    .unwrap();
    ws.up(&[]).assert_ok();
    let c = ws.container();
    for dir in [".vscode-server", ".cursor-server"] {
        let file = format!("/home/dev/{dir}/data/Machine/settings.json");
        let text = crate::common::exec(&c, &format!("cat {file}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, serde_json::json!({"editor.tabSize": 3, "files.eol": "\n"}), "{dir}");
        assert_eq!(crate::common::exec(&c, &format!("stat -c %U {file} /home/dev/{dir}")), "dev\ndev\n");
    }
}
