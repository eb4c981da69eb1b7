//! Git credentials from the client: git in the workspace asks, den answers
//! with this machine's real `git credential fill` (here a `store` helper
//! with a test file), through den ssh and through OpenSSH's ProxyCommand.

use crate::common::{container, docker, require_engine, run, unique_id, Sandbox};

const FILL: &str = "printf 'protocol=https\\nhost=git.example.com\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill";

#[test]
fn git_credentials_come_from_the_client() {
    require_engine();
    let s = Sandbox::new();
    let store = s.path().join("git-credentials");
    std::fs::write(&store, "https://alice:s3cret@git.example.com\n").unwrap();
    let gitconfig = s.path().join("gitconfig");
    std::fs::write(&gitconfig, format!("[credential]\n\thelper = store --file={}\n", store.display())).unwrap();
    let den = |args: &[&str]| run(s.den().args(args).env("GIT_CONFIG_GLOBAL", &gitconfig));

    let id = unique_id("gitcred");
    let _c = s.cleanup(&id);
    let p = s.project(
        "gitcred",
        &[
            ("Dockerfile", "FROM den-test/debian:bookworm\nRUN useradd -m -s /bin/bash dev\n"),
            (".devcontainer.json", r#"{"build": {"dockerfile": "Dockerfile"}, "remoteUser": "dev"}"#),
        ],
    );
    let r = den(&["up", "--id", &id, p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // git as the (non-root) remote user gets the client's credentials
    let r = den(&["ssh", &id, "--command", FILL]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("username=alice\npassword=s3cret\n"), "{}|{}", r.stdout, r.stderr);
    // On the direct line the relay (and the forwarder's port reports) run
    // in the line's server: no process of their own; on the exec tunnel the
    // relay is `den agent credentials-server`.
    let mut session =
        s.den().args(["ssh", &id, "--", "sleep", "3"]).env("GIT_CONFIG_GLOBAL", &gitconfig).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let top = docker(&["top", &container(&id), "-eo", "pid,args"]);
    session.wait().unwrap();
    let forced_exec = std::env::var("DEN_TEST_LINE").is_ok_and(|v| v == "exec");
    assert_eq!(top.contains("agent credentials-server"), forced_exec, "{top}");
    if !forced_exec {
        assert!(top.contains("agent line-server") && !top.contains("agent ports-watch"), "{top}");
    }
    let o = s.openssh(&id).arg(FILL).env("GIT_CONFIG_GLOBAL", &gitconfig).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("username=alice\npassword=s3cret\n"), "{out}|{}", String::from_utf8_lossy(&o.stderr));
    // another user of the container cannot ask (the relay's socket is the
    // remote user's)
    let other = r#"/usr/sbin/useradd -M other; sleep 1; su other -s /bin/sh -c 'printf "protocol=https\nhost=git.example.com\n\n" | /usr/local/lib/den-agent/den agent git-credential get'; echo end"#;
    let r = den(&["ssh", "--user", "root", &id, "--command", other]);
    assert_eq!(r.stdout, "end\n", "{}", r.stderr);

    // git's erase after a 401 in the workspace does not touch the client's store
    let r = den(&["ssh", &id, "--command", "printf 'protocol=https\\nhost=git.example.com\\nusername=alice\\npassword=s3cret\\n\\n' | git credential reject"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&store).unwrap().contains("alice:s3cret"), "the client's credential stays");
    // a host the client has nothing for: git gets nothing, and says so
    let r = den(&[
        "ssh",
        &id,
        "--command",
        "printf 'protocol=https\\nhost=other.example\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill",
    ]);
    assert_ne!(r.code, 0);
    assert!(!r.stdout.contains("password="), "{}", r.stdout);

    // the provider says no: no helper in the container, nothing leaks
    let id2 = unique_id("nogitcred");
    let _c2 = s.cleanup(&id2);
    let p2 = s.project("nogitcred", &[(".devcontainer.json", r#"{"image": "den-test/debian:bookworm"}"#)]);
    let r = den(&["up", "--id", &id2, "--provider-option", "INJECT_GIT_CREDENTIALS=false", p2.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = den(&["ssh", &id2, "--command", "git config --system --get-all credential.helper; echo end"]);
    assert_eq!(r.stdout, "end\n", "{}", r.stderr);
    let r = den(&["ssh", &id2, "--command", FILL]);
    assert!(!r.stdout.contains("s3cret"), "{}", r.stdout);
}

/// Docker registry credentials: docker in the workspace (through
/// docker-credential-den, its credsStore) gets what this machine's docker
/// config holds — an `auths` entry, or a credential helper.
#[test]
fn docker_credentials_come_from_the_client() {
    require_engine();
    let s = Sandbox::new();
    let config = s.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // dave:pw for registry.example.com, a helper for helped.example.com
    std::fs::write(
        config.join("config.json"),
        r#"{"auths": {"registry.example.com": {"auth": "ZGF2ZTpwdw=="}}, "credHelpers": {"helped.example.com": "denteststore"}}"#,
    )
    .unwrap();
    let bin = s.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-denteststore");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread url\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"erin\",\"Secret\":\"tok\"}' \"$url\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let den = |args: &[&str]| run(s.den().args(args).env("DOCKER_CONFIG", &config).env("PATH", &path));

    let id = unique_id("dockercred");
    let _c = s.cleanup(&id);
    let p = s.project("dockercred", &[(".devcontainer.json", r#"{"image": "den-test/debian:bookworm"}"#)]);
    let r = den(&["up", "--id", &id, p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = den(&[
        "ssh",
        &id,
        "--command",
        "grep credsStore ~/.docker/config.json; echo registry.example.com | docker-credential-den get",
    ]);
    assert!(r.stdout.contains(r#""credsStore": "den""#), "{}", r.stdout);
    assert!(
        r.stdout.contains(r#""Username":"dave""#) && r.stdout.contains(r#""Secret":"pw""#),
        "{}|{}",
        r.stdout,
        r.stderr
    );
    let r = den(&["ssh", &id, "--command", "echo https://helped.example.com | docker-credential-den get"]);
    assert!(r.stdout.contains(r#""Username":"erin""#), "{}|{}", r.stdout, r.stderr);
    // none for this registry: the helper protocol's "not found"
    let r = den(&["ssh", &id, "--command", "echo nowhere.example | docker-credential-den get"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "credentials not found in native keychain\n");
    // docker login in the workspace stores in the workspace, never on the client
    let stored = r#"echo '{"ServerURL":"in.example","Username":"inside","Secret":"x"}' | docker-credential-den store && echo in.example | docker-credential-den get && docker-credential-den list"#;
    let r = den(&["ssh", &id, "--command", stored]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(r#""Username":"inside""#), "{}", r.stdout);
    assert!(
        r.stdout.contains(r#""in.example":"inside""#) && r.stdout.contains(r#""registry.example.com":"dave""#),
        "{}",
        r.stdout
    );
    let r = den(&[
        "ssh",
        &id,
        "--command",
        "echo in.example | docker-credential-den erase && echo in.example | docker-credential-den get",
    ]);
    assert_eq!(r.code, 1, "erased: {}", r.stdout);
    assert!(!std::fs::read_to_string(config.join("config.json")).unwrap().contains("inside"));

    // turned off: no helper, no credsStore
    let r = den(&["up", "--id", &id, "--provider-option", "INJECT_DOCKER_CREDENTIALS=false", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = den(&["ssh", &id, "--command", "command -v docker-credential-den; cat ~/.docker/config.json"]);
    assert!(!r.stdout.contains("docker-credential-den") && !r.stdout.contains("credsStore"), "{}", r.stdout);
}
