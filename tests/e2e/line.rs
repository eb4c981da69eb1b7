//! The direct line (docs/line.md): the agent's SSH socket in a private
//! host folder mounted into the containers den makes on a local engine.
//! Which way each connection took is read from `--debug` (den) or
//! `DEN_LOG=debug` (the ProxyCommand under OpenSSH).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{docker, exec, free_port, http_get, require_engine, run, unique_id, wait_port, Run, Sandbox};

const DEBIAN: &str = r#"{"image": "den-test/debian:bookworm"}"#;

/// What `--debug` says of a connection on the direct line, and of one on
/// the exec tunnel.
const DIRECT: &str = ": direct line ";
const EXEC: &str = ": exec tunnel (";

fn line_folder(home: &Path, id: &str) -> PathBuf {
    home.join("contexts/default/workspaces").join(id).join("line")
}

/// `den --debug ssh ID -- CMD` (with `extra` environment).
fn den_ssh(s: &Sandbox, id: &str, cmd: &str, extra: &[(&str, &str)]) -> Run {
    let mut c = s.den();
    c.args(["--debug", "ssh", id, "--command", cmd]).envs(extra.iter().copied());
    run(&mut c)
}

/// `ssh -F <den's config> ID.den ARGS…`, its ProxyCommand saying which
/// way it took on stderr.
fn openssh(s: &Sandbox, id: &str) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F").arg(s.path().join("ssh_config")).args(["-o", "BatchMode=yes"]).env("DEN_LOG", "debug");
    c.arg(format!("{id}.den"));
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_docker_workspace_is_reached_on_the_direct_line_and_on_exec_when_forced() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("line");
    let _c = s.cleanup(&id);
    let config = r#"{"image": "den-test/debian:bookworm", "postAttachCommand": "echo attached-as-$(id -un)"}"#;
    let p = s.project("line", &[(".devcontainer.json", config)]);
    s.up(&p, &id, &[]);
    // A warm up sets the workspace up over the line: no docker exec.
    let r = run(s.den().args(["--debug", "up", "--id", &id]).arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(DIRECT) && !r.stderr.contains("run: docker exec"), "{}", r.stderr);
    assert!(format!("{}{}", r.stdout, r.stderr).contains("attached-as-root"), "{}{}", r.stdout, r.stderr);
    // The folder: private, holding the socket only, which is the user's.
    let dir = line_folder(&s.home(), &id);
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o700);
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["ssh.sock"]);
    assert_eq!(std::fs::symlink_metadata(dir.join("ssh.sock")).unwrap().permissions().mode() & 0o777, 0o600);

    let r = den_ssh(&s, &id, "echo on-the-line; pwd", &[]);
    assert_eq!(r.stdout, "on-the-line\n/workspaces/line\n", "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{id}{DIRECT}{}", dir.join("ssh.sock").display())), "{}", r.stderr);
    // --workdir reaches the one server of every connection.
    let mut c = s.den();
    let r = run(c.args(["ssh", &id, "--workdir", "/tmp", "--command", "pwd"]));
    assert_eq!(r.stdout, "/tmp\n", "{}", r.stderr);

    let r = den_ssh(&s, &id, "echo on-exec", &[("DEN_TEST_LINE", "exec")]);
    assert_eq!(r.stdout, "on-exec\n", "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{id}{EXEC}DEN_TEST_LINE=exec)")), "{}", r.stderr);

    let o = openssh(&s, &id).arg("echo over-openssh").output().unwrap();
    assert_eq!(text(&o.stdout), "over-openssh\n", "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(DIRECT), "{}", text(&o.stderr));
}

#[test]
fn openssh_scp_forwards_and_agent_forwarding_on_the_direct_line() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("linessh");
    let _c = s.cleanup(&id);
    let p = s.project("linessh", &[(".devcontainer.json", DEBIAN)]);
    s.up(&p, &id, &["--forward-ports=false"]);
    let host = format!("{id}.den");
    let cfg = s.path().join("ssh_config");
    // scp both ways, 8 MB, byte for byte.
    let src = s.path().join("up.bin");
    std::fs::write(&src, (0..8 << 20).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    let scp = |from: &str, to: &str| {
        let o = Command::new("scp").arg("-F").arg(&cfg).env("DEN_LOG", "debug").args([from, to]).output().unwrap();
        assert!(o.status.success() && text(&o.stderr).contains(DIRECT), "scp {from} {to}: {}", text(&o.stderr));
    };
    let back = s.path().join("back.bin");
    scp(src.to_str().unwrap(), &format!("{host}:/tmp/up.bin"));
    scp(&format!("{host}:/tmp/up.bin"), back.to_str().unwrap());
    assert!(std::fs::read(&src).unwrap() == std::fs::read(&back).unwrap());
    // -R to a server here, and -L back through it.
    let hport = crate::ssh::host_server("served-from-host");
    let lport = free_port();
    let _fwd = crate::ssh::Bg(
        openssh(&s, &id)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("9126:127.0.0.1:{hport}"))
            .arg("-L")
            .arg(format!("{lport}:127.0.0.1:9126"))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(lport);
    let start = Instant::now();
    let mut got = http_get(lport);
    while !got.contains("served-from-host") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        got = http_get(lport);
    }
    assert!(got.contains("served-from-host"), "{got}");
    // ssh-agent forwarding.
    let (_agent, sock) = crate::ssh::agent(s.path());
    let o = openssh(&s, &id).arg("-A").arg("ssh-add -l").env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(text(&o.stdout).contains("den-agent-test-key"), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stderr).contains(DIRECT), "{}", text(&o.stderr));
}

#[test]
fn the_exec_tunnel_takes_over_when_the_line_is_refused_or_gone() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("linegone");
    let _c = s.cleanup(&id);
    let p = s.project("linegone", &[(".devcontainer.json", DEBIAN)]);
    s.up(&p, &id, &[]);
    let c = format!("den-{id}");
    // Refused: the agent's server is gone, its socket is left.
    let pid = exec(&c, "cat /var/lib/den/line.pid").trim().to_string();
    exec(&c, &format!("kill {pid}"));
    let start = Instant::now();
    while exec(&c, &format!("cat /proc/{pid}/cmdline 2>/dev/null; true")).contains("line-server") {
        assert!(start.elapsed() < Duration::from_secs(10), "the line server did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = den_ssh(&s, &id, "echo refused-then-exec", &[]);
    assert_eq!(r.stdout, "refused-then-exec\n", "{}", r.stderr);
    assert!(r.stderr.contains(EXEC) && r.stderr.contains("refused"), "{}", r.stderr);
    let o = openssh(&s, &id).arg("echo openssh-on-exec").output().unwrap();
    assert_eq!(text(&o.stdout), "openssh-on-exec\n", "{}", text(&o.stderr));
    // The next up starts it again.
    s.up(&p, &id, &[]);
    let r = den_ssh(&s, &id, "true", &[]);
    assert!(r.code == 0 && r.stderr.contains(DIRECT), "{}", r.stderr);
    // Gone: the folder removed by hand.
    std::fs::remove_dir_all(line_folder(&s.home(), &id)).unwrap();
    let r = den_ssh(&s, &id, "echo gone-then-exec", &[]);
    assert_eq!(r.stdout, "gone-then-exec\n", "{}", r.stderr);
    assert!(r.stderr.contains(EXEC), "{}", r.stderr);
    s.up(&p, &id, &[]);
    assert_eq!(den_ssh(&s, &id, "echo still", &[]).stdout, "still\n");
}

#[test]
fn a_container_made_without_the_folder_is_reached_through_exec() {
    require_engine();
    let s = Sandbox::new();
    // A DEN_HOME whose path cannot be written in a mount argument: the
    // container is made without the folder, as one made before den had it.
    let home = s.path().join("home,without-line");
    let den = |args: &[&str]| run(s.den().env("DEN_HOME", &home).args(args));
    let id = unique_id("noline");
    let p = s.project("noline", &[(".devcontainer.json", DEBIAN)]);
    let r = den(&["up", "--id", &id, p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mounts = docker(&["inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", &format!("den-{id}")]);
    let r = den(&["--debug", "ssh", &id, "--command", "echo no-line"]);
    let _ = den(&["delete", "--force", &id]);
    assert!(!mounts.contains("/run/den "), "{mounts}");
    assert_eq!(r.stdout, "no-line\n", "{}", r.stderr);
    assert!(r.stderr.contains(EXEC), "{}", r.stderr);
}

/// A local user made for one test, removed when it ends.
struct LocalUser(String);

impl LocalUser {
    fn new(name: &str) -> LocalUser {
        let _ = Command::new("userdel").arg(name).output();
        let st = Command::new("useradd").args(["-M", "-s", "/bin/sh", name]).status().unwrap();
        assert!(st.success(), "useradd {name}");
        LocalUser(name.into())
    }

    /// `sh -c SCRIPT` as this user (no supplementary groups).
    fn sh(&self, script: &str) -> std::process::Output {
        let id = |f: &str| text(&Command::new("id").args([f, &self.0]).output().unwrap().stdout).trim().to_string();
        Command::new("setpriv")
            .args(["--reuid", &id("-u"), "--regid", &id("-g"), "--clear-groups", "--", "sh", "-c", script])
            .output()
            .unwrap()
    }
}

impl Drop for LocalUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}

#[test]
fn another_local_user_cannot_enter_the_folder_or_connect() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("lineuser");
    let _c = s.cleanup(&id);
    let p = s.project("lineuser", &[(".devcontainer.json", DEBIAN)]);
    s.up(&p, &id, &[]);
    let dir = line_folder(&s.home(), &id);
    // Every folder above it may be passed through: only the line's own
    // rights keep the other user out.
    let mut up = dir.parent().map(Path::to_path_buf);
    while let Some(d) = up.filter(|d| d.starts_with(s.path())) {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        up = d.parent().map(Path::to_path_buf);
    }
    let other = LocalUser::new(&format!("denline{}", std::process::id() % 100000));
    let sock = dir.join("ssh.sock");
    let connect = format!(
        "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"connected\")' {}",
        sock.display()
    );
    let o = other.sh(&format!("ls {} && echo listed", dir.display()));
    assert!(!text(&o.stdout).contains("listed") && text(&o.stderr).contains("Permission denied"), "{o:?}");
    let o = other.sh(&connect);
    assert!(!text(&o.stdout).contains("connected") && text(&o.stderr).contains("Permission"), "{o:?}");
    // With the folder opened to it, the socket's own rights still refuse it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let o = other.sh(&connect);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!text(&o.stdout).contains("connected") && text(&o.stderr).contains("Permission"), "{o:?}");
    // den does not use a folder others may enter; a private one again works.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = den_ssh(&s, &id, "true", &[]);
    assert!(r.code == 0 && r.stderr.contains(EXEC) && r.stderr.contains("not private"), "{}", r.stderr);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(den_ssh(&s, &id, "true", &[]).stderr.contains(DIRECT));
}

#[test]
fn a_link_put_in_the_folder_by_the_container_is_not_followed() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("linelink");
    let _c = s.cleanup(&id);
    let p = s.project("linelink", &[(".devcontainer.json", DEBIAN)]);
    s.up(&p, &id, &[]);
    // Root in the container replaces the socket with a link to a socket of
    // this machine's (the engine's own).
    exec(
        &format!("den-{id}"),
        "kill $(cat /var/lib/den/line.pid); rm -f /run/den/ssh.sock; ln -s /var/run/docker.sock /run/den/ssh.sock",
    );
    let r = den_ssh(&s, &id, "echo safe", &[]);
    assert_eq!(r.stdout, "safe\n", "{}", r.stderr);
    assert!(r.stderr.contains(EXEC) && r.stderr.contains("not a socket"), "{}", r.stderr);
}

#[test]
fn podman_and_a_compose_service_get_the_direct_line() {
    require_engine();
    let s = Sandbox::new();
    const CONTAINERS_CONF: &str = "/var/tmp/den-engine/containers.conf";
    let id = unique_id("linepod");
    let p = s.project("linepod", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let den = |args: &[&str]| run(s.den().env("CONTAINERS_CONF", CONTAINERS_CONF).args(args));
    let r = den(&["up", "--provider", "podman", "--id", &id, p.to_str().unwrap()]);
    let ssh = den(&["--debug", "ssh", &id, "--command", "echo on-podman"]);
    let _ = den(&["delete", "--force", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ssh.stdout, "on-podman\n", "{}", ssh.stderr);
    assert!(ssh.stderr.contains(DIRECT), "{}", ssh.stderr);

    let ws = s.workspace(
        "linecompose",
        r#"{"dockerComposeFile": "docker-compose.yml", "service": "app", "workspaceFolder": "/workspace", "overrideCommand": true}"#,
    );
    std::fs::write(
        ws.folder.join(".devcontainer/docker-compose.yml"),
        "services:\n  app:\n    image: den-test/busybox\n    volumes: ['..:/workspace']\n",
    )
    .unwrap();
    ws.up(&[]).assert_ok();
    let r = den_ssh(&s, &ws.id, "echo on-compose", &[]);
    assert_eq!(r.stdout, "on-compose\n", "{}", r.stderr);
    assert!(r.stderr.contains(DIRECT), "{}", r.stderr);
}

#[test]
fn inactivity_counts_sessions_on_the_direct_line() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("lineidle");
    let _c = s.cleanup(&id);
    let p = s.project("lineidle", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    s.up(&p, &id, &["--provider-option", "INACTIVITY_TIMEOUT=3s"]);
    // A session on the line longer than the timeout keeps it up.
    let r = den_ssh(&s, &id, "sleep 6; echo kept", &[]);
    assert_eq!(r.stdout, "kept\n", "{}", r.stderr);
    assert!(r.stderr.contains(DIRECT), "{}", r.stderr);
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "Running");
    // Without one (den's forwarder's connection does not count), it stops.
    let start = Instant::now();
    while run(s.den().args(["status", &id])).stdout.trim() != "Stopped" {
        assert!(start.elapsed() < Duration::from_secs(20), "still running 20 s after the session ended");
        std::thread::sleep(Duration::from_millis(250));
    }
}
