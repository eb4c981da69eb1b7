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
    let ws = s.workspace(
        "ideproj",
        r#"{"image": "den-test/busybox", "customizations": {"jetbrains": {"backend": "PyCharm"}}}"#,
    );
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
    // `jetbrains`: the product customizations.jetbrains.backend names.
    run(s.den().args(["open", &id, "--ide", "jetbrains"]).env("PATH", path_with(&bin))).assert_ok();
    assert!(args_of(&bin, "xdg-open")[0].ends_with("&productCode=PY"));

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

/// `customizations.vscode.extensions` are installed into a VS Code server
/// once it appears in the workspace, as Remote-SSH's default extensions
/// are: with the server's own `--install-extension`, as the remote user.
/// The server here is a recording stand-in at the place VS Code puts it.
#[test]
fn vscode_extensions_are_installed_into_servers_that_appear() {
    require_engine();
    let s = Sandbox::new();
    let ws = s.workspace(
        "vsext",
        r#"{"image": "den-test/busybox",
            "customizations": {"vscode": {"extensions": ["ms-python.python", "dbaeumer.vscode-eslint", "-dbaeumer.vscode-eslint", "golang.go"]}}}"#,
    );
    ws.up(&[]).assert_ok();
    let c = ws.container();
    crate::common::exec(
        &c,
        "mkdir -p /root/.vscode-server/bin/abc123/bin && printf '#!/bin/sh\\necho \"$(id -u) $*\" >> /tmp/installed\\n' > /root/.vscode-server/bin/abc123/bin/code-server && chmod +x /root/.vscode-server/bin/abc123/bin/code-server",
    );
    // A connection (as the editor's) starts the watcher.
    run(s.den().args(["ssh", &ws.id, "--", "true"])).assert_ok();
    let start = Instant::now();
    loop {
        let got = crate::common::exec(&c, "cat /tmp/installed 2>/dev/null || true");
        if !got.is_empty() {
            assert_eq!(got, "0 --install-extension ms-python.python --install-extension golang.go\n");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no extension was installed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once per server: another connection installs nothing again.
    run(s.den().args(["ssh", &ws.id, "--", "sleep", "2"])).assert_ok();
    assert_eq!(crate::common::exec(&c, "wc -l < /tmp/installed").trim(), "1");
}

/// An OpenVSCode Server archive made by the test (a stand-in: a script
/// that serves a page with busybox httpd on the port it is given, and
/// records its arguments), as a `.tar.gz` with the release's top folder.
fn openvscode_standin(dir: &Path) -> (PathBuf, String) {
    use sha2::Digest;
    let root = dir.join("openvscode-server-v0.0.0-linux-x64");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let script = "#!/bin/sh\necho \"$@\" > /tmp/ovs-args\nwhile [ $# -gt 0 ]; do case \"$1\" in --port) port=$2; shift;; --connection-token-file) tok=$(cat \"$2\"); shift;; esac; shift; done\nmkdir -p /tmp/ovs && echo \"openvscode stand-in $tok\" > /tmp/ovs/index.html\nexec busybox httpd -f -p \"$port\" -h /tmp/ovs\n";
    let bin = root.join("bin/openvscode-server");
    std::fs::write(&bin, script).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let archive = dir.join("openvscode-standin.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .arg("openvscode-server-v0.0.0-linux-x64")
        .status()
        .unwrap();
    assert!(ok.success());
    let sha = sha2::Sha256::digest(std::fs::read(&archive).unwrap());
    (archive, sha.iter().map(|b| format!("{b:02x}")).collect())
}

/// What the browser stand-in was opened on: a `file://` page of the
/// user's alone (0600; the token must not be in the browser's command line,
/// which every local user can read), that leads on to the server's URL.
fn browser_target(bin: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let arg = args_of(bin, "browser").remove(0);
    let page = PathBuf::from(arg.strip_prefix("file://").unwrap_or_else(|| panic!("not a file URL: {arg}")));
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o600);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!arg.contains("tkn="), "{arg}");
    let start = html.find("url=").unwrap() + 4;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

/// `--ide openvscode`: the server from a local archive (checked against
/// its SHA-256) or a loopback download (then cached), started in the
/// workspace with a connection token, forwarded, and the browser opened on
/// it. The browser is a recording stand-in ($BROWSER).
#[test]
fn openvscode_runs_in_the_workspace_and_opens_in_the_browser() {
    require_engine();
    let s = Sandbox::new();
    let (archive, sha) = openvscode_standin(s.path());
    let bin = standins(s.path(), &["browser"]);
    let port = crate::common::free_port();
    let ws = s.workspace(
        "ovs",
        r#"{"image": "den-test/busybox", "customizations": {"vscode": {"extensions": ["golang.go"]}}}"#,
    );
    // A wrong checksum: refused, said, and `up` still succeeds.
    let r = run(s
        .den()
        .env("BROWSER", bin.join("browser"))
        .args(["up", "--id", &ws.id, "--ide", "openvscode"])
        .args([
            "--ide-option",
            &format!("ARCHIVE={}", archive.display()),
            "--ide-option",
            &format!("SHA256={}", "0".repeat(64)),
        ])
        .arg(&ws.folder));
    r.assert_ok();
    assert!(r.stderr.contains("refused") && r.stderr.contains(&sha), "{}", r.stderr);
    // A bad option is said before anything is made.
    let r =
        run(s.den().args(["up", "--id", &ws.id, "--ide", "openvscode", "--ide-option", "THEME=dark"]).arg(&ws.folder));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--ide-option THEME") && r.stderr.contains("ARCHIVE"), "{}", r.stderr);

    // A process of the container that polls every command line (bounded:
    // about 15 s), as any user of the container could.
    crate::common::docker(&[
        "exec",
        "-d",
        &ws.container(),
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' >> /tmp/cmdlines; echo >> /tmp/cmdlines; usleep 5000; done",
    ]);
    let r = run(s
        .den()
        .env("BROWSER", bin.join("browser"))
        .args(["open", &ws.id, "--ide", "openvscode"])
        .args(["--ide-option", &format!("ARCHIVE={}", archive.display()), "--ide-option", &format!("SHA256={sha}")])
        .args(["--ide-option", &format!("PORT={port}")]));
    r.assert_ok();
    let url = browser_target(&bin);
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("?folder=%2Fworkspaces%2F"), "{url}");
    let token = url.rsplit("tkn=").next().unwrap().to_string();
    assert_eq!(token.len(), 48, "{url}");
    let local: u16 = url["http://127.0.0.1:".len()..].split('/').next().unwrap().parse().unwrap();
    assert_eq!(crate::common::http_get(local), format!("openvscode stand-in {token}\n"));
    let args = crate::common::exec(&ws.container(), "cat /tmp/ovs-args");
    assert!(
        args.contains("--host 127.0.0.1") && args.contains("--install-extension golang.go --start-server"),
        "{args}"
    );
    // The token is in a file only the user may read, not on the command line.
    assert!(!args.contains(&token), "{args}");
    // Nor on the start script's (or any other) command line in the container.
    let seen = crate::common::exec(&ws.container(), "cat /tmp/cmdlines");
    assert!(seen.contains("busybox httpd") && !seen.contains(&token), "the token showed in a command line");

    // A second open finds the server running: same token, no new archive.
    let r = run(s.den().env("BROWSER", bin.join("browser")).args(["open", &ws.id, "--ide", "openvscode"]).args([
        "--ide-option",
        &format!("ARCHIVE={}", archive.display()),
        "--ide-option",
        &format!("PORT={port}"),
    ]));
    r.assert_ok();
    assert!(browser_target(&bin).ends_with(&format!("tkn={token}")));

    // A download from a loopback server, cached: a second open needs no server.
    let served = s.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::copy(&archive, served.join("ovs.tar.gz")).unwrap();
    let web = crate::common::free_port();
    let mut server = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &web.to_string()])
        .current_dir(&served)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::common::wait_port(web);
    let url_opt = format!("DOWNLOAD_URL=http://127.0.0.1:{web}/ovs.tar.gz");
    let open = |s: &Sandbox| {
        run(s.den().env("BROWSER", bin.join("browser")).args(["open", &ws.id, "--ide", "openvscode"]).args([
            "--ide-option",
            &url_opt,
            "--ide-option",
            "OPEN=false",
            "--ide-option",
            &format!("PORT={port}"),
        ]))
    };
    open(&s).assert_ok();
    let _ = server.kill();
    let _ = server.wait();
    let r = open(&s);
    r.assert_ok();
    assert!(r.stderr.contains("OpenVSCode Server: http://127.0.0.1:"), "{}", r.stderr);
    assert!(s.home().join("cache/ide").join(format!("openvscode-{sha}.tar.gz")).is_file());
}
