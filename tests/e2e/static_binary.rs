//! den is its own agent, so its binary must run in any Linux container.

use std::process::Command;

use crate::common::{den_bin, docker, require_engine};

#[test]
fn binary_is_statically_linked() {
    let out = Command::new("file").arg("-L").arg(den_bin()).output().expect("file(1) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("statically linked") || text.contains("static-pie linked"), "{text}");
    let ldd = Command::new("ldd").arg(den_bin()).output().expect("ldd runs");
    let all = format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    assert!(all.contains("not a dynamic executable") || all.contains("statically linked"), "{all}");
}

#[test]
fn binary_runs_in_a_busybox_only_image() {
    require_engine();
    let bin = den_bin();
    let mount = format!("{}:/den:ro", bin.display());
    // No libc at all in this image: only a static binary can run.
    let out = docker(&["run", "--rm", "-v", &mount, "den-test/busybox", "/den", "--version"]);
    assert!(out.starts_with("den "), "{out}");
    let ls = docker(&["run", "--rm", "den-test/busybox", "sh", "-c", "ls /lib /lib64 /usr/lib 2>&1 || true"]);
    assert!(!ls.contains("libc"), "the busybox image must have no libc: {ls}");
}
