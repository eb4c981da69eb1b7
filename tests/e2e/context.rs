//! Contexts: separate providers and workspaces under one DEN_HOME.

use crate::common::{require_engine, run, unique_id, Sandbox};

fn json(r: &crate::common::Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

#[test]
fn contexts_keep_workspaces_apart() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("ctx");
    let list = json(&run(s.den().args(["context", "list", "--output", "json"])));
    assert_eq!(list, serde_json::json!([{"name": "default", "current": true}]));
    assert_eq!(run(s.den().args(["context", "create", "work", "-o", "TEAM=core"])).code, 0);
    let r = run(s.den().args(["context", "create", "work"]));
    assert_eq!(r.code, 1, "exists already: {}", r.stderr);
    assert_eq!(run(s.den().args(["context", "create", "Bad Name"])).code, 1);
    assert_eq!(run(s.den().args(["context", "use", "work"])).code, 0);
    let list = json(&run(s.den().args(["context", "list", "--output", "json"])));
    assert_eq!(list[1], serde_json::json!({"name": "work", "current": true}));
    let opts = json(&run(s.den().args(["context", "options", "--output", "json"])));
    assert_eq!(opts, serde_json::json!({"TEAM": "core"}));
    assert_eq!(run(s.den().args(["context", "set-options", "-o", "TEAM="])).code, 0);
    assert_eq!(json(&run(s.den().args(["context", "options", "--output", "json"]))), serde_json::json!({}));

    let p = s.project("ctxproj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let up = run(s.den().args(["up", "--output", "json", "--id", &id]).arg(&p));
    let v = json(&up);
    assert_eq!(v["container"], format!("den-work-{id}"), "the context is part of the container name");
    let cfg = std::fs::read_to_string(s.path().join("ssh_config")).unwrap();
    assert!(cfg.contains(&format!("--context work ssh --stdio {id}")), "{cfg}");
    let o = s.openssh(&id).arg("echo via-context").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "via-context\n", "{}", String::from_utf8_lossy(&o.stderr));

    // the default context does not see it
    let other = json(&run(s.den().args(["--context", "default", "list", "--output", "json"])));
    assert_eq!(other, serde_json::json!([]));
    let r = run(s.den().args(["--context", "nope", "list"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("there is no context `nope`"), "{}", r.stderr);

    let r = run(s.den().args(["context", "delete", "work"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("still has workspace(s) {id}")), "{}", r.stderr);
    assert_eq!(run(s.den().args(["delete", &id])).code, 0);
    assert_eq!(run(s.den().args(["context", "delete", "work"])).code, 0);
    let list = json(&run(s.den().args(["context", "list", "--output", "json"])));
    assert_eq!(list, serde_json::json!([{"name": "default", "current": true}]), "back to default");
    assert_eq!(run(s.den().args(["context", "delete", "default"])).code, 1);
}
