//! `den provider …` through the binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{free_port, require_engine, run, unique_id, wait_port, Daemon, Sandbox};

fn json(r: &crate::common::Run) -> serde_json::Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

#[test]
fn builtin_docker_is_listed_and_default() {
    let s = Sandbox::new();
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    let docker = list.as_array().unwrap().iter().find(|p| p["name"] == "docker").expect("docker is built in");
    assert_eq!(docker["default"], true);
    assert_eq!(docker["builtin"], true);
    let opts = json(&run(s.den().args(["provider", "options", "docker", "--output", "json"])));
    assert_eq!(opts["DOCKER_PATH"]["value"], "docker");
    assert_eq!(opts["DOCKER_PATH"]["source"], "default");
    assert!(opts.get("DOCKER_HOST").is_some() && opts.get("INACTIVITY_TIMEOUT").is_some());
}

#[test]
fn set_options_validates_and_saves() {
    let s = Sandbox::new();
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "INACTIVITY_TIMEOUT=soon"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("INACTIVITY_TIMEOUT=\"soon\" is not valid"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "NOPE=1"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider docker has no option NOPE"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "INACTIVITY_TIMEOUT=10m"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let opts = json(&run(s.den().args(["provider", "options", "--output", "json"])));
    assert_eq!(opts["INACTIVITY_TIMEOUT"]["value"], "10m");
    assert_eq!(opts["INACTIVITY_TIMEOUT"]["source"], "user");
    let r = run(s.den().args(["provider", "set-options", "docker", "-o", "bad"]));
    assert_eq!(r.code, 2, "not KEY=VALUE is a usage error: {}", r.stderr);
}

#[test]
fn add_use_and_delete_a_devpod_style_provider() {
    let s = Sandbox::new();
    let dir = s.project(
        "prov",
        &[(
            "provider.yaml",
            "name: mydocker\nversion: v1.0.0\ndescription: docker under another name\noptions:\n  DOCKER_PATH:\n    default: docker\n  REGION:\n    required: true\n    command: echo eu-1\nagent:\n  local: true\n  driver: docker\n  docker:\n    path: ${DOCKER_PATH}\nexec:\n  command: '\"${DEVPOD}\" helper sh -c \"${COMMAND}\"'\n",
        )],
    );
    let added = json(&run(s.den().args(["provider", "add", "--output", "json"]).arg(dir.join("provider.yaml"))));
    assert_eq!(added["name"], "mydocker");
    let opts = json(&run(s.den().args(["provider", "options", "mydocker", "--output", "json"])));
    assert_eq!(opts["REGION"]["value"], "eu-1");
    assert_eq!(opts["REGION"]["source"], "command");
    assert_eq!(run(s.den().args(["provider", "use", "mydocker"])).code, 0);
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    assert!(list.as_array().unwrap().iter().any(|p| p["name"] == "mydocker" && p["default"] == true));
    assert_eq!(run(s.den().args(["provider", "delete", "mydocker"])).code, 0);
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    assert!(list.as_array().unwrap().iter().any(|p| p["name"] == "docker" && p["default"] == true));
    let r = run(s.den().args(["provider", "delete", "docker"]));
    assert_eq!(r.code, 1, "a built-in cannot be deleted");
    let r = run(s.den().args(["provider", "use", "ghost"]));
    assert!(r.stderr.contains("provider `ghost` is not installed"), "{}", r.stderr);
}

#[test]
fn bad_manifest_is_refused_with_its_origin() {
    let s = Sandbox::new();
    let dir = s.project("bad", &[("provider.yaml", "name: x\noptions: [\n")]);
    let r = run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml")));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider.yaml: not a valid provider manifest"), "{}", r.stderr);
    assert!(!s.home().join("contexts/default/providers/x").exists());
}

#[test]
fn up_with_an_added_provider_and_a_required_option() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("addedprov");
    let _c = s.cleanup(&id);
    let dir = s.project(
        "prov2",
        &[(
            "provider.yaml",
            "name: strict\noptions:\n  DOCKER_PATH:\n    default: docker\n  TEAM:\n    required: true\nagent:\n  local: \"true\"\n  path: /opt/den-agent/den\n  docker:\n    path: ${DOCKER_PATH}\n",
        )],
    );
    assert_eq!(run(s.den().args(["provider", "add"]).arg(dir.join("provider.yaml"))).code, 0);
    let p = s.project("proj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["up", "--provider", "strict", "--id", &id]).arg(&p));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("provider option TEAM is required"), "{}", r.stderr);
    let up = s.up(&p, &id, &["--provider", "strict", "--provider-option", "TEAM=core"]);
    assert_eq!(up["provider"], "strict");
    // the provider's agent.path is where the agent went
    let ls = crate::common::exec(&format!("den-{id}"), "ls /opt/den-agent/den");
    assert_eq!(ls.trim(), "/opt/den-agent/den");
}

/// `den helper sh -c CMD [ARG0 ARGS…]` behaves as `sh -c` does, for
/// manifests' `"${DEVPOD}" helper sh -c "${COMMAND}"`.
#[test]
fn helper_sh_is_sh() {
    let s = Sandbox::new();
    let r = run(s.den().args(["helper", "sh", "-c", "printf '%s|' \"$0\" \"$@\"; exit 3", "a", "-b", "c d"]));
    assert_eq!(r.stdout, "a|-b|c d|");
    assert_eq!(r.code, 3);
    let r = run(s
        .den()
        .args(["helper", "sh", "-c", "echo \"$X\" ; cat"])
        .env("X", "$(nope); x")
        .stdin(std::process::Stdio::null()));
    assert_eq!(r.stdout, "$(nope); x\n");
}

/// A provider with two required options: `provider options` lists them
/// unset, and `set-options` takes them one at a time; `up` names what is
/// still missing.
#[test]
fn required_options_one_at_a_time() {
    let s = Sandbox::new();
    let m = s.path().join("two.yaml");
    std::fs::write(&m, "name: two\noptions:\n  TOKEN:\n    required: true\n  REGION:\n    required: true\n    enum: [eu, us]\nexec:\n  command: exit 1\n").unwrap();
    assert_eq!(run(s.den().args(["provider", "add"]).arg(&m)).code, 0);
    let r = run(s.den().args(["provider", "options", "two"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(required, not set)"), "{}", r.stdout);
    let r = run(s.den().args(["provider", "set-options", "two", "-o", "REGION=eu"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(s.den().args(["provider", "set-options", "two", "-o", "REGION=mars"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("it must be one of eu, us"), "{}", r.stderr);
    let p = s.project("twoproj", &[(".devcontainer.json", r#"{"image": "den-test/busybox"}"#)]);
    let r = run(s.den().args(["up", "--provider", "two", "--id", "two"]).arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("provider option TOKEN is required"), "{}", r.stderr);
    let r = run(s.den().args(["provider", "options", "two", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["REGION"]["value"], "eu");
}

/// A fake release host: `python3 -m http.server` on loopback serving
/// `root`, stopped (with its group) when dropped.
struct Releases {
    root: PathBuf,
    base: String,
    _server: Daemon,
}

impl Releases {
    fn start(s: &Sandbox) -> Releases {
        let root = s.path().join("releases");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let server = Daemon::spawn(
            Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
                .arg(&root)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_port(port);
        Releases { root, base: format!("http://127.0.0.1:{port}"), _server: server }
    }

    /// Writes `rel` (a path under the host) and returns its URL.
    fn put(&self, rel: &str, content: &str) -> String {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        format!("{}/{rel}", self.base)
    }

    /// `den …` with this host as the release host, and a PATH without
    /// curl or wget: den fetches with its own client.
    fn den(&self, s: &Sandbox, args: &[&str]) -> crate::common::Run {
        let bare = s.path().join("bare-path");
        std::fs::create_dir_all(&bare).unwrap();
        run(s.den().args(args).env("DEN_PROVIDER_RELEASES_URL", &self.base).env("PATH", &bare))
    }
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest of `version` whose binary TOOL is at `path`, with options.
fn release_manifest(version: &str, path: &str, tool: &str, options: &str) -> String {
    format!(
        "name: fake\nversion: {version}\noptions:\n{options}binaries:\n  TOOL:\n    - os: linux\n      arch: {arch}\n      path: {path}\n      checksum: {sum}\nexec:\n  command: exit 1\n",
        arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        sum = sha256(tool),
    )
}

fn installed_tool(s: &Sandbox, provider: &str) -> String {
    let p = s.home().join(format!("contexts/default/providers/{provider}/binaries/TOOL/tool.sh"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn listed(s: &Sandbox, name: &str) -> Option<serde_json::Value> {
    let list = json(&run(s.den().args(["provider", "list", "--output", "json"])));
    list.as_array().unwrap().iter().find(|p| p["name"] == name).cloned()
}

/// DevPod's sources: a short name with a version, its binary beside the
/// manifest (relative path) and checked; `update` from the recorded source
/// and from a new one, keeping the options set; OWNER/REPO@VERSION with
/// --name and --use; a URL; a built-in's name.
#[test]
fn add_and_update_from_releases() {
    let s = Sandbox::new();
    let r = Releases::start(&s);
    let dl = "loft-sh/devpod-provider-fake/releases/download";
    let v1_tool = "#!/bin/sh\necho v1\n";
    r.put(&format!("{dl}/v1/tool.sh"), v1_tool);
    let opts = "  REGION:\n    enum: [eu, us]\n  OLD: {}\n";
    r.put(&format!("{dl}/v1/provider.yaml"), &release_manifest("v1", "tool.sh", v1_tool, opts));
    let v2_tool = "#!/bin/sh\necho v2\n";
    let v2_url = r.put(&format!("{dl}/v2/tool.sh"), v2_tool);
    let latest = release_manifest("v2", &v2_url, v2_tool, "  REGION:\n    enum: [eu, us]\n");
    r.put("loft-sh/devpod-provider-fake/releases/latest/download/provider.yaml", &latest);

    let added = json(&r.den(&s, &["provider", "add", "fake@v1", "-o", "REGION=eu", "-o", "OLD=x", "--output", "json"]));
    assert_eq!(added["name"], "fake");
    assert_eq!(added["source"], "loft-sh/devpod-provider-fake@v1");
    assert_eq!(installed_tool(&s, "fake"), v1_tool);
    let opts = json(&run(s.den().args(["provider", "options", "fake", "--output", "json"])));
    assert_eq!((opts["REGION"]["value"].as_str(), opts["REGION"]["source"].as_str()), (Some("eu"), Some("user")));

    // again from the recorded source: the same release
    let u = r.den(&s, &["provider", "update", "fake"]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    assert!(u.stderr.contains("updated provider `fake` from loft-sh/devpod-provider-fake@v1"), "{}", u.stderr);
    // from a new source: the latest release; REGION stays, OLD is gone
    let u = r.den(&s, &["provider", "update", "fake", "loft-sh/devpod-provider-fake", "--output", "json"]);
    let u = json(&u);
    assert_eq!((u["previousVersion"].as_str(), u["version"].as_str()), (Some("v1"), Some("v2")));
    assert_eq!(u["droppedOptions"], serde_json::json!(["OLD"]));
    assert_eq!(installed_tool(&s, "fake"), v2_tool);
    let opts = json(&run(s.den().args(["provider", "options", "fake", "--output", "json"])));
    assert_eq!(opts["REGION"]["value"], "eu");
    assert_eq!(listed(&s, "fake").unwrap()["source"], "loft-sh/devpod-provider-fake");

    // OWNER/REPO@VERSION under another name, made the default
    r.put("me/other/releases/download/v3/provider.yaml", "name: other\nversion: v3\nexec:\n  command: exit 1\n");
    let a = r.den(&s, &["provider", "add", "me/other@v3", "--name", "mine", "--use"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let mine = listed(&s, "mine").expect("added under --name");
    assert_eq!((mine["default"].as_bool(), mine["version"].as_str()), (Some(true), Some("v3")));
    assert!(listed(&s, "other").is_none());
    // an http(s) URL
    let url = format!("{}/me/other/releases/download/v3/provider.yaml", r.base);
    assert_eq!(r.den(&s, &["provider", "add", &url]).code, 0);
    assert_eq!(listed(&s, "other").unwrap()["source"], url.as_str());
    // a built-in's name adds nothing; its options are saved
    let b = r.den(&s, &["provider", "add", "ssh", "-o", "HOST=me@box"]);
    assert!(b.code == 0 && b.stderr.contains("`ssh` is built into den"), "{}", b.stderr);
    let opts = json(&run(s.den().args(["provider", "options", "ssh", "--output", "json"])));
    assert_eq!(opts["HOST"]["value"], "me@box");
}

/// Bad sources and bad releases fail with what was tried, and add nothing.
#[test]
fn bad_provider_sources_are_refused_clearly() {
    let s = Sandbox::new();
    let r = Releases::start(&s);
    let providers = s.home().join("contexts/default/providers");
    let refused = |args: &[&str], wants: &[&str]| {
        let out = r.den(&s, args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        for w in wants {
            assert!(out.stderr.contains(w), "{args:?}: no {w:?} in {}", out.stderr);
        }
    };
    let nosuch = format!("{}/loft-sh/devpod-provider-nosuch/releases/latest/download/provider.yaml", r.base);
    refused(
        &["provider", "add", "nosuch"],
        &[&format!("{nosuch}: the server answered 404"), "DevPod's release repository loft-sh/devpod-provider-nosuch"],
    );
    refused(
        &["provider", "add", "me/gone@v9"],
        &["me/gone/releases/download/v9/provider.yaml: the server answered 404"],
    );
    refused(&["provider", "add", "a/b/c"], &["provider source `a/b/c`", "not a release either"]);
    refused(&["provider", "add", "ftp://x/p.yaml"], &["http(s) only"]);
    refused(&["provider", "add", "http://example.com/p.yaml"], &["plain http is used only for loopback hosts"]);
    let broken = r.put("me/broken/releases/download/v1/provider.yaml", "name: broken\noptions: [\n");
    refused(
        &["provider", "add", "me/broken@v1"],
        &[&format!("{broken}: not a valid provider manifest"), "at line 2 column 10"],
    );
    let tool = "#!/bin/sh\necho hi\n";
    r.put("me/badsum/releases/download/v1/tool.sh", "#!/bin/sh\necho tampered\n");
    r.put("me/badsum/releases/download/v1/provider.yaml", &release_manifest("v1", "tool.sh", tool, "  A: {}\n"));
    refused(&["provider", "add", "me/badsum@v1"], &["binary TOOL: checksum mismatch"]);
    r.put("me/good/releases/download/v1/tool.sh", tool);
    r.put("me/good/releases/download/v1/provider.yaml", &release_manifest("v1", "tool.sh", tool, "  A: {}\n"));
    refused(&["provider", "add", "me/good@v1", "-o", "NOPE=1"], &["has no option NOPE"]);
    refused(&["provider", "add", "me/good@v1", "--name", "../x"], &["--name `../x`"]);
    refused(&["provider", "update", "ghost"], &["provider `ghost` is not installed"]);
    refused(&["provider", "update", "docker"], &["built into den"]);
    assert!(!providers.exists() || std::fs::read_dir(&providers).unwrap().next().is_none(), "something was added");
    // A provider added from a file before sources were recorded is updated
    // from a source given; a fetched manifest may not name local files.
    let m = s.path().join("p.yaml");
    std::fs::write(&m, "name: fake\nversion: v0\nexec:\n  command: exit 1\n").unwrap();
    assert_eq!(run(s.den().args(["provider", "add"]).arg(&m)).code, 0);
    std::fs::remove_file(providers.join("fake/source.json")).unwrap();
    refused(&["provider", "update", "fake"], &["has no recorded source", "den provider update fake SOURCE"]);
    let local = format!("file://{}", m.display());
    r.put("me/local/releases/download/v1/provider.yaml", &release_manifest("v1", &local, "x", "  A: {}\n"));
    refused(&["provider", "update", "fake", "me/local@v1"], &["is a file on this machine"]);
    assert_eq!(listed(&s, "fake").unwrap()["version"], "v0", "a failed update keeps the provider as it was");
}

/// A binary at an http URL is fetched by den itself: with no curl or wget
/// on PATH, a provider.yaml file naming one is added, its checksum checked.
#[test]
fn binaries_are_fetched_without_curl() {
    let s = Sandbox::new();
    let r = Releases::start(&s);
    let tool = "#!/bin/sh\necho fetched\n";
    let url = r.put("bin/tool.sh", tool);
    let m = s.path().join("local.yaml");
    std::fs::write(&m, release_manifest("v1", &url, tool, "  A: {}\n")).unwrap();
    let out = r.den(&s, &["provider", "add", m.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(installed_tool(&s, "fake"), tool);
    std::fs::write(&m, release_manifest("v1", &url, "something else", "  A: {}\n")).unwrap();
    let out = r.den(&s, &["provider", "update", "fake"]);
    assert!(out.code == 1 && out.stderr.contains("checksum mismatch"), "{}", out.stderr);
    assert_eq!(installed_tool(&s, "fake"), tool, "the installed binary stays");
}
