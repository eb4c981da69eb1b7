//! A machine provider (tests/providers/folder-machine: machines are folders
//! on this host) through its whole lifecycle: create, inject onto the
//! machine, container by the agent there, den ssh and OpenSSH, inactivity
//! auto-stop, start again on ssh, a second workspace on the same machine,
//! stop and delete of the last workspace taking the machine with them.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{container_running, repo_root, require_engine, run, unique_id, Sandbox};

#[test]
fn machine_provider_lifecycle() {
    require_engine();
    let s = Sandbox::new();
    let den = |args: &[&str]| run(s.den().args(args));
    let manifest = repo_root().join("tests/providers/folder-machine/provider.yaml");
    let r = den(&["provider", "add", manifest.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tool = s.home().join("contexts/default/providers/folder-machine/binaries/MACHINE_TOOL/machine-tool.sh");
    assert!(tool.is_file(), "the manifest's binary was installed");
    let id = unique_id("mach");
    let id2 = unique_id("mach2");
    let _c = s.cleanup(&id);
    let _c2 = s.cleanup(&id2);
    let p = s.project(
        "machproj",
        &[
            (
                ".devcontainer.json",
                r#"{"image": "den-test/busybox", "postStartCommand": "echo started >> /tmp/starts"}"#,
            ),
            ("file.txt", "on the machine\n"),
        ],
    );
    let folder = p.to_str().unwrap();
    let r = den(&[
        "up",
        "--provider",
        "folder-machine",
        "--provider-option",
        "INACTIVITY_TIMEOUT=3s",
        "--id",
        &id,
        "--output",
        "json",
        folder,
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let container = v["container"].as_str().unwrap().to_string();
    let machine_folder = s.home().join(format!("contexts/default/machines/{id}"));
    assert!(machine_folder.join("disk/den").is_file(), "the agent went onto the machine");
    assert!(machine_folder.join("running").exists());
    let r = den(&["machine", "list", "--output", "json"]);
    let machines: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(machines[0]["id"], id.as_str());
    assert_eq!(machines[0]["status"], "Running");
    assert_eq!(machines[0]["workspaces"][0], id.as_str());

    let r = den(&["ssh", &id, "--command", "cat file.txt /tmp/starts"]);
    assert_eq!(r.stdout, "on the machine\nstarted\n", "{}", r.stderr);
    let o = s.openssh(&id).arg("echo via-openssh").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "via-openssh\n", "{}", String::from_utf8_lossy(&o.stderr));

    // Nobody connects for 3 s: the agent on the machine stops the container
    // and runs the manifest's agent.exec.shutdown.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let st = den(&["machine", "status", &id]).stdout;
        if st.trim() == "Stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "the machine did not stop by itself: {st}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(container_running(&container), Some(false), "its container stopped with it");
    assert_eq!(den(&["status", &id]).stdout.trim(), "Stopped");

    // den ssh starts the machine and the workspace again
    let r = den(&["ssh", &id, "--command", "cat /tmp/starts"]);
    assert_eq!(r.stdout, "started\nstarted\n", "{}", r.stderr);
    assert_eq!(den(&["machine", "status", &id]).stdout.trim(), "Running");

    // a second workspace on the same machine
    let p2 = s.project("machproj2", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = den(&["up", "--provider", "folder-machine", "--machine", &id, "--id", &id2, p2.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(den(&["ssh", &id2, "--command", "echo two"]).stdout, "two\n");
    assert!(!s.home().join(format!("contexts/default/machines/{id2}")).exists(), "no machine of its own");
    let r = den(&["machine", "delete", &id]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("holds workspace(s)"), "{}", r.stderr);

    // stopping one workspace leaves the machine running for the other
    assert_eq!(den(&["stop", &id2]).code, 0);
    assert_eq!(den(&["machine", "status", &id]).stdout.trim(), "Running");
    assert_eq!(den(&["status", &id2]).stdout.trim(), "Stopped");
    // deleting one workspace keeps the machine
    let r = den(&["delete", &id2]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(machine_folder.join("disk").is_dir());
    // stopping the last running one stops the machine
    assert_eq!(den(&["stop", &id]).code, 0);
    assert_eq!(den(&["machine", "status", &id]).stdout.trim(), "Stopped");
    assert_eq!(container_running(&container), Some(false));
    // deleting the last one deletes the machine, stopped or not
    let r = den(&["delete", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!machine_folder.exists(), "the machine is gone");
    assert_eq!(container_running(&container), None, "and its container");
    assert_eq!(den(&["machine", "list", "--output", "json"]).stdout.trim(), "[]");
    assert_no_watcher(&machine_folder);
}

/// No agent process of the deleted machine is left behind.
fn assert_no_watcher(machine_folder: &Path) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let needle = machine_folder.display().to_string();
    loop {
        let left = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        });
        if !left {
            return;
        }
        assert!(Instant::now() < deadline, "a process of the deleted machine is still running");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A machine that cannot be made: the failing command and its stderr, a
/// non-zero exit, and a machine record that `den machine delete` clears.
#[test]
fn failing_create_is_reported_and_cleanable() {
    let s = Sandbox::new();
    let den = |args: &[&str]| run(s.den().args(args));
    let manifest = s.path().join("broken.yaml");
    std::fs::write(
        &manifest,
        "name: broken\nexec:\n  create: echo 'quota exceeded in region x' >&2; exit 3\n  status: echo NOTFOUND\n  delete: exit 1\n  command: exit 1\n",
    )
    .unwrap();
    assert_eq!(den(&["provider", "add", manifest.to_str().unwrap()]).code, 0);
    let p = s.project("brokenproj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = den(&["up", "--provider", "broken", "--id", "bm", p.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("provider `broken`: exec.create failed"), "{}", r.stderr);
    assert!(r.stderr.contains("quota exceeded in region x"), "{}", r.stderr);
    assert_eq!(den(&["status", "bm"]).stdout.trim(), "NotFound");
    assert_eq!(den(&["machine", "status", "bm"]).stdout.trim(), "NotFound");
    let r = den(&["machine", "delete", "bm"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(den(&["machine", "list", "--output", "json"]).stdout.trim(), "[]");

    // a status that prints something else is named as such
    std::fs::write(&manifest, "name: broken\nexec:\n  create: 'true'\n  status: echo maybe\n  command: exit 1\n")
        .unwrap();
    assert_eq!(den(&["provider", "add", manifest.to_str().unwrap()]).code, 0);
    let r = den(&["up", "--provider", "broken", "--id", "bm2", p.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("exec.status printed \"maybe\""), "{}", r.stderr);
}
