//! The agent without an upload: a container den makes on the local engine
//! mounts den's binary read-only from DEN_HOME/agents/FINGERPRINT; an
//! upgraded den leaves running workspaces on the agent they have until
//! `up` checks the versions (then it uploads, as before) or the container
//! is made again (then it mounts the new copy).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const MOUNT_DIR: &str = "/usr/local/lib/den-agent";

/// A den whose fingerprint differs from the built one's: the same program
/// with bytes appended (another size and modification time), as an
/// upgrade looks to a running workspace.
pub fn upgraded_den(s: &Sandbox) -> PathBuf {
    let path = s.path().join("den-upgraded");
    let mut bytes = std::fs::read(den_bin()).unwrap();
    bytes.extend(b"\0an upgrade for the e2e tests");
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `den ARGS` through another den binary, with the sandbox's DEN_HOME.
pub fn den_at(s: &Sandbox, bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("DEN_HOME", s.home()).env("DEN_SSH_CONFIG", s.path().join("ssh_config")).env_remove("DEN_LOG");
    c
}

/// The host folder mounted at the agent's place, and whether read-only.
fn agent_mount_of(c: &str) -> Option<(String, bool)> {
    let mounts: serde_json::Value = serde_json::from_str(&docker(&["inspect", "-f", "{{json .Mounts}}", c])).unwrap();
    mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == MOUNT_DIR)
        .map(|m| (m["Source"].as_str().unwrap().to_string(), m["RW"] == false))
}

/// The program serving a `den ssh` session through the exec tunnel, which
/// runs the agent the record names (its parent's program, as the tunnel
/// started it: the SSH server is not dumpable, so /proc/PID/exe cannot be
/// read). The direct line (docs/line.md) is left out: its server is one
/// long-running agent.
fn serving_agent(cmd: &mut Command, id: &str) -> String {
    let parent = r#"tr "\0" "\n" < /proc/$PPID/cmdline | head -1"#;
    let r = run(cmd.env("DEN_TEST_LINE", "exec").args(["ssh", id, "--command", parent]));
    r.assert_ok();
    r.stdout.trim().to_string()
}

/// The agent path the workspace's record holds.
fn recorded_agent(s: &Sandbox, id: &str) -> String {
    let rec = s.home().join("contexts/default/workspaces").join(id).join("workspace.json");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap();
    rec["agentPath"].as_str().unwrap().to_string()
}

/// The copies of den's binary in DEN_HOME.
fn copies(s: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.home().join("agents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_new_container_runs_the_mounted_agent_and_nothing_is_uploaded() {
    require_engine();
    let s = Sandbox::new();
    // A non-root container user: the container's processes run as nobody.
    let w = s.workspace(
        "mounted",
        r#"{"image": "den-test/debian:bookworm", "containerUser": "nobody", "remoteUser": "root"}"#,
    );
    let r = run(s.den().args(["--debug", "up", "--output", "json", "--id", &w.id]).arg(&w.folder));
    r.assert_ok();
    let up: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(up["agentUploaded"], false, "{}", r.stderr);
    assert!(!r.stderr.contains("copying the agent"), "{}", r.stderr);
    let c = w.container();
    let (source, read_only) = agent_mount_of(&c).expect("the agent's folder is mounted");
    assert!(read_only);
    let agents = s.home().join("agents");
    assert!(Path::new(&source).starts_with(&agents), "{source}");
    // DEN_HOME and its agents folder stay private; the copy is 0755.
    for (p, mode) in [(s.home(), 0o700), (agents.clone(), 0o700), (PathBuf::from(&source), 0o755)] {
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, mode, "{}", p.display());
    }
    assert_eq!(std::fs::metadata(Path::new(&source).join("den")).unwrap().mode() & 0o777, 0o755);

    // Sessions are served by the mounted agent, and nothing was written
    // where an uploaded one would go.
    assert_eq!(serving_agent(&mut s.den(), &w.id), format!("{MOUNT_DIR}/den"));
    let absent = "test -e /usr/local/bin/den || test -e /tmp/den-agent/den && echo there || echo absent";
    assert_eq!(docker(&["exec", "-u", "0", &c, "sh", "-c", absent]).trim(), "absent");
    // The container's own (non-root) user runs it; root cannot change it.
    let as_user = docker(&["exec", &c, "sh", "-c", &format!("id -un; {MOUNT_DIR}/den --version")]);
    assert!(as_user.starts_with("nobody\nden "), "{as_user}");
    let write = format!("echo x > {MOUNT_DIR}/den 2>/dev/null && echo written || echo refused");
    assert_eq!(docker(&["exec", "-u", "0", &c, "sh", "-c", &write]).trim(), "refused");

    // A warm up finds it without a copy either.
    let again = s.up(&w.folder, &w.id, &[]);
    assert_eq!(again["agentUploaded"], false);
    assert_eq!(copies(&s).len(), 1);
}

#[test]
fn an_upgrade_keeps_running_workspaces_and_recreate_mounts_the_new_agent() {
    require_engine();
    let s = Sandbox::new();
    let (web, later) = (free_port(), free_port());
    let config = format!(
        r#"{{"image": "den-test/busybox", "forwardPorts": [{web}],
  "postStartCommand": "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && (busybox httpd -p {web} -h /tmp/www &)"}}"#
    );
    let w = s.workspace("upgrade", &config);
    w.up(&["--ide", "none"]).assert_ok();
    let c = w.container();
    assert_eq!(http_get_within(web, Duration::from_secs(10)), "hello\n");
    let (old_source, _) = agent_mount_of(&c).unwrap();
    let old_exe = std::fs::metadata(Path::new(&old_source).join("den")).unwrap();

    // den is upgraded; the running workspace keeps its agent: sessions and
    // the forwarder (a port opened now is forwarded within 2 s) work.
    let new = upgraded_den(&s);
    assert_eq!(serving_agent(&mut den_at(&s, &new), &w.id), format!("{MOUNT_DIR}/den"));
    let serve = format!("mkdir -p /tmp/l && echo later > /tmp/l/index.html && busybox httpd -p {later} -h /tmp/l");
    run(den_at(&s, &new).args(["ssh", &w.id, "--", "sh", "-c", &serve])).assert_ok();
    assert_eq!(http_get_within(later, Duration::from_secs(2)), "later\n");

    // `up` checks the versions: the new agent is uploaded where an agent
    // may be written, and the record names it; the mounted copy stays as
    // it was.
    let r = run(den_at(&s, &new).args(["up", "--output", "json", "--ide", "none", "--id", &w.id]).arg(&w.folder));
    r.assert_ok();
    assert_eq!(r.json()["agentUploaded"], true, "{}", r.stderr);
    assert_eq!(recorded_agent(&s, &w.id), "/usr/local/bin/den");
    assert_eq!(serving_agent(&mut den_at(&s, &new), &w.id), "/usr/local/bin/den");
    run(den_at(&s, &new).args(["ssh", &w.id, "--command", "true"])).assert_ok();
    assert_eq!(agent_mount_of(&c).unwrap().0, old_source);
    let still = std::fs::metadata(Path::new(&old_source).join("den")).unwrap();
    assert_eq!((still.ino(), still.mtime(), still.len()), (old_exe.ino(), old_exe.mtime(), old_exe.len()));
    assert_eq!(http_get_within(web, Duration::from_secs(10)), "hello\n");

    // A new container gets the new den's copy; the old one is kept.
    let r = run(den_at(&s, &new)
        .args(["up", "--output", "json", "--ide", "none", "--recreate", "--id", &w.id])
        .arg(&w.folder));
    r.assert_ok();
    assert_eq!(r.json()["agentUploaded"], false, "{}", r.stderr);
    let (new_source, _) = agent_mount_of(&c).unwrap();
    assert_ne!(new_source, old_source);
    assert_eq!(copies(&s).len(), 2);
    assert_eq!(recorded_agent(&s, &w.id), format!("{MOUNT_DIR}/den"));
    assert_eq!(serving_agent(&mut den_at(&s, &new), &w.id), format!("{MOUNT_DIR}/den"));
    let id_in = docker(&["exec", &c, "cat", &format!("{MOUNT_DIR}/den.id")]);
    assert_eq!(Path::new(&new_source).file_name().unwrap().to_string_lossy(), id_in.trim());
}

#[test]
fn podman_and_compose_containers_mount_the_agent_too() {
    require_engine();
    let s = Sandbox::new();
    let conf = "/var/tmp/den-engine/containers.conf";
    let w = s.workspace("podmount", r#"{"image": "den-test/busybox"}"#);
    let r = run(s
        .den()
        .env("CONTAINERS_CONF", conf)
        .args(["up", "--provider", "podman", "--output", "json", "--id", &w.id])
        .arg(&w.folder));
    r.assert_ok();
    assert_eq!(r.json()["agentUploaded"], false, "{}", r.stderr);
    assert_eq!(serving_agent(s.den().env("CONTAINERS_CONF", conf), &w.id), format!("{MOUNT_DIR}/den"));
    run(s.den().env("CONTAINERS_CONF", conf).args(["delete", "--force", &w.id])).assert_ok();

    let compose = "services:\n  app:\n    image: den-test/busybox\n    command: sleep infinity\n";
    let folder = s.project(
        "compmount",
        &[
            (".devcontainer/devcontainer.json", r#"{"dockerComposeFile": "docker-compose.yml", "service": "app"}"#),
            (".devcontainer/docker-compose.yml", compose),
        ],
    );
    let id = unique_id("compmount");
    let _c = s.cleanup(&id);
    let up = s.up(&folder, &id, &[]);
    assert_eq!(up["agentUploaded"], false);
    assert!(agent_mount_of(&container(&id)).is_some_and(|(_, ro)| ro));
    assert_eq!(serving_agent(&mut s.den(), &id), format!("{MOUNT_DIR}/den"));
}

/// The body of `GET /index.html` on a forwarded port, waiting at most
/// `within` for it to answer.
fn http_get_within(port: u16, within: Duration) -> String {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let body = http_get(port);
            if !body.is_empty() {
                return body;
            }
        }
        assert!(start.elapsed() < within, "nothing answered on port {port} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
