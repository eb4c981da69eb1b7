//! The conformance corpus: each folder under tests/conformance/ is a project
//! with its expected `den read-config --output json` (or expected error).
//! See tests/conformance/README.md for the format.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{den_bin, repo_root};

fn replace_strings(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_strings(x, from, to)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_strings(x, from, to)),
        _ => {}
    }
}

fn run_case(case: &Path) -> Result<(), String> {
    let project = case.join("project").canonicalize().map_err(|e| format!("no project/ folder: {e}"))?;
    let folder = project.to_string_lossy().into_owned();
    let mut cmd = Command::new(den_bin());
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(env) = std::fs::read_to_string(case.join("env")) {
        for line in env.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').ok_or(format!("bad env line: {line}"))?;
            cmd.env(k, v);
        }
    }
    cmd.arg("read-config").arg(&project);
    if let Ok(args) = std::fs::read_to_string(case.join("args")) {
        cmd.args(args.lines().filter(|l| !l.is_empty()));
    }
    cmd.args(["--output", "json"]);
    let out = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&folder, "<folder>");

    if let Ok(want) = std::fs::read_to_string(case.join("expected-error.txt")) {
        if out.status.code() != Some(1) {
            return Err(format!("expected exit 1, got {:?}; stdout: {stdout}", out.status.code()));
        }
        // With --output json, stdout holds only the JSON error object.
        let error: serde_json::Value = serde_json::from_str(stdout.trim())
            .map_err(|e| format!("an error must print only a JSON error on stdout ({e}): {stdout}"))?;
        if error["error"]["exitCode"] != 1 || !error["error"]["message"].is_string() {
            return Err(format!("not the JSON error den prints: {stdout}"));
        }
        return if stderr.contains(want.trim()) {
            Ok(())
        } else {
            Err(format!("stderr does not contain\n  {}\nit is\n  {}", want.trim(), stderr.trim()))
        };
    }

    let want_text = std::fs::read_to_string(case.join("expected.json")).map_err(|e| format!("expected.json: {e}"))?;
    let want: Value = serde_json::from_str(&want_text).map_err(|e| format!("expected.json: {e}"))?;
    if !out.status.success() {
        return Err(format!("den failed: {stderr}"));
    }
    let mut got: Value = serde_json::from_str(&stdout).map_err(|e| format!("stdout is not JSON ({e}): {stdout}"))?;
    let id = got["devcontainerId"].as_str().unwrap_or_default().to_string();
    if !id.is_empty() {
        replace_strings(&mut got, &id, "<id>");
    }
    replace_strings(&mut got, &folder, "<folder>");
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "output differs\n--- expected\n{}\n--- got\n{}",
            serde_json::to_string_pretty(&want).unwrap(),
            serde_json::to_string_pretty(&got).unwrap()
        ))
    }
}

#[test]
fn conformance_corpus() {
    let dir = repo_root().join("tests/conformance");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("project").is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases; it must have at least 40", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{}: {e}", c.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    eprintln!("conformance: {} cases passed", cases.len());
}
