//! SSH into workspaces with the real OpenSSH client (through the ssh config
//! den writes) and with `den ssh`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{docker, exec, free_port, http_get, require_engine, run, unique_id, wait_port, Sandbox};

/// A workspace that is up, with the ssh config den wrote for it.
struct Ws<'a> {
    s: &'a Sandbox,
    id: String,
    _cleanup: crate::common::Cleanup<'a>,
}

impl<'a> Ws<'a> {
    fn up(s: &'a Sandbox, name: &str, config: &str) -> Ws<'a> {
        Ws::up_with(s, name, config, &[])
    }

    fn up_with(s: &'a Sandbox, name: &str, config: &str, flags: &[&str]) -> Ws<'a> {
        require_engine();
        let id = unique_id(name);
        let cleanup = s.cleanup(&id);
        let p = s.project(name, &[(".devcontainer.json", config)]);
        s.up(&p, &id, flags);
        Ws { s, id, _cleanup: cleanup }
    }

    fn host(&self) -> String {
        format!("{}.den", self.id)
    }

    fn config(&self) -> PathBuf {
        self.s.path().join("ssh_config")
    }

    /// `ssh -F <den's config> ID.den ARGS…` (the real OpenSSH client).
    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.config()).args(["-o", "BatchMode=yes"]);
        c
    }

    fn den_ssh(&self) -> Command {
        let mut c = self.s.den();
        c.args(["ssh", &self.id]);
        c
    }

    fn container(&self) -> String {
        format!("den-{}", self.id)
    }
}

const DEBIAN: &str =
    r#"{"image": "den-test/debian:bookworm", "remoteEnv": {"FROM_REMOTE_ENV": "yes-${containerEnv:HOSTNAME}"}}"#;
const BUSYBOX_WEB: &str = r#"{"image": "den-test/busybox", "forwardPorts": [8124],
  "postStartCommand": "mkdir -p /srv && echo served-from-container > /srv/index.html && httpd -p 8123 -h /srv && httpd -p 8124 -h /srv"}"#;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny HTTP server on the host for `-R` tests; answers `body` to every
/// request until the test ends.
pub(crate) fn host_server(body: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(20).flatten() {
            let mut c = c;
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = write!(c, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// A background process that is killed when dropped.
pub(crate) struct Bg(pub std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ssh_config_block_is_written_and_removed() {
    let s = Sandbox::new();
    let cfg = s.path().join("ssh_config");
    std::fs::write(&cfg, "# mine\nHost *\n  ServerAliveInterval 30\n").unwrap();
    let w = Ws::up(&s, "cfgblock", r#"{"image": "den-test/busybox"}"#);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let id = &w.id;
    assert!(
        text.starts_with(&format!("# den: begin {id}\nHost {id}.den\n  HostName {id}.den\n  User root\n")),
        "{text}"
    );
    assert!(text.contains(&format!(" ssh --stdio {id}\n")), "{text}");
    assert!(text.contains("  IdentitiesOnly yes\n  UserKnownHostsFile"), "{text}");
    assert!(text.contains("  StrictHostKeyChecking yes\n"), "{text}");
    assert!(text.ends_with("# mine\nHost *\n  ServerAliveInterval 30\n"), "the rest is kept: {text}");
    let key = s.home().join(format!("contexts/default/workspaces/{id}/id_ed25519"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(run(s.den().args(["delete", id])).code, 0);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "# mine\nHost *\n  ServerAliveInterval 30\n");
    let kh = std::fs::read_to_string(s.home().join("known_hosts")).unwrap_or_default();
    assert!(!kh.contains(&format!("{id}.den")), "the pin goes too: {kh}");
}

#[test]
fn command_exit_code_env_and_workdir() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "cmd", DEBIAN);
    let o = w.ssh().arg(w.host()).arg("echo \"$FROM_REMOTE_ENV $(pwd) $(id -un)\"; exit 7").output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
    let line = out(&o);
    assert!(line.starts_with("yes-") && line.trim_end().ends_with(" /workspaces/cmd root"), "{line}");
    // den ssh: the same, and its own exit code is the remote one
    let o = w.den_ssh().args(["--command", "echo $FROM_REMOTE_ENV $(pwd)"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).trim_end().ends_with(" /workspaces/cmd"), "{}", out(&o));
    // after --, exactly that argument vector, as docker exec runs it: each
    // word stays one word, and nothing in it is the shell's
    let o = w.den_ssh().args(["--", "sh", "-c", "exit 5"]).output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", err(&o));
    let o = w.den_ssh().args(["--", "printf", "[%s]\\n", "a b", "it's", "$HOME", "\"q\""]).output().unwrap();
    assert_eq!(out(&o), "[a b]\n[it's]\n[$HOME]\n[\"q\"]\n", "{}", err(&o));
    let o = w.den_ssh().args(["--command", "exit 42"]).output().unwrap();
    assert_eq!(o.status.code(), Some(42));
    let o = w.den_ssh().args(["--workdir", "/tmp", "--", "pwd"]).output().unwrap();
    assert_eq!(out(&o), "/tmp\n");
    // another user of the container
    exec(&w.container(), "useradd -m other");
    let o = w.den_ssh().args(["--user", "other", "--command", "id -un; echo $HOME"]).output().unwrap();
    assert_eq!(out(&o), "other\n/home/other\n", "{}", err(&o));
    let o = w.ssh().arg(format!("other@{}", w.host())).arg("id -un").output().unwrap();
    assert_eq!(out(&o), "other\n", "{}", err(&o));
    // a user that does not exist cannot log in
    let o = w.den_ssh().args(["--user", "ghost", "--", "true"]).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    // a signal ends the remote command: 128 + n, like a shell
    let o = w.den_ssh().args(["--command", "kill -TERM $$"]).output().unwrap();
    assert_eq!(o.status.code(), Some(128 + 15), "{}", err(&o));
}

#[test]
fn stdin_round_trips_100mb_byte_identical() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "stdin", DEBIAN);
    let file = s.path().join("big.bin");
    // Deterministic, incompressible-looking bytes (xorshift).
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut data = vec![0u8; 100 * 1024 * 1024];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&file, &data).unwrap();
    for (name, mut cmd) in [
        ("openssh", {
            let mut c = w.ssh();
            c.arg(w.host()).arg("cat");
            c
        }),
        ("den", {
            let mut c = w.den_ssh();
            c.args(["--", "cat"]);
            c
        }),
    ] {
        let o = cmd.stdin(std::fs::File::open(&file).unwrap()).output().unwrap();
        assert!(o.status.success(), "{name}: {}", err(&o));
        assert_eq!(o.stdout.len(), data.len(), "{name}: length");
        assert!(o.stdout == data, "{name}: bytes differ");
    }
}

#[test]
fn scp_both_ways_and_sftp_batch() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "files", DEBIAN);
    let src = s.path().join("up.bin");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &payload).unwrap();
    let cfg = w.config();
    let st =
        Command::new("scp").arg("-F").arg(&cfg).arg(&src).arg(format!("{}:/tmp/up.bin", w.host())).output().unwrap();
    assert!(st.status.success(), "scp up: {}", err(&st));
    let sum = exec(&w.container(), "sha256sum /tmp/up.bin | cut -d' ' -f1");
    let local = Command::new("sha256sum").arg(&src).output().unwrap();
    assert_eq!(sum.trim(), out(&local).split_whitespace().next().unwrap());
    let back = s.path().join("back.bin");
    let st =
        Command::new("scp").arg("-F").arg(&cfg).arg(format!("{}:/tmp/up.bin", w.host())).arg(&back).output().unwrap();
    assert!(st.status.success(), "scp down: {}", err(&st));
    assert!(std::fs::read(&back).unwrap() == payload);

    let batch = s.path().join("batch");
    let got = s.path().join("sftp-got.bin");
    std::fs::write(
        &batch,
        format!(
            "mkdir /tmp/sftpdir\ncd /tmp/sftpdir\nput {}\nrename up.bin renamed.bin\nls -l\nget renamed.bin {}\nrm renamed.bin\ncd /tmp\nrmdir /tmp/sftpdir\n",
            src.display(),
            got.display()
        ),
    )
    .unwrap();
    let st = Command::new("sftp").arg("-F").arg(&cfg).arg("-b").arg(&batch).arg(w.host()).output().unwrap();
    assert!(st.status.success(), "sftp: {}{}", out(&st), err(&st));
    assert!(out(&st).contains("renamed.bin"), "{}", out(&st));
    assert!(std::fs::read(&got).unwrap() == payload);
    assert_eq!(exec(&w.container(), "test -e /tmp/sftpdir && echo there || echo gone").trim(), "gone");
}

#[test]
fn files_written_over_sftp_belong_to_the_user() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "owner", DEBIAN);
    exec(&w.container(), "useradd -m dev");
    let src = s.path().join("f.txt");
    std::fs::write(&src, "x").unwrap();
    let st = Command::new("scp")
        .arg("-F")
        .arg(w.config())
        .arg(&src)
        .arg(format!("dev@{}:/home/dev/f.txt", w.host()))
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", err(&st));
    assert_eq!(exec(&w.container(), "stat -c %U /home/dev/f.txt").trim(), "dev");
    // and the user cannot write where they may not
    let st = Command::new("scp")
        .arg("-F")
        .arg(w.config())
        .arg(&src)
        .arg(format!("dev@{}:/root/f.txt", w.host()))
        .output()
        .unwrap();
    assert!(!st.status.success());
}

#[test]
fn local_forward_socks_and_remote_forward_with_openssh() {
    let s = Sandbox::new();
    let w = Ws::up_with(&s, "fwd", BUSYBOX_WEB, &["--forward-ports=false"]);
    // -L to a server inside the container
    let lport = free_port();
    let _l = Bg(w
        .ssh()
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("{lport}:localhost:8123"))
        .arg(w.host())
        .stdin(Stdio::null())
        .spawn()
        .unwrap());
    wait_port(lport);
    assert_eq!(http_get(lport).trim(), "served-from-container");
    // -D: SOCKS, as VS Code Remote-SSH uses it
    let dport = free_port();
    let _d = Bg(w.ssh().args(["-N", "-D"]).arg(dport.to_string()).arg(w.host()).stdin(Stdio::null()).spawn().unwrap());
    wait_port(dport);
    let o = Command::new("curl")
        .args(["-s", "--max-time", "10", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{dport}"))
        .arg("http://localhost:8123/index.html")
        .output()
        .unwrap();
    assert_eq!(out(&o).trim(), "served-from-container", "{}", err(&o));
    // -R: a server on this machine, reached from inside
    let hport = host_server("served-from-host");
    let o = w
        .ssh()
        .arg("-R")
        .arg(format!("9125:127.0.0.1:{hport}"))
        .arg(w.host())
        .arg("sleep 0.5; wget -q -O - http://127.0.0.1:9125/")
        .output()
        .unwrap();
    assert_eq!(out(&o), "served-from-host", "{}", err(&o));
}

#[test]
fn den_ssh_forwards_ports() {
    let s = Sandbox::new();
    // No forwarder: den ssh forwards the devcontainer's ports itself.
    let w = Ws::up_with(&s, "denfwd", BUSYBOX_WEB, &["--forward-ports=false"]);
    // -L and the devcontainer's forwardPorts (8124) while the session is open
    let lport = free_port();
    let _session = Bg(w
        .den_ssh()
        .arg("-L")
        .arg(format!("{lport}:localhost:8123"))
        .args(["--command", "sleep 20"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap());
    wait_port(lport);
    assert_eq!(http_get(lport).trim(), "served-from-container");
    wait_port(8124);
    assert_eq!(http_get(8124).trim(), "served-from-container");
    // a second session: 8124 is busy here now; that is reported, not fatal
    let o = w.den_ssh().args(["--", "echo", "still-works"]).output().unwrap();
    assert_eq!(out(&o), "still-works\n");
    assert!(err(&o).contains("cannot forward local port 8124"), "{}", err(&o));
    let o = w.den_ssh().args(["--no-forward-ports", "--", "true"]).output().unwrap();
    assert!(!err(&o).contains("8124"), "{}", err(&o));
    // -R
    let hport = host_server("served-from-host");
    let o = w
        .den_ssh()
        .arg("-R")
        .arg(format!("9126:127.0.0.1:{hport}"))
        .args(["--command", "sleep 0.5; wget -q -O - http://127.0.0.1:9126/"])
        .output()
        .unwrap();
    assert_eq!(out(&o), "served-from-host", "{}", err(&o));
}

/// A real ssh-agent with one key; returns its socket and the key's comment.
pub(crate) fn agent(dir: &Path) -> (Bg, PathBuf) {
    let sock = dir.join("agent.sock");
    let bg = Bg(Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn().unwrap());
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = dir.join("agent_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "den-agent-test-key", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &sock).stderr(Stdio::null()).status().unwrap();
    assert!(st.success());
    (bg, sock)
}

#[test]
fn agent_forwarding_reaches_a_real_ssh_agent() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "agent", DEBIAN);
    let (_agent, sock) = agent(s.path());
    let o = w.ssh().arg("-A").arg(w.host()).arg("ssh-add -l").env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(out(&o).contains("den-agent-test-key"), "openssh -A: {}{}", out(&o), err(&o));
    let o = w.den_ssh().args(["-A", "--command", "ssh-add -l"]).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(out(&o).contains("den-agent-test-key"), "den ssh -A: {}{}", out(&o), err(&o));
    // without -A there is no agent inside
    let o = w.den_ssh().args(["--command", "ssh-add -l"]).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(!out(&o).contains("den-agent-test-key"));
}

#[test]
fn a_changed_host_key_is_refused() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "hostkey", r#"{"image": "den-test/busybox"}"#);
    let kh = s.home().join("known_hosts");
    let good = std::fs::read_to_string(&kh).unwrap();
    // Pin some other key for the workspace.
    let other = den_ssh_test_key(s.path());
    let line = good.lines().find(|l| l.starts_with(&w.host())).unwrap().to_string();
    std::fs::write(&kh, good.replace(&line, &format!("{} {other}", w.host()))).unwrap();
    let o = w.ssh().arg(w.host()).arg("true").output().unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("Host key verification failed"), "{}", err(&o));
    let o = w.den_ssh().args(["--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("host key does not match"), "{}", err(&o));
    std::fs::write(&kh, &good).unwrap();
    assert!(w.ssh().arg(w.host()).arg("true").status().unwrap().success());
}

fn den_ssh_test_key(dir: &Path) -> String {
    let k = dir.join("other_key");
    Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&k).status().unwrap();
    let p = std::fs::read_to_string(k.with_extension("pub")).unwrap();
    p.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn busybox_sessions_with_sh_only() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "bbssh", r#"{"image": "den-test/busybox"}"#);
    let o =
        w.ssh().arg(w.host()).arg("echo $0; cat /etc/os-release 2>/dev/null || echo no-os-release").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("no-os-release"), "{}", out(&o));
    let o = w.den_ssh().args(["--", "echo", "hi"]).output().unwrap();
    assert_eq!(out(&o), "hi\n", "{}", err(&o));
}

#[test]
fn stopped_workspace_is_started_by_the_proxy_command_and_by_den_ssh() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "autostart", r#"{"image": "den-test/busybox", "postStartCommand": "date >> /tmp/starts"}"#);
    assert_eq!(run(s.den().args(["stop", &w.id])).code, 0);
    let o = w.ssh().arg(w.host()).arg("wc -l < /tmp/starts").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "2", "started again, postStartCommand ran");
    assert_eq!(run(s.den().args(["stop", &w.id])).code, 0);
    let o = w.den_ssh().args(["--command", "wc -l < /tmp/starts"]).output().unwrap();
    assert_eq!(out(&o).trim(), "3", "{}", err(&o));
}

/// Runs `cmd` in a fresh tmux session of the given size; returns a handle
/// that kills the session when dropped.
struct Tmux {
    name: String,
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, cmd: &str, cols: u16, rows: u16) -> Tmux {
        let name = format!("den{}", std::process::id());
        let socket = dir.join("tmux.sock");
        let st = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["new-session", "-d", "-s", &name, "-x", &cols.to_string(), "-y", &rows.to_string(), cmd])
            .status()
            .unwrap();
        assert!(st.success());
        Tmux { name, socket }
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn send(&self, keys: &str) {
        assert!(self.tmux().args(["send-keys", "-t", &self.name, keys, "Enter"]).status().unwrap().success());
    }

    fn screen(&self) -> String {
        out(&self.tmux().args(["capture-pane", "-p", "-t", &self.name]).output().unwrap())
    }

    /// Waits (bounded) until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "never saw {text:?} on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        let st = self
            .tmux()
            .args(["resize-window", "-t", &self.name, "-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().args(["kill-server"]).status();
    }
}

fn pty_session(s: &Sandbox, w: &Ws, cmd: String) {
    let t = Tmux::start(s.path(), &cmd, 100, 30);
    t.wait_for("#");
    t.send("stty size; tty; echo marker-$((6*7))");
    let screen = t.wait_for("marker-42");
    assert!(screen.contains("30 100"), "the pty has the terminal's size:\n{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    t.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    t.send("stty size; echo resized-$((6*7))");
    let screen = t.wait_for("resized-42");
    assert!(screen.contains("40 120"), "window-change reached the pty:\n{screen}");
    t.send("exit");
    let _ = w;
}

#[test]
fn pty_session_with_openssh_is_resized() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "ptyossh", DEBIAN);
    pty_session(&s, &w, format!("ssh -F {} -o BatchMode=yes {}", w.config().display(), w.host()));
}

#[test]
fn pty_session_with_den_ssh_is_resized() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "ptyden", DEBIAN);
    let den = crate::common::den_bin();
    pty_session(&s, &w, format!("DEN_HOME={} {} ssh {}", s.home().display(), den.display(), w.id));
    // and the local terminal is back to normal afterwards (not raw)
    let _ = docker(&["ps"]);
}

/// After `den ssh` ends, normally or by SIGTERM, the local terminal is no
/// longer raw.
#[test]
fn den_ssh_restores_the_local_terminal() {
    let s = Sandbox::new();
    let w = Ws::up(&s, "rawmode", r#"{"image": "den-test/busybox"}"#);
    let den = crate::common::den_bin();
    let t = Tmux::start(s.path(), "sh", 100, 30);
    let den_cmd = format!("DEN_HOME={} {} ssh {}", s.home().display(), den.display(), w.id);
    let den_running = || {
        let o = Command::new("pgrep").args(["-f", &format!("ssh {}$", w.id)]).output().unwrap();
        out(&o).split_whitespace().map(str::to_string).collect::<Vec<_>>()
    };
    let wait_gone = || {
        let start = Instant::now();
        while !den_running().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "den ssh did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    t.send(&den_cmd);
    t.wait_for("/workspaces/rawmode #");
    t.send("echo inside-$((1+1))");
    t.wait_for("inside-2");
    t.send("exit");
    wait_gone();
    // The typed line shows `state-%s`; only the output shows the mode.
    let mode = "printf 'state-%s\\n' $(stty -a | grep -o -- '-*icanon')";
    t.send(mode);
    let screen = t.wait_for("state-icanon");
    assert!(!screen.contains("state--icanon"), "cooked again after exit:\n{screen}");

    t.send("clear");
    t.send(&den_cmd);
    t.wait_for("/workspaces/rawmode #");
    t.send("echo again-$((2+2))");
    t.wait_for("again-4");
    for pid in den_running() {
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }
    wait_gone();
    t.send(mode);
    let screen = t.wait_for("state-icanon");
    assert!(!screen.contains("state--icanon"), "cooked again after SIGTERM:\n{screen}");
}
