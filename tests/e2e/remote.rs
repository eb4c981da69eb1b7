//! Remote providers: the built-in `ssh` provider against a real sshd on
//! 127.0.0.1 (its own port, key auth, started and stopped by the test),
//! whose "remote" docker is the local engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::{container_running, docker, free_port, require_engine, run, unique_id, Sandbox};

/// A private sshd on 127.0.0.1, killed when dropped.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The shared connection the ssh provider keeps (CONTROL_PERSIST)
        // would outlive the server's listener: end it first.
        let _ = Command::new("ssh")
            .args(["-o", "ControlPath=~/.ssh/den-%C", "-O", "exit", "-p", &self.port.to_string(), "root@127.0.0.1"])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(ok.success());
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(sshd.exists(), "sshd is missing: tests/engine/setup.sh installs openssh-server");
        std::fs::create_dir_all(dir).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_ed25519");
        let key = dir.join("client_ed25519");
        keygen(&host_key);
        keygen(&key);
        std::fs::copy(dir.join("client_ed25519.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 UsePAM no\nStrictModes no\nLogLevel ERROR\n",
                hk = host_key.display(),
                d = dir.display()
            ),
        )
        .unwrap();
        let pubkey = std::fs::read_to_string(dir.join("host_ed25519.pub")).unwrap();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {pubkey}")).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { child, port, key, known_hosts }
    }

    /// `--provider-option` flags of the ssh provider for this server.
    /// A `GIT_SSH_COMMAND` for git over ssh to this server, trusting its
    /// host key only through this server's known hosts file.
    pub fn git_ssh_command(&self) -> String {
        format!(
            "ssh -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
            self.known_hosts.display()
        )
    }

    pub fn provider_args(&self) -> Vec<String> {
        self.options().into_iter().flat_map(|o| ["--provider-option".to_string(), o]).collect()
    }

    /// The ssh provider's options for this server.
    fn options(&self) -> Vec<String> {
        vec![
            "HOST=root@127.0.0.1".into(),
            format!("PORT={}", self.port),
            format!(
                "EXTRA_FLAGS=-i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
                self.key.display(),
                self.known_hosts.display()
            ),
        ]
    }
}

#[test]
fn ssh_provider_up_ssh_stop_delete() {
    require_engine();
    let s = Sandbox::new();
    let sshd = Sshd::start(&s.path().join("sshd"));
    let id = unique_id("sshprov");
    let _c = s.cleanup(&id);
    let p = s.project(
        "remoteproj",
        &[
            (
                ".devcontainer/devcontainer.json",
                r#"{"image": "den-test/debian:bookworm", "initializeCommand": "echo init >> init.log", "postCreateCommand": "echo created > /tmp/created", "remoteEnv": {"VIA": "ssh"},
                    "features": {"./on-machine": {"word": "built-there"}}}"#,
            ),
            // A local Feature: built by den on the machine, from the sent files.
            (
                ".devcontainer/on-machine/devcontainer-feature.json",
                r#"{"id": "on-machine", "options": {"word": {"type": "string", "default": "x"}}}"#,
            ),
            (".devcontainer/on-machine/install.sh", "#!/bin/sh\necho \"$WORD\" > /feature-word\n"),
            ("hello.txt", "from the laptop\n"),
            ("sub/dir/deep.txt", "deep\n"),
        ],
    );
    std::os::unix::fs::symlink("hello.txt", p.join("link")).unwrap();
    // a socket cannot travel; it is left out, not fatal
    let _sock = std::os::unix::net::UnixListener::bind(p.join("editor.sock")).unwrap();
    let mut up = s.den();
    up.args(["up", "--provider", "ssh", "--id", &id, "--output", "json"]);
    up.args(sshd.provider_args());
    let r = run(up.arg(&p));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not sent to the machine (not a file, folder or link)"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["provider"], "ssh");
    assert_eq!(v["created"], true);
    let container = v["container"].as_str().unwrap().to_string();
    assert_eq!(container_running(&container), Some(true));

    // the files went through the tunnel: the container sees a copy on the
    // "machine", not the laptop's folder
    let den = |args: &[&str]| run(s.den().args(args));
    let r = den(&[
        "ssh",
        &id,
        "--command",
        "cat /tmp/created; echo $VIA; pwd; cat hello.txt sub/dir/deep.txt; readlink link; cat init.log; ls editor.sock; cat /feature-word",
    ]);
    let ws = v["workspaceFolder"].as_str().unwrap();
    // initializeCommand ran once, here, not again on the machine
    assert_eq!(
        r.stdout,
        format!("created\nssh\n{ws}\nfrom the laptop\ndeep\nhello.txt\ninit\nbuilt-there\n"),
        "{}",
        r.stderr
    );
    let mounts = docker(&["inspect", "-f", "{{range .Mounts}}{{.Source}}|{{.Destination}}\n{{end}}", &container]);
    // the machine's den mounts its agent copy and its direct-line folder too
    let mount = mounts
        .lines()
        .filter_map(|l| l.split_once('|'))
        .find(|(_, dest)| *dest == ws)
        .map(|(src, _)| src.to_string())
        .unwrap_or_else(|| panic!("no mount at {ws}: {mounts}"));
    assert!(!mount.contains(p.to_str().unwrap()), "not a bind mount of the local folder: {mount}");
    assert!(mount.trim().ends_with(&format!("content/default/{id}")), "{mount}");

    // OpenSSH through the written config: den → ssh → agent → docker exec
    let o = s.openssh(&id).arg("echo over-openssh; exit 7").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "over-openssh\n", "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(7));

    // On the machine, den's tunnel relays to the container's direct line:
    // neither a den ssh nor OpenSSH through the entry makes a docker exec
    // of an SSH server there (the engine's own events say so).
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let since = format!("{:.3}", now() - 0.001);
    assert_eq!(den(&["ssh", &id, "--", "true"]).code, 0);
    let o = s.openssh(&id).arg("true").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let until = format!("{:.3}", now() + 0.001);
    let execs = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("container={container}"),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    // (the credentials relay, which the client speaks to without SSH,
    // stays an exec on a machine)
    let sessions: Vec<&str> = execs.lines().filter(|l| !l.contains("agent credentials-server")).collect();
    assert!(sessions.is_empty(), "the machine's relay took the exec tunnel: {execs}");

    // git credentials come from this machine through the same path
    let store = s.path().join("git-credentials");
    std::fs::write(&store, "https://bob:hunter2@git.example.com\n").unwrap();
    let gitconfig = s.path().join("gitconfig");
    std::fs::write(&gitconfig, format!("[credential]\n\thelper = store --file={}\n", store.display())).unwrap();
    let fill = "printf 'protocol=https\\nhost=git.example.com\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill";
    let r = run(s.den().args(["ssh", &id, "--command", fill]).env("GIT_CONFIG_GLOBAL", &gitconfig));
    assert!(r.stdout.contains("username=bob\npassword=hunter2\n"), "{}|{}", r.stdout, r.stderr);

    // a warm up sends nothing; --recreate sends the files again
    std::fs::write(p.join("hello.txt"), "changed\n").unwrap();
    let r = den(&["up", "--id", &id, "--output", "json", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("sending the workspace"), "{}", r.stderr);
    assert_eq!(den(&["ssh", &id, "--command", "cat hello.txt"]).stdout, "from the laptop\n");
    let r = den(&["up", "--id", &id, "--recreate", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(den(&["ssh", &id, "--command", "cat hello.txt"]).stdout, "changed\n");

    // stop: the container stops on the "machine"; ssh starts it again
    assert_eq!(den(&["stop", &id]).code, 0);
    assert_eq!(den(&["status", &id]).stdout.trim(), "Stopped");
    assert_eq!(container_running(&container), Some(false));
    let r = den(&["ssh", &id, "--command", "echo back"]);
    assert_eq!(r.stdout, "back\n", "{}", r.stderr);
    assert_eq!(den(&["status", &id]).stdout.trim(), "Running");
    let list = den(&["list", "--output", "json"]);
    assert!(list.stdout.contains("\"provider\":\"ssh\""), "{}", list.stdout);
    assert!(den(&["logs", &id]).stdout.contains("postCreateCommand"));

    // den forgot the workspace (its state folder is gone) but the machine
    // did not: a new up sends the files again and the container sees them
    std::fs::remove_dir_all(s.home().join(format!("contexts/default/workspaces/{id}"))).unwrap();
    std::fs::write(p.join("hello.txt"), "third\n").unwrap();
    let mut again = s.den();
    again.args(["up", "--provider", "ssh", "--id", &id]);
    again.args(sshd.provider_args());
    let r = run(again.arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(den(&["ssh", &id, "--command", "cat hello.txt"]).stdout, "third\n");

    // delete: no container, no files on the machine, no record, no ssh entry
    let r = den(&["delete", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(container_running(&container), None);
    let home = std::env::var("HOME").unwrap();
    assert!(!Path::new(&home).join(format!(".den-agent/content/default/{id}")).exists());
    assert_eq!(den(&["status", &id]).stdout.trim(), "NotFound");
    let cfg = std::fs::read_to_string(s.path().join("ssh_config")).unwrap_or_default();
    assert!(!cfg.contains(&format!("{id}.den")), "{cfg}");
}

#[test]
fn ssh_provider_requires_host_and_reports_unreachable() {
    let s = Sandbox::new();
    let p = s.project("noproj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["up", "--provider", "ssh", "--id", "nohost"]).arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("provider option HOST is required"), "{}", r.stderr);
    // a host nobody listens on: the failing command and ssh's own words
    let port = free_port();
    let r = run(s
        .den()
        .args(["up", "--provider", "ssh", "--id", "nobody"])
        .args(["--provider-option", "HOST=root@127.0.0.1", "--provider-option"])
        .arg(format!("PORT={port}"))
        .args(["--provider-option", "EXTRA_FLAGS=-o BatchMode=yes -o ConnectTimeout=5"])
        .arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Connection refused"), "{}", r.stderr);
    // Deleting what never reached its host works, and says what it could
    // not look at.
    let r = run(s.den().args(["delete", "nobody"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("could not look for what a failed up left"), "{}", r.stderr);
    // den build builds on this machine's engine only, and says so
    let r = run(s
        .den()
        .args(["build", "--provider", "ssh", "--provider-option", "HOST=root@127.0.0.1", "--id", "nb"])
        .arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("`den build` works with local docker-compatible providers"), "{}", r.stderr);
}

/// A machine without the docker CLI: a clear error from the machine.
#[test]
fn ssh_provider_machine_without_docker() {
    let s = Sandbox::new();
    let sshd = Sshd::start(&s.path().join("sshd"));
    let p = s.project("nodocker", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let id = unique_id("nodocker");
    let _c = s.cleanup(&id);
    let mut up = s.den();
    up.args(["up", "--provider", "ssh", "--id", &id, "--provider-option", "DOCKER_PATH=/nonexistent/docker"]);
    up.args(sshd.provider_args());
    let r = run(up.arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("`/nonexistent/docker` is not installed on this machine"), "{}", r.stderr);
    // the files that did arrive go with den delete
    let home = std::env::var("HOME").unwrap();
    let files = Path::new(&home).join(format!(".den-agent/content/default/{id}"));
    assert!(files.is_dir());
    let r = run(s.den().args(["delete", &id]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!files.exists(), "nothing left on the machine");
}

/// A failing postCreateCommand on the machine: den exits with the hook's
/// code, and what was made on the machine can still be reached and deleted.
#[test]
fn ssh_provider_failed_hook_is_deletable() {
    require_engine();
    let s = Sandbox::new();
    let sshd = Sshd::start(&s.path().join("sshd"));
    let id = unique_id("sshfail");
    let _c = s.cleanup(&id);
    let p = s.project(
        "failproj",
        &[(".devcontainer.json", r#"{"image": "den-test/busybox", "postCreateCommand": "exit 9"}"#)],
    );
    let mut up = s.den();
    up.args(["up", "--provider", "ssh", "--id", &id]);
    up.args(sshd.provider_args());
    let r = run(up.arg(&p));
    assert_eq!(r.code, 9, "{}", r.stderr);
    let container = format!("den-{id}");
    assert_eq!(container_running(&container), Some(true));
    assert_eq!(run(s.den().args(["ssh", &id, "--command", "echo reachable"])).stdout, "reachable\n");
    let r = run(s.den().args(["delete", &id]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(container_running(&container), None, "nothing left on the machine");
}

/// An up killed before the machine's agent answered leaves den's record
/// without the agent's place; `den delete` still removes what the machine
/// got (its container and record), looking where the agent would be.
#[test]
fn a_remote_up_killed_before_it_answered_is_deletable() {
    require_engine();
    let s = Sandbox::new();
    let sshd = Sshd::start(&s.path().join("sshd"));
    let id = unique_id("sshkilled");
    let _c = s.cleanup(&id);
    let p = s.project(
        "killedproj",
        &[(".devcontainer.json", r#"{"image": "den-test/busybox", "postCreateCommand": "sleep 4"}"#)],
    );
    let container = format!("den-{id}");
    let mut up = s.den();
    up.args(["up", "--provider", "ssh", "--id", &id]).args(sshd.provider_args()).arg(&p);
    let mut child = up.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while container_running(&container) != Some(true) {
        assert!(start.elapsed() < Duration::from_secs(60), "the container never came");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let r = run(s.den().args(["delete", &id]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(container_running(&container), None, "the container stayed on the machine");
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "NotFound");
}
