//! The port forwarder `den up` starts: real servers in a real container,
//! reached on 127.0.0.1 with no session open; ports found listening later;
//! attributes; `den ports` and `den forward`; a `docker restart`; `den stop`.

use std::time::{Duration, Instant};

use crate::common::*;

/// `http_get`, or `None` while nothing answers (bounded by `within`).
fn get_within(port: u16, within: Duration) -> Option<String> {
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").is_ok() {
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                if let Some(body) = text.split("\r\n\r\n").nth(1).filter(|b| !b.is_empty()) {
                    return Some(body.to_string());
                }
            }
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ports(s: &Sandbox, id: &str) -> serde_json::Value {
    let r = run(s.den().args(["ports", id, "--output", "json"]));
    r.assert_ok();
    serde_json::from_str(&r.stdout).unwrap()
}

fn entry(doc: &serde_json::Value, port: u16) -> Option<serde_json::Value> {
    doc["ports"].as_array().unwrap().iter().find(|p| p["port"] == port).cloned()
}

/// `busybox httpd` on `port` serving `word`, started in the workspace by
/// `den ssh ID -- …` (an exact argument vector).
fn serve_later(s: &Sandbox, id: &str, port: u16, word: &str) {
    let script = format!(
        "mkdir -p /tmp/w{port} && echo {word} > /tmp/w{port}/index.html && busybox httpd -p {port} -h /tmp/w{port}"
    );
    run(s.den().args(["ssh", id, "--", "sh", "-c", &script])).assert_ok();
}

fn forwarders_of(id: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.contains(&&b"forward-daemon"[..]) && args.contains(&id.as_bytes())
        })
        .count()
}

#[test]
fn ports_stay_forwarded_without_a_session() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("ports");
    let _c = s.cleanup(&id);
    let (web, later, busy, ignored, opened) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let shouting = free_port();
    let browser_log = s.path().join("browser.log");
    let browser = s.path().join("recording-browser-stand-in");
    std::fs::write(&browser, format!("#!/bin/sh\necho \"$@\" >> {}\n", browser_log.display())).unwrap();
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!(
        r#"{{
  "image": "den-test/busybox",
  "forwardPorts": [{web}, "{shouting}"],
  "portsAttributes": {{
    "{web}": {{"label": "web"}},
    "{shouting}": {{"label": "\u001b]0;pwned\u0007\u001b[2Jloud"}},
    "{ignored}": {{"onAutoForward": "ignore"}},
    "{opened}": {{"label": "docs", "onAutoForward": "openBrowser"}}
  }},
  "otherPortsAttributes": {{"onAutoForward": "silent"}},
  "postStartCommand": "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && (busybox httpd -p {web} -h /tmp/www &)"
}}"#
    );
    let p = s.project("ports", &[(".devcontainer/devcontainer.json", &config)]);
    let r = run(s.den().env("BROWSER", &browser).args(["up", "--ide", "none", "--id", &id]).arg(&p));
    r.assert_ok();
    assert!(r.stderr.contains(&format!("127.0.0.1:{web} → {web} (web) [forwardPorts]")), "{}", r.stderr);

    // A label (the config's) is printed with its control characters escaped.
    let text = run(s.den().args(["ports", &id]));
    text.assert_ok();
    assert!(
        text.stdout.contains(&format!("→ {shouting} (\\u{{1b}}]0;pwned\\u{{7}}\\u{{1b}}[2Jloud)")),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'), "{:?}", text.stdout);

    // No session is open: the forward is there anyway.
    assert_eq!(get_within(web, Duration::from_secs(10)).as_deref(), Some("hello\n"));
    let doc = ports(&s, &id);
    assert_eq!(doc["forwarder"], true);
    let e = entry(&doc, web).unwrap();
    assert_eq!((e["label"].as_str(), e["origin"].as_str()), (Some("web"), Some("forwardPorts")));
    assert_eq!(e["local"], format!("127.0.0.1:{web}"));
    // The process listening inside, once the agent reported it.
    let start = Instant::now();
    while !entry(&ports(&s, &id), web).unwrap()["process"].as_str().unwrap().contains("httpd") {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", ports(&s, &id));
        std::thread::sleep(Duration::from_millis(100));
    }

    // A server started later is found and forwarded within 2 s.
    serve_later(&s, &id, later, "later");
    assert_eq!(get_within(later, Duration::from_secs(2)).as_deref(), Some("later\n"));
    assert_eq!(entry(&ports(&s, &id), later).unwrap()["origin"], "auto");

    // openBrowser opens the browser ($BROWSER, here a recording stand-in).
    serve_later(&s, &id, opened, "docs");
    assert_eq!(get_within(opened, Duration::from_secs(2)).as_deref(), Some("docs\n"));
    let start = Instant::now();
    while !std::fs::read_to_string(&browser_log).unwrap_or_default().contains(&format!("http://127.0.0.1:{opened}")) {
        assert!(start.elapsed() < Duration::from_secs(5), "the browser was not opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&browser_log).unwrap();
    assert_eq!(log.lines().count(), 1, "only openBrowser ports open it: {log}");

    // A busy local port: the next free one, said in `den ports`.
    let holder = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    serve_later(&s, &id, busy, "moved");
    let start = Instant::now();
    let moved = loop {
        if let Some(e) = entry(&ports(&s, &id), busy) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "port {busy} was not forwarded");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(moved["note"].as_str().unwrap().contains("in use"), "{moved}");
    let local: u16 = moved["local"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(local, busy);
    assert_eq!(get_within(local, Duration::from_secs(2)).as_deref(), Some("moved\n"));
    drop(holder);

    // onAutoForward: ignore → not forwarded; `den forward` adds it by hand
    // and `--stop` removes it.
    serve_later(&s, &id, ignored, "by-hand");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(entry(&ports(&s, &id), ignored).is_none());
    let by_hand = free_port();
    run(s.den().args(["forward", &id, &format!("{by_hand}:{ignored}")])).assert_ok();
    assert_eq!(get_within(by_hand, Duration::from_secs(2)).as_deref(), Some("by-hand\n"));
    run(s.den().args(["forward", &id, "--stop", &ignored.to_string()])).assert_ok();
    assert!(std::net::TcpStream::connect(("127.0.0.1", by_hand)).is_err(), "still forwarded after --stop");
    let r = run(s.den().args(["forward", &id, "--stop", "1"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("port 1 is not forwarded"), "{}", r.stderr);
    let r = run(s.den().args(["forward", &id, "x:80"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not [LOCAL:]REMOTE"), "{}", r.stderr);

    // A second `up` finds the forwarder: still one.
    run(s.den().args(["up", "--ide", "none", "--id", &id]).arg(&p)).assert_ok();
    assert_eq!(forwarders_of(&id), 1);

    // The container restarts: the forwarder connects again.
    docker(&["restart", &container(&id)]);
    // The httpd seen before is gone with the old container process tree:
    // `den ports` no longer names it once the forwarder is back.
    let start = Instant::now();
    loop {
        let doc = ports(&s, &id);
        if doc["connected"] == true && entry(&doc, web).unwrap()["process"] == "" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "a process that is gone still owns port {web}: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
    serve_later(&s, &id, web, "again");
    assert_eq!(get_within(web, Duration::from_secs(15)).as_deref(), Some("again\n"));

    // `den stop`: the forwarder goes, and its ports close.
    run(s.den().args(["stop", &id])).assert_ok();
    assert_eq!(forwarders_of(&id), 0);
    assert!(std::net::TcpStream::connect(("127.0.0.1", web)).is_err(), "port {web} still open after stop");
    let doc = ports(&s, &id);
    assert_eq!(doc["forwarder"], false);
    let log = s.home().join("contexts/default/workspaces").join(&id).join("forwarder.log");
    assert!(std::fs::read_to_string(&log).unwrap().contains("connected"), "no log at {}", log.display());
}

/// An idle forwarder is no session (the container stops after its
/// inactivity timeout, see `up::inactivity_timeout_…`), but connections
/// through a forwarded port are activity.
#[test]
fn traffic_through_a_forwarded_port_keeps_the_workspace_up() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("portsidle");
    let _c = s.cleanup(&id);
    let web = free_port();
    let config = format!(
        r#"{{"image": "den-test/busybox", "forwardPorts": [{web}],
  "postStartCommand": "mkdir -p /tmp/www && echo hi > /tmp/www/index.html && (busybox httpd -p {web} -h /tmp/www &)"}}"#
    );
    let p = s.project("portsidle", &[(".devcontainer.json", &config)]);
    s.up(&p, &id, &["--provider-option", "INACTIVITY_TIMEOUT=3s"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(7) {
        assert_eq!(get_within(web, Duration::from_secs(5)).as_deref(), Some("hi\n"), "after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(run(s.den().args(["status", &id])).stdout.trim(), "Running");
    // No more traffic: it stops (bounded wait), and the forwarder with it.
    let start = Instant::now();
    while run(s.den().args(["status", &id])).stdout.trim() != "Stopped" {
        assert!(start.elapsed() < Duration::from_secs(20), "still running 20 s after the traffic ended");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn up_with_forward_ports_false_starts_no_forwarder() {
    require_engine();
    let s = Sandbox::new();
    let id = unique_id("noports");
    let _c = s.cleanup(&id);
    let web = free_port();
    let p = s.project(
        "noports",
        &[(".devcontainer.json", &format!(r#"{{"image": "den-test/busybox", "forwardPorts": [{web}]}}"#))],
    );
    let v = s.up(&p, &id, &["--forward-ports=false"]);
    assert_eq!(v["ports"], serde_json::json!([]));
    assert_eq!(forwarders_of(&id), 0);
    let r = run(s.den().args(["ports", &id]));
    r.assert_ok();
    assert!(r.stderr.contains("no port forwarder runs"), "{}", r.stderr);
    let r = run(s.den().args(["ports", "no-such-workspace"]));
    assert_ne!(r.code, 0);
}
