//! Dev Container Features, end to end: local folders, a real registry
//! (Debian's docker-registry on 127.0.0.1, with and without htpasswd auth),
//! a tarball served over loopback http, the lockfile, and the image cache.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64ct::Encoding;

use crate::common::*;

/// Waits (bounded) until `url` answers anything over http.
fn wait_http(port: u16, child: &mut Child) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server on port {port} exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answers on 127.0.0.1:{port} after 5 s");
}

/// A real OCI registry (Debian's docker-registry), on loopback, stopped
/// when dropped.
pub struct Registry {
    pub port: u16,
    child: Child,
}

impl Registry {
    /// `htpasswd`: (user, password) that the registry requires.
    pub fn start(dir: &Path, htpasswd: Option<(&str, &str)>) -> Registry {
        let port = free_port();
        let root = dir.join(format!("registry-{port}"));
        std::fs::create_dir_all(&root).unwrap();
        let mut config = format!(
            "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n",
            root.join("data").display()
        );
        if let Some((user, password)) = htpasswd {
            let out =
                Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
            assert!(out.status.success());
            std::fs::write(root.join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth: {{ htpasswd: {{ realm: den-test, path: {} }} }}\n",
                root.join("htpasswd").display()
            ));
        }
        std::fs::write(root.join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .args(["serve", root.join("config.yml").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("log")).unwrap())
            .spawn()
            .expect("docker-registry (tests/engine/setup.sh installs it)");
        wait_http(port, &mut child);
        Registry { port, child }
    }

    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker config folder holding a login for `registry`.
fn docker_config(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    let d = dir.join(format!("docker-config-{}", registry.replace(':', "-")));
    std::fs::create_dir_all(&d).unwrap();
    let auth = base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes());
    std::fs::write(d.join("config.json"), format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#)).unwrap();
    d
}

/// Writes a Feature folder: its devcontainer-feature.json and install.sh.
fn feature(dir: &Path, json: &str, install: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("devcontainer-feature.json"), json).unwrap();
    std::fs::write(dir.join("install.sh"), format!("#!/bin/sh\nset -e\n{install}\n")).unwrap();
}

/// Every container of a workspace id (running or not).
fn containers_of(id: &str) -> String {
    docker(&["ps", "-a", "-q", "--filter", &format!("name=den-{id}")])
}

#[test]
fn local_features_install_in_order_with_options_env_metadata_and_a_layer_cache() {
    require_engine();
    let sb = Sandbox::new();
    let ws = sb.workspace(
        "feat-local",
        r#"{
  "image": "den-test/debian:bookworm",
  "features": {
    "./zz": {},
    "./tool": {"enabled": false},
    "./app": true
  },
  "overrideFeatureInstallOrder": ["./zz"],
  "postCreateCommand": "echo config-hook >> /tmp/hooks"
}"#,
    );
    let fdir = ws.folder.join(".devcontainer");
    let log = "echo \"$0:$*\" >/dev/null; mkdir -p /usr/local/share; echo";
    feature(
        &fdir.join("base"),
        r#"{"id": "base", "version": "1.0.0",
            "options": {"flavor": {"type": "string", "enum": ["plain", "rich"], "default": "plain"}},
            "containerEnv": {"BASE_HOME": "/opt/base", "PATH": "/opt/base/bin:${PATH}"}}"#,
        &format!("{log} \"base:$FLAVOR\" >> /usr/local/share/den-order\nmkdir -p /opt/base/bin\nprintf '#!/bin/sh\\necho base-tool\\n' > /opt/base/bin/base-tool\nchmod +x /opt/base/bin/base-tool"),
    );
    let vol = format!("den-feat-vol-{}", ws.id);
    feature(
        &fdir.join("app"),
        &format!(
            r#"{{"id": "app", "version": "2.0.0", "dependsOn": {{"./base": {{"flavor": "rich"}}}},
                "capAdd": ["SYS_PTRACE"], "init": true,
                "mounts": [{{"source": "{vol}", "target": "/feature-vol", "type": "volume"}}],
                "postCreateCommand": "echo app-hook >> /tmp/hooks"}}"#
        ),
        &format!("{log} \"app:$BASE_HOME:$(base-tool)\" >> /usr/local/share/den-order"),
    );
    feature(
        &fdir.join("tool"),
        r#"{"id": "tool", "version": "0.1.0", "installsAfter": ["./app"],
            "options": {"enabled": {"type": "boolean", "default": true}}}"#,
        &format!(
            "{log} \"tool:$ENABLED:$_REMOTE_USER:$_REMOTE_USER_HOME:$_CONTAINER_USER\" >> /usr/local/share/den-order"
        ),
    );
    feature(
        &fdir.join("zz"),
        r#"{"id": "zz", "version": "1.0.0"}"#,
        &format!("{log} zz >> /usr/local/share/den-order"),
    );
    let _vol = VolumeCleanup(vol.clone());

    let shown =
        run(sb.den().args(["read-config", "--include-features-configuration", "--output", "json"]).arg(&ws.folder));
    shown.assert_ok();
    let shown = shown.json();
    // The reference CLI's shape: one feature set per Feature, with its
    // source information; den's digest and dependencyOf added.
    let sets = shown["featuresConfiguration"]["featureSets"].as_array().unwrap();
    let listed: Vec<(String, String)> = sets
        .iter()
        .map(|s| {
            (
                s["sourceInformation"]["userFeatureId"].as_str().unwrap().to_string(),
                s["features"][0]["value"].to_string(),
            )
        })
        .collect();
    let base = &sets[1];
    assert_eq!(base["sourceInformation"]["type"], "file-path");
    assert_eq!(base["features"][0]["id"], "base");
    assert_eq!(base["features"][0]["version"], "1.0.0");
    assert_eq!(base["features"][0]["options"]["flavor"]["enum"][1], "rich", "the declaration, as written");
    assert_eq!(base["features"][0]["dependencyOf"], "./app");
    assert!(base["features"][0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(base["internalVersion"], "2");
    assert_eq!(
        listed,
        [
            ("./zz".to_string(), "{}".to_string()),
            ("./base".into(), r#"{"flavor":"rich"}"#.into()),
            ("./app".into(), "{}".into()),
            ("./tool".into(), r#"{"enabled":"false"}"#.into())
        ]
    );

    let r = ws.up(&["--ide", "none"]);
    r.assert_ok();
    let c = ws.container();
    // zz first (the override), then the dependency with the options
    // dependsOn gave, then app (it sees base's ENV and PATH), then tool
    // (installsAfter app) with the users' variables.
    assert_eq!(
        exec(&c, "cat /usr/local/share/den-order"),
        "zz\nbase:rich\napp:/opt/base:base-tool\ntool:false:root:/root:root\n"
    );
    assert_eq!(exec(&c, "cat /tmp/hooks"), "app-hook\nconfig-hook\n", "Features' hooks run before the config's");
    let caps = docker(&["inspect", "-f", "{{json .HostConfig.CapAdd}} {{.HostConfig.Init}}", &c]);
    assert!(caps.contains("SYS_PTRACE") && caps.trim().ends_with("true"), "{caps}");
    assert!(exec(&c, "grep ' /feature-vol ' /proc/mounts || true").contains("/feature-vol"));
    let env = run(sb.den().args(["ssh", &ws.id, "--", "sh", "-c", "echo $BASE_HOME; base-tool"]));
    env.assert_ok();
    assert_eq!(env.stdout, "/opt/base\nbase-tool\n");
    let image = docker(&["inspect", "-f", "{{.Config.Image}}", &c]).trim().to_string();
    assert!(image.starts_with("den-features:"), "{image}");
    let label = docker(&["inspect", "-f", "{{index .Config.Labels \"devcontainer.metadata\"}}", &image]);
    let entries: serde_json::Value = serde_json::from_str(&label).unwrap();
    let ids: Vec<&str> = entries.as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, ["./zz", "./base", "./app", "./tool"]);

    // The same inputs build nothing.
    let again = ws.up(&["--ide", "none", "--recreate"]);
    again.assert_ok();
    assert!(again.stderr.contains("built before"), "{}", again.stderr);
    assert!(!again.stderr.contains("den: installing Feature"), "{}", again.stderr);

    // Another workspace with the same Features (another folder) too.
    let twin = sb.workspace("feat-local-twin", &std::fs::read_to_string(fdir.join("devcontainer.json")).unwrap());
    let st = Command::new("cp").arg("-a").arg(&fdir).arg(&twin.folder).status().unwrap();
    assert!(st.success());
    let second = twin.up(&["--ide", "none"]);
    second.assert_ok();
    assert!(second.stderr.contains("built before"), "{}", second.stderr);
    assert_eq!(docker(&["inspect", "-f", "{{.Config.Image}}", &twin.container()]).trim(), image);

    // A change to the last Feature rebuilds it alone: the layers of the
    // ones before come from the engine's cache.
    std::fs::write(
        fdir.join("tool/install.sh"),
        std::fs::read_to_string(fdir.join("tool/install.sh")).unwrap() + "# changed\n",
    )
    .unwrap();
    let changed = ws.up(&["--ide", "none", "--recreate"]);
    changed.assert_ok();
    assert!(changed.stderr.contains("den: installing Feature ./tool"), "{}", changed.stderr);
    for earlier in ["./zz", "./base", "./app"] {
        assert!(
            !changed.stderr.contains(&format!("den: installing Feature {earlier} ")),
            "{earlier} was rebuilt:\n{}",
            changed.stderr
        );
    }
    assert!(changed.stderr.contains("Using cache"), "{}", changed.stderr);
    let new_image = docker(&["inspect", "-f", "{{.Config.Image}}", &c]).trim().to_string();
    assert_ne!(new_image, image);
}

/// A Feature's metadata gets the configuration's variables, as the official
/// docker-in-docker Feature needs (its volume is
/// `dind-var-lib-docker-${devcontainerId}`); its containerEnv too, where what
/// no variable den knows stays literal text; and an option value outside the
/// Feature's enum reaches install.sh, with a warning that points at it.
#[test]
fn feature_metadata_gets_the_configuration_s_variables() {
    require_engine();
    let sb = Sandbox::new();
    let ws = sb.workspace(
        "feat-subst",
        "{\n  \"image\": \"den-test/debian:bookworm\",\n  \"features\": {\n    \"./meta\": {\"gateway\": \"maybe\"}\n  }\n}",
    );
    feature(
        &ws.folder.join(".devcontainer/meta"),
        r#"{"id": "meta", "version": "1.0.0",
            "options": {"gateway": {"type": "string", "enum": ["no", "yes"], "default": "no"}},
            "containerEnv": {"FROM_HOST": "${localEnv:DEN_TEST_FEATURE_X}", "LEFT": "${containerEnv:HOME}/x",
                             "PATH": "/opt/meta/bin:${PATH}"},
            "mounts": [{"source": "meta-vol-${devcontainerId}", "target": "/meta-vol", "type": "volume"}],
            "postCreateCommand": "echo ${devcontainerId} > /tmp/meta-id"}"#,
        "echo \"$GATEWAY\" > /usr/local/share/meta-gateway",
    );
    let shown = run(sb.den().args(["read-config", "--output", "json"]).arg(&ws.folder));
    shown.assert_ok();
    let id = shown.json()["devcontainerId"].as_str().unwrap().to_string();
    let _vol = VolumeCleanup(format!("meta-vol-{id}"));

    let mut up = ws.up_cmd(&["--ide", "none"]);
    up.env("DEN_TEST_FEATURE_X", "from-host");
    let r = run(&mut up);
    r.assert_ok();
    assert!(
        r.stderr.contains(
            "devcontainer.json:4:27: property `features../meta.gateway`: `maybe` is not one of the allowed values"
        ),
        "{}",
        r.stderr
    );
    let c = ws.container();
    assert_eq!(exec(&c, "cat /usr/local/share/meta-gateway"), "maybe\n");
    assert_eq!(exec(&c, "cat /tmp/meta-id"), format!("{id}\n"));
    assert!(exec(&c, "grep ' /meta-vol ' /proc/mounts || true").contains("/meta-vol"));
    docker(&["volume", "inspect", &format!("meta-vol-{id}")]);
    assert_eq!(
        exec(&c, "printf '%s|%s|%s' \"$FROM_HOST\" \"$LEFT\" \"${PATH%%:*}\""),
        "from-host|${containerEnv:HOME}/x|/opt/meta/bin"
    );
    // The image's label keeps the Feature's metadata as written.
    let image = docker(&["inspect", "-f", "{{.Config.Image}}", &c]).trim().to_string();
    let label = docker(&["inspect", "-f", "{{index .Config.Labels \"devcontainer.metadata\"}}", &image]);
    assert!(label.contains("meta-vol-${devcontainerId}"), "{label}");
}

/// In a compose workspace, the Feature's volume gets the workspace's
/// `${devcontainerId}` too (in the override den writes).
#[test]
fn a_compose_workspace_s_feature_metadata_gets_the_configuration_s_variables() {
    require_engine();
    let sb = Sandbox::new();
    let ws = sb.workspace(
        "feat-subst-compose",
        r#"{"dockerComposeFile": "docker-compose.yml", "service": "app", "workspaceFolder": "/workspace",
            "overrideCommand": true, "features": {"./meta": {}}}"#,
    );
    let d = ws.folder.join(".devcontainer");
    std::fs::write(
        d.join("docker-compose.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: den-test/debian:bookworm\n    volumes:\n      - ..:/workspace\n",
    )
    .unwrap();
    feature(
        &d.join("meta"),
        r#"{"id": "meta", "mounts": [{"source": "meta-vol-${devcontainerId}", "target": "/meta-vol", "type": "volume"}],
            "postCreateCommand": "echo ${devcontainerId} > /tmp/meta-id"}"#,
        "true",
    );
    let shown = run(sb.den().args(["read-config", "--output", "json"]).arg(&ws.folder));
    shown.assert_ok();
    let id = shown.json()["devcontainerId"].as_str().unwrap().to_string();
    let _vol = VolumeCleanup(format!("meta-vol-{id}"));
    ws.up(&["--ide", "none", "--provider-option", "COMPOSE_PATH=docker-compose"]).assert_ok();
    let c = ws.container();
    let names = docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", &c]);
    assert!(names.split_whitespace().any(|n| n.ends_with(&format!("meta-vol-{id}"))), "{names}");
    assert_eq!(exec(&c, "cat /tmp/meta-id"), format!("{id}\n"));
}

struct VolumeCleanup(String);

impl Drop for VolumeCleanup {
    /// Removes every volume whose name holds the text (compose prefixes
    /// its project's name), after the containers that still hold them (the
    /// workspace is deleted after this runs).
    fn drop(&mut self) {
        let out = |args: &[&str]| {
            let o = Command::new("docker").args(args).output();
            o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
        };
        for vol in out(&["volume", "ls", "-q", "--filter", &format!("name={}", self.0)]).split_whitespace() {
            for c in out(&["ps", "-aq", "--filter", &format!("volume={vol}")]).split_whitespace() {
                out(&["rm", "-f", c]);
            }
            out(&["volume", "rm", "-f", vol]);
        }
    }
}

#[test]
fn bad_feature_inputs_are_clear_errors_that_leave_nothing() {
    require_engine();
    let sb = Sandbox::new();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "array",
            "{\n  \"image\": \"den-test/busybox\",\n  \"features\": {\n    \"./f\": {\"mode\": [\"loud\"]}\n  }\n}",
            &["devcontainer.json:4:", "mode", "not an array"],
        ),
        (
            "shape",
            "{\n  \"image\": \"den-test/busybox\",\n  \"features\": {\"./f\": 7}\n}",
            &["devcontainer.json:3:", "features../f", "a number"],
        ),
        ("cycle", r#"{"image": "den-test/busybox", "features": {"./a": {}}}"#, &["circle", "./a → ./b → ./a"]),
        (
            "missing",
            r#"{"image": "den-test/busybox", "features": {"./nowhere": {}}}"#,
            &["./nowhere", "is not a folder"],
        ),
        (
            "short",
            r#"{"image": "den-test/busybox", "features": {"frobnicate": {}}}"#,
            &["frobnicate", "name it in full"],
        ),
        (
            "unreachable",
            r#"{"image": "den-test/busybox", "features": {"localhost:9/none/here:1": {}}}"#,
            &["localhost:9/none/here:1", "cannot reach http://localhost:9/v2/none/here/manifests/1"],
        ),
        (
            "broken",
            r#"{"image": "den-test/busybox", "features": {"./broken": {}}}"#,
            &["Feature ./broken (0.2.0) failed", "half-way there", "install.sh exited with 7"],
        ),
    ];
    for (name, config, wants) in cases {
        let ws = sb.workspace(&format!("feat-bad-{name}"), config);
        let d = ws.folder.join(".devcontainer");
        feature(
            &d.join("f"),
            r#"{"id": "f", "options": {"mode": {"type": "string", "enum": ["quiet", "normal"]}}}"#,
            "true",
        );
        feature(&d.join("a"), r#"{"id": "a", "dependsOn": {"./b": {}}}"#, "true");
        feature(&d.join("b"), r#"{"id": "b", "installsAfter": ["./a"]}"#, "true");
        feature(&d.join("broken"), r#"{"id": "broken", "version": "0.2.0"}"#, "echo half-way there\nexit 7");
        let r = ws.up(&["--ide", "none"]);
        assert_ne!(r.code, 0, "{name}: up succeeded:\n{}", r.stderr);
        for w in *wants {
            assert!(r.stderr.contains(w), "{name}: `{w}` not in:\n{}", r.stderr);
        }
        assert_eq!(containers_of(&ws.id), "", "{name}: a container was left");
        let list = run(sb.den().args(["list", "--output", "json"]));
        assert!(!list.stdout.contains(&ws.id), "{name}: a record was left: {}", list.stdout);
    }
}

#[test]
fn registry_features_are_pulled_pinned_by_the_lockfile_and_use_docker_logins() {
    require_engine();
    let sb = Sandbox::new();
    let open = Registry::start(sb.path(), None);
    let private = Registry::start(sb.path(), Some(("den", "s3cret")));
    let src = sb.path().join("feature-src");
    let hello = |version: &str| {
        feature(
            &src.join("hello"),
            &format!(
                r#"{{"id": "hello", "version": "{version}", "options": {{"greeting": {{"type": "string", "default": "hi"}}}}}}"#
            ),
            &format!("echo \"$GREETING {version}\" > /usr/local/share/hello-open"),
        )
    };
    hello("1.0.0");
    let ns = format!("{}/team/features", open.host());
    run(sb.den().args(["feature", "publish", src.join("hello").to_str().unwrap(), "--namespace", &ns])).assert_ok();

    // The private registry: refused without a login, published with one.
    feature(
        &src.join("secret"),
        r#"{"id": "secret", "version": "3.1.4"}"#,
        "echo private > /usr/local/share/hello-private",
    );
    let pns = format!("{}/corp/features", private.host());
    let refused = run(sb.den().args(["feature", "publish", src.join("secret").to_str().unwrap(), "--namespace", &pns]));
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("docker login"), "{}", refused.stderr);
    let login = docker_config(sb.path(), &private.host(), "den", "s3cret");
    run(sb.den().env("DOCKER_CONFIG", &login).args([
        "feature",
        "publish",
        src.join("secret").to_str().unwrap(),
        "--namespace",
        &pns,
    ]))
    .assert_ok();

    // A tarball on a loopback web server.
    let www = sb.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    feature(
        &src.join("tarred"),
        r#"{"id": "tarred", "version": "0.0.1"}"#,
        "echo tarred > /usr/local/share/hello-tarball",
    );
    let tgz = www.join("devcontainer-feature-tarred.tgz");
    let st = Command::new("tar").arg("-czf").arg(&tgz).arg("-C").arg(src.join("tarred")).arg(".").status().unwrap();
    assert!(st.success());
    let web_port = free_port();
    let mut web = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &web_port.to_string(), "--directory"])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _web = KillOnDrop(web.id());
    wait_http(web_port, &mut web);

    let config = format!(
        r#"{{"image": "den-test/debian:bookworm", "features": {{
            "{ns}/hello:1": {{"greeting": "hey"}},
            "{pns}/secret:3": {{}},
            "http://127.0.0.1:{web_port}/devcontainer-feature-tarred.tgz": {{}}
        }}}}"#
    );
    let ws = sb.workspace("feat-registry", &config);
    let up = |extra: &[&str]| {
        let mut c = ws.up_cmd(extra);
        c.env("DOCKER_CONFIG", &login);
        run(&mut c)
    };
    // Without the login the private Feature is refused, and nothing is made.
    let mut no_login = ws.up_cmd(&["--ide", "none"]);
    no_login.env("DOCKER_CONFIG", sb.path().join("no-docker-config"));
    let r = run(&mut no_login);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&format!("{pns}/secret:3")) && r.stderr.contains("docker login"), "{}", r.stderr);
    assert_eq!(containers_of(&ws.id), "");

    up(&["--ide", "none", "--lockfile", "write"]).assert_ok();
    let mut shown = sb.den();
    shown.env("DOCKER_CONFIG", &login).args(["read-config", "--include-features-configuration", "--output", "json"]);
    let shown = run(shown.arg(&ws.folder));
    shown.assert_ok();
    let sets = shown.json()["featuresConfiguration"]["featureSets"].clone();
    let hello_set = sets.as_array().unwrap().iter().find(|s| s["features"][0]["id"] == "hello").unwrap().clone();
    let source = &hello_set["sourceInformation"];
    assert_eq!(source["type"], "oci");
    assert_eq!(source["userFeatureId"], format!("{ns}/hello:1"));
    assert_eq!(source["featureRef"]["resource"], format!("{ns}/hello"));
    assert_eq!(source["featureRef"]["id"], "hello");
    assert_eq!(hello_set["features"][0]["value"]["greeting"], "hey");
    assert_eq!(hello_set["computedDigest"], source["manifestDigest"]);
    let tarred = sets.as_array().unwrap().iter().find(|s| s["features"][0]["id"] == "tarred").unwrap();
    assert_eq!(tarred["sourceInformation"]["type"], "direct-tarball");
    let c = ws.container();
    assert_eq!(
        exec(&c, "cat /usr/local/share/hello-open /usr/local/share/hello-private /usr/local/share/hello-tarball"),
        "hey 1.0.0\nprivate\ntarred\n"
    );
    let lock_path = ws.folder.join(".devcontainer/devcontainer-lock.json");
    let lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let entry = &lock["features"][format!("{ns}/hello:1")];
    assert_eq!(entry["version"], "1.0.0");
    let pinned = entry["integrity"].as_str().unwrap().to_string();
    assert_eq!(entry["resolved"], format!("{ns}/hello@{pinned}"));
    assert!(lock["features"][format!("http://127.0.0.1:{web_port}/devcontainer-feature-tarred.tgz")]["integrity"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    // Features are cached by digest in den's data.
    assert!(sb
        .home()
        .join("cache/features/oci")
        .join(pinned.trim_start_matches("sha256:"))
        .join("install.sh")
        .is_file());

    // A newer 1.x is published; the lockfile keeps the workspace on 1.0.0.
    hello("1.1.0");
    run(sb.den().args(["feature", "publish", src.join("hello").to_str().unwrap(), "--namespace", &ns])).assert_ok();
    up(&["--ide", "none", "--recreate"]).assert_ok();
    assert_eq!(exec(&c, "cat /usr/local/share/hello-open"), "hey 1.0.0\n");
    // Rewriting the lockfile moves it to 1.1.0.
    up(&["--ide", "none", "--recreate", "--lockfile", "write"]).assert_ok();
    assert_eq!(exec(&c, "cat /usr/local/share/hello-open"), "hey 1.1.0\n");

    // A lockfile whose digest does not match is refused, and the
    // workspace's container is not touched.
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    lock["features"][format!("{ns}/hello:1")]["integrity"] = format!("sha256:{}", "0".repeat(64)).into();
    std::fs::write(&lock_path, lock.to_string()).unwrap();
    let r = up(&["--ide", "none", "--recreate"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("devcontainer-lock.json") && r.stderr.contains("integrity"), "{}", r.stderr);
    assert_eq!(container_running(&c), Some(true), "a failed --recreate keeps the old container");
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

#[test]
fn a_prebuilt_image_is_pushed_once_and_pulled_instead_of_building() {
    require_engine();
    let builder = Sandbox::new();
    let registry = Registry::start(builder.path(), None);
    let repo = format!("{}/prebuilt/app", registry.host());
    let config = r#"{"image": "den-test/busybox", "features": {"./marker": {"word": "prebuilt"}}}"#;
    let ws = builder.workspace("feat-prebuild", config);
    // Unique to this run, so that no image of an earlier run answers.
    feature(
        &ws.folder.join(".devcontainer/marker"),
        &format!(
            r#"{{"id": "marker", "version": "1.0.0", "options": {{"word": {{"type": "string", "default": "x"}}}}, "containerEnv": {{"RUN_ID": "{}"}}}}"#,
            ws.id
        ),
        "echo \"$WORD\" > /marker",
    );
    let built = run(builder.den().args(["build", "--repository", &repo, "--push", "--output", "json"]).arg(&ws.folder));
    built.assert_ok();
    let image = built.json()["image"].as_str().unwrap().to_string();
    assert!(image.starts_with(&format!("{repo}:")), "{image}");
    // Nothing of it stays on this engine: the next up must pull it.
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", &image]).trim().to_string();
    docker(&["rmi", "-f", &id]);

    // Another den (a teammate, CI): the same project, the repository as a
    // context option.
    let user = Sandbox::new();
    let copy = user.project("feat-prebuild", &[]);
    let st = Command::new("cp").arg("-a").arg(ws.folder.join(".devcontainer")).arg(&copy).status().unwrap();
    assert!(st.success());
    run(user.den().args(["context", "set-options", "-o", &format!("PREBUILD_REPOSITORY={repo}")])).assert_ok();
    let uid = unique_id("feat-prebuild-user");
    let _cleanup = user.cleanup(&uid);
    let up = run(user.den().args(["up", "--ide", "none", "--id", &uid]).arg(&copy));
    up.assert_ok();
    assert!(up.stderr.contains(&format!("pulled the prebuilt image {image}")), "{}", up.stderr);
    assert!(!up.stderr.contains("den: installing Feature"), "{}", up.stderr);
    assert_eq!(docker(&["inspect", "-f", "{{.Config.Image}}", &container(&uid)]).trim(), image);
    assert_eq!(exec(&container(&uid), "cat /marker"), "prebuilt\n");

    // A changed option is another image: not in the registry, so built.
    std::fs::write(copy.join(".devcontainer/devcontainer.json"), config.replace("\"prebuilt\"", "\"changed\""))
        .unwrap();
    let again = run(user.den().args(["up", "--ide", "none", "--recreate", "--id", &uid]).arg(&copy));
    again.assert_ok();
    assert!(
        again.stderr.contains("no prebuilt image") && again.stderr.contains("den: installing Feature"),
        "{}",
        again.stderr
    );
    assert_eq!(exec(&container(&uid), "cat /marker"), "changed\n");
}
