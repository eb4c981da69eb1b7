//! What den leaves on the client's disk is the user's alone: every folder
//! 0700 and every file 0600 under DEN_HOME, whichever command made it first
//! (but the agent copies that containers run, inside the private agents/).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;
use crate::features::Registry;

/// Every entry under `root` whose group or other bits are set.
fn open_to_others(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        // The agent copies (agent_mount.rs) are mounted into containers
        // whose users must run them: public inside a 0700 agents/ folder,
        // which is checked like every folder.
        if p.parent() == Some(&root.join("agents")) {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            found.push(format!("{:o} {}", mode, p.display()));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    found.sort();
    found
}

#[test]
fn den_home_is_private_whichever_command_makes_it() {
    require_engine();
    let publisher = Sandbox::new();
    let registry = Registry::start(publisher.path(), None);
    let src = publisher.path().join("hello");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("devcontainer-feature.json"), r#"{"id": "hello", "version": "1.0.0"}"#).unwrap();
    std::fs::write(src.join("install.sh"), "#!/bin/sh\necho installing-hello\ntouch /usr/local/hello\n").unwrap();
    std::fs::set_permissions(src.join("install.sh"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let ns = format!("{}/t/features", registry.host());
    run(publisher.den().args(["feature", "publish", src.to_str().unwrap(), "--namespace", &ns])).assert_ok();

    // A new DEN_HOME, made by a command that fetches a Feature.
    let s = Sandbox::new();
    let port = free_port();
    let config =
        format!(r#"{{"image": "den-test/busybox", "features": {{"{ns}/hello:1": {{}}}}, "forwardPorts": [{port}]}}"#);
    let ws = s.workspace("modes", &config);
    assert!(!s.home().exists());
    run(s.den().args(["read-config", "--include-features-configuration", "--output", "json"]).arg(&ws.folder))
        .assert_ok();
    assert_eq!(open_to_others(&s.home()), Vec::<String>::new());

    // `up` adds build logs, the forwarder's log and pid, the record, keys.
    ws.up(&["--ide", "none"]).assert_ok();
    run(s.den().args(["ports", &ws.id])).assert_ok();
    assert_eq!(open_to_others(&s.home()), Vec::<String>::new());
    let agents: Vec<_> = std::fs::read_dir(s.home().join("agents")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(agents.len(), 1, "{agents:?}");
    let copy = std::fs::metadata(agents[0].join("den")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(copy, 0o755, "the agent copy is nobody's to change");
    let log = s.home().join("contexts/default/workspaces").join(&ws.id).join("forwarder.log");
    assert!(log.is_file(), "no forwarder log at {}", log.display());
    // In the image the Feature's files were readable (the install ran).
    assert_eq!(exec(&ws.container(), "test -e /usr/local/hello && echo yes").trim(), "yes");
}
