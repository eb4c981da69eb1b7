//! `den read-config` through the binary: output, errors, exit codes.

use crate::common::{run, Sandbox};

#[test]
fn prints_the_resolved_configuration() {
    let s = Sandbox::new();
    let p = s.project(
        "My_App",
        &[(
            ".devcontainer/devcontainer.json",
            r#"{
            // comment
            "image": "den-test/debian:bookworm",
            "containerEnv": {"HOME_COPY": "${localEnv:DEN_TEST_HOME:none}"},
            "postCreateCommand": "echo ${containerWorkspaceFolder}",
        }"#,
        )],
    );
    let r = run(s.den().args(["read-config", "--output", "json"]).arg(&p).env("DEN_TEST_HOME", "/h"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["configuration"]["containerEnv"]["HOME_COPY"], "/h");
    assert_eq!(v["configuration"]["postCreateCommand"], "echo /workspaces/My_App");
    assert_eq!(v["workspace"]["workspaceFolder"], "/workspaces/My_App");
    // text output is the same document, pretty
    let t = run(s.den().args(["read-config"]).arg(&p).env("DEN_TEST_HOME", "/h"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&t.stdout).unwrap(), v);
}

#[test]
fn malformed_file_gets_a_located_error_and_exit_1() {
    let s = Sandbox::new();
    let p = s.project("bad", &[(".devcontainer.json", "{\n  \"image\": \"x\"\n  \"init\": true\n}\n")]);
    let r = run(s.den().arg("read-config").arg(&p));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    let file = p.canonicalize().unwrap().join(".devcontainer.json");
    assert_eq!(r.stderr.trim(), format!("den: {}:3:3: expected a comma before this value", file.display()));
}

#[test]
fn missing_folder_and_usage_errors() {
    let s = Sandbox::new();
    let r = run(s.den().args(["read-config", "/nonexistent/den-folder"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/den-folder"), "{}", r.stderr);
    let r = run(s.den().args(["read-config", "--output", "yaml"]));
    assert_eq!(r.code, 2, "clap's usage error: {}", r.stderr);
}
