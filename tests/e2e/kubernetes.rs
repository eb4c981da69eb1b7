//! The kubernetes provider. No cluster runs on these machines, so the
//! workflow test drives den against tests/mock-kubectl/kubectl, a stand-in
//! that carries den's kubectl calls out with docker (named as a mock; it
//! proves den's side, not Kubernetes). The live test is ignored unless asked
//! for with `--ignored`, and then fails if no cluster answers.

use std::process::Command;

use crate::common::{container_running, docker, git_in, repo_root, require_engine, run, unique_id, Sandbox};

fn mock_kubectl() -> String {
    repo_root().join("tests/mock-kubectl/kubectl").display().to_string()
}

/// `den up --ide none --provider kubernetes` through the stand-in kubectl,
/// for workspace `id` from `source`.
fn kube_up(s: &Sandbox, id: &str, source: &str) -> Command {
    let mut c = s.den();
    c.args(["up", "--ide", "none", "--provider", "kubernetes", "--provider-option"])
        .arg(format!("KUBECTL_PATH={}", mock_kubectl()))
        .args(["--id", id, "--output", "json", source]);
    c
}

fn volume_exists(name: &str) -> bool {
    Command::new("docker").args(["volume", "inspect", name]).output().unwrap().status.success()
}

#[test]
fn kubernetes_provider_through_mock_kubectl() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("kube");
    let _c = s.cleanup(&id);
    let log = s.path().join("kubectl.log");
    let den = |args: &[&str]| run(s.den().args(args).env("MOCK_KUBECTL_LOG", &log));
    let p = s.project(
        "kubeproj",
        &[
            (
                ".devcontainer.json",
                r#"{"image": "den-test/busybox", "containerEnv": {"IN_POD": "yes"}, "postCreateCommand": "echo made > made.txt"}"#,
            ),
            ("src/main.txt", "source\n"),
        ],
    );
    let kubectl = format!("KUBECTL_PATH={}", mock_kubectl());
    let r = den(&[
        "up",
        "--provider",
        "kubernetes",
        "--provider-option",
        &kubectl,
        "--provider-option",
        "KUBERNETES_NAMESPACE=dev",
        "--id",
        &id,
        "--output",
        "json",
        p.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let pod = format!("kube-dev-den-{id}");
    assert_eq!(container_running(&pod), Some(true));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains(r#""--namespace", "dev", "apply", "-f", "-""#), "{calls}");
    assert!(calls.contains(&format!(r#""wait", "--for=condition=Ready", "pod/den-{id}""#)), "{calls}");

    let r = den(&["ssh", &id, "--command", "cat src/main.txt made.txt; echo $IN_POD"]);
    assert_eq!(r.stdout, "source\nmade\nyes\n", "{}", r.stderr);
    let o = s.openssh(&id).arg("echo openssh-to-pod").env("MOCK_KUBECTL_LOG", &log).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "openssh-to-pod\n", "{}", String::from_utf8_lossy(&o.stderr));

    // git credentials from this machine (busybox has no git: ask den's
    // helper the way git would)
    let store = s.path().join("git-credentials");
    std::fs::write(&store, "https://carol:pw@git.example.com\n").unwrap();
    let gitconfig = s.path().join("gitconfig");
    std::fs::write(&gitconfig, format!("[credential]\n\thelper = store --file={}\n", store.display())).unwrap();
    let ask = "printf 'protocol=https\\nhost=git.example.com\\n\\n' | /usr/local/bin/den agent git-credential get";
    let r = run(s
        .den()
        .args(["ssh", &id, "--command", ask])
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("MOCK_KUBECTL_LOG", &log));
    assert!(r.stdout.contains("username=carol\npassword=pw\n"), "{}|{}", r.stdout, r.stderr);

    // stop deletes the pod and keeps the volume; ssh makes the pod again
    assert_eq!(den(&["stop", &id]).code, 0);
    assert_eq!(container_running(&pod), None);
    assert!(volume_exists(&pod));
    assert_eq!(den(&["status", &id]).stdout.trim(), "Stopped");
    let r = den(&["ssh", &id, "--command", "cat made.txt"]);
    assert_eq!(r.stdout, "made\n", "the workspace survived in its volume: {}", r.stderr);
    assert_eq!(den(&["status", &id]).stdout.trim(), "Running");

    let r = den(&["delete", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(container_running(&pod), None);
    assert!(!volume_exists(&pod), "the volume claim went too");
    assert_eq!(den(&["status", &id]).stdout.trim(), "NotFound");
}

#[test]
fn kubernetes_refuses_dockerfile_configs() {
    let s = Sandbox::new();
    let p =
        s.project("kubebuild", &[(".devcontainer/devcontainer.json", r#"{"build": {"dockerfile": "Dockerfile"}}"#)]);
    let kubectl = format!("KUBECTL_PATH={}", mock_kubectl());
    let r = run(s.den().args(["up", "--provider", "kubernetes", "--provider-option", &kubectl, "--id", "kb"]).arg(&p));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("kubernetes driver runs configs that name an \"image\""), "{}", r.stderr);
}

/// Against a real cluster. No cluster runs here, so the runner lists it as
/// ignored rather than passed; run it where one answers with
/// `cargo test --test e2e -- --ignored kubernetes_live_cluster`.
#[test]
#[ignore = "needs a live Kubernetes cluster (run with --ignored where kubectl reaches one)"]
fn kubernetes_live_cluster() {
    let answer = Command::new("kubectl").args(["cluster-info", "--request-timeout=5s"]).output();
    let reason = match &answer {
        Err(e) => Some(format!("kubectl is not installed ({e})")),
        Ok(o) if !o.status.success() => {
            Some(format!("kubectl cluster-info failed: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
        Ok(_) => None,
    };
    if let Some(reason) = reason {
        panic!("kubernetes_live_cluster was asked for, but no cluster answers: {reason}");
    }
    let s = Sandbox::new();
    let id = unique_id("kubelive");
    let _c = s.cleanup(&id);
    let p = s.project("kubelive", &[(".devcontainer.json", r#"{"image": "busybox:stable"}"#)]);
    let r = run(s.den().args(["up", "--provider", "kubernetes", "--id", &id]).arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(run(s.den().args(["ssh", &id, "--command", "echo live"])).stdout, "live\n");
    assert_eq!(run(s.den().args(["delete", &id])).code, 0);
}

/// Features on kubernetes: no image is built in the cluster, so den asks
/// for a prebuilt one, and uses it once the registry has it (asked through
/// the registry's API, as the cluster would pull it).
#[test]
fn kubernetes_runs_features_from_a_prebuilt_image() {
    require_engine();
    let s = Sandbox::new();
    let registry = crate::features::Registry::start(s.path(), None);
    let repo = format!("{}/prebuilt/kube", registry.host());
    let id = unique_id("kubefeat");
    let _c = s.cleanup(&id);
    let p = s.project(
        "kubefeat",
        &[
            (".devcontainer/devcontainer.json", r#"{"image": "den-test/busybox", "features": {"./mark": {}}}"#),
            (
                ".devcontainer/mark/devcontainer-feature.json",
                &format!(r#"{{"id": "mark", "containerEnv": {{"RUN": "{id}"}}}}"#),
            ),
            (".devcontainer/mark/install.sh", "#!/bin/sh\necho from-the-feature > /mark\n"),
        ],
    );
    let kubectl = format!("KUBECTL_PATH={}", mock_kubectl());
    let up = |extra: &[&str]| {
        run(s
            .den()
            .args(["up", "--ide", "none", "--provider", "kubernetes", "--provider-option", &kubectl, "--id", &id])
            .args(extra)
            .arg(&p))
    };
    let r = up(&[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("does not build images in the cluster") && r.stderr.contains("--prebuild-repository"),
        "{}",
        r.stderr
    );
    let r = up(&["--prebuild-repository", &repo]);
    assert_ne!(r.code, 0, "nothing was pushed yet");
    assert!(r.stderr.contains("no prebuilt image"), "{}", r.stderr);

    let built = run(s.den().args(["build", "--repository", &repo, "--push", "--output", "json"]).arg(&p));
    built.assert_ok();
    let image = built.json()["image"].as_str().unwrap().to_string();
    up(&["--prebuild-repository", &repo]).assert_ok();
    let r = run(s.den().args(["ssh", &id, "--", "cat", "/mark"]));
    assert_eq!(r.stdout, "from-the-feature\n", "{}", r.stderr);
    let pod = format!("kube-default-den-{id}");
    assert_eq!(docker(&["inspect", "-f", "{{.Config.Image}}", &pod]).trim(), image);
}

/// A git source on kubernetes (stand-in kubectl) whose image has no git
/// (busybox): den clones here and sends the files into the pod's volume.
#[test]
fn kubernetes_from_a_git_source() {
    require_engine();
    let s = Sandbox::new();
    let repo = s.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| git_in(&repo, args);
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".devcontainer.json"), r#"{"image": "den-test/busybox"}"#).unwrap();
    std::fs::write(repo.join("from-git.txt"), "cloned\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "one"]);
    let id = unique_id("kubegit");
    let _c = s.cleanup(&id);
    let r = run(&mut kube_up(&s, &id, &format!("file://{}", repo.display())));
    r.assert_ok();
    assert!(r.stderr.contains("git is not installed in the workspace's image"), "{}", r.stderr);
    let r = run(s.den().args(["ssh", &id, "--", "cat", "from-git.txt"]));
    assert_eq!(r.stdout, "cloned\n", "{}", r.stderr);
    run(s.den().args(["delete", &id])).assert_ok();
    assert!(!s.home().join("contexts/default/sources").join(&id).exists());
    assert!(!s.home().join("contexts/default/sources").join(format!("{id}.den-full")).exists());
}

/// A git source on kubernetes whose image has git: the pod clones into its
/// volume, over ssh that runs here (the key only in this machine's
/// ssh-agent, the host key only in its known hosts) through the clone
/// relay; this machine keeps only the configuration.
#[test]
fn kubernetes_clones_a_git_source_in_the_pod() {
    require_engine();
    let s = Sandbox::new();
    let root = s.path().join("git");
    std::fs::create_dir_all(&root).unwrap();
    git_in(&root, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    let work = root.join("work");
    git_in(&root, &["clone", "-q", "repo.git", "work"]);
    git_in(&work, &["checkout", "-q", "-b", "main"]);
    std::fs::create_dir_all(work.join("api/.devcontainer")).unwrap();
    std::fs::write(work.join("api/.devcontainer/devcontainer.json"), r#"{"image": "den-test/debian:bookworm"}"#)
        .unwrap();
    std::fs::create_dir_all(work.join("api/src")).unwrap();
    std::fs::write(work.join("api/src/main.txt"), "cloned in the pod\n").unwrap();
    std::fs::write(work.join("README"), "top\n").unwrap();
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-q", "-m", "one"]);
    git_in(&work, &["push", "-q", "origin", "main"]);
    let head = git_in(&work, &["rev-parse", "HEAD"]);

    let sshd = crate::remote::Sshd::start(&s.path().join("sshd"));
    let (_agent, sock) = crate::sources::ssh_agent_holding(&s, &sshd.key);
    let ssh_cmd = sshd.git_ssh_command();
    let url = format!("ssh://root@127.0.0.1:{}{}@subpath:api", sshd.port, root.join("repo.git").display());
    let id = unique_id("kubepod");
    let _c = s.cleanup(&id);
    let r = run(kube_up(&s, &id, &url).env("SSH_AUTH_SOCK", &sock).env("GIT_SSH_COMMAND", &ssh_cmd));
    r.assert_ok();
    assert!(r.stderr.contains("in the pod"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["source"]["commit"], head.as_str());
    // The subpath is the workspace folder, as on every provider.
    let r = run(s.den().args(["ssh", &id, "--", "sh", "-c", "cat src/main.txt; ls -A"]));
    assert_eq!(r.stdout, "cloned in the pod\n.devcontainer\nsrc\n", "{}", r.stderr);
    // This machine has the configuration, not the files.
    let here = s.home().join("contexts/default/sources").join(&id);
    assert!(here.join("api/.devcontainer/devcontainer.json").is_file());
    assert!(!here.join("api/src").exists(), "the whole repository was cloned here");
    run(s.den().args(["delete", &id])).assert_ok();
    assert!(!here.exists());
}
