//! A real headless Chromium driven through chromedriver (Debian's `chromium`
//! and `chromium-driver`, installed by tests/engine/setup.sh): the W3C
//! WebDriver protocol is JSON over HTTP on a loopback port, spoken here
//! with std's TcpStream. The browser gets a fresh profile under the test's
//! folder; dropping the [`Browser`] ends the session and then every process
//! started with that profile (chromium and its helpers, by process group)
//! and chromedriver's group, so nothing is left running.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names "element" in its answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Enter key in send_keys text.
pub const ENTER: &str = "\u{E007}";
pub const ESCAPE: &str = "\u{E00C}";
pub const TAB: &str = "\u{E004}";

pub struct Browser {
    port: u16,
    session: String,
    profile: PathBuf,
    _driver: Daemon,
}

/// The flags every test browser runs with: headless, nothing fetched from
/// outside (no updates, no sync, no background traffic).
fn chromium_args(profile: &Path, width: u32, height: u32) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={width},{height}"));
    args
}

/// One HTTP/1.1 request to chromedriver on 127.0.0.1:port: its status and
/// JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver answers");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    read_answer(&mut s)
}

/// An HTTP answer: its status and JSON body, read by its Content-Length
/// (chromedriver keeps the connection open).
fn read_answer(s: &mut TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "chromedriver closed the connection: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while raw.len() < end + length {
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "chromedriver closed the connection mid-answer");
        raw.extend_from_slice(&buf[..n]);
    }
    (status, serde_json::from_slice(&raw[end..end + length]).unwrap_or(Value::Null))
}

impl Browser {
    /// A new headless Chromium (window `width`×`height`) with its profile
    /// under `dir`.
    pub fn start(dir: &Path, width: u32, height: u32) -> Browser {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let driver =
            Daemon::spawn(Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(log));
        wait_port(port);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": chromium_args(&profile, width, height)}
        }}});
        let (status, v) = http(port, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "chromedriver did not start chromium: {v}");
        let session = v["value"]["sessionId"].as_str().expect("a session id").to_string();
        Browser { port, session, profile, _driver: driver }
    }

    /// A WebDriver command of this session; panics with the driver's
    /// message when it fails.
    #[track_caller]
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        assert_eq!(status, 200, "webdriver {method} {path}: {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `js` (a function body; `arguments` holds `args`) in the page.
    #[track_caller]
    pub fn js(&self, js: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": js, "args": args })))
    }

    /// Polls the expression `js` until it is truthy (bounded by `limit`);
    /// returns its value and how long it took.
    #[track_caller]
    pub fn wait(&self, what: &str, js: &str, limit: Duration) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            // An error (the page between two loads) counts as not yet.
            let body = json!({ "script": format!("return ({js});"), "args": [] });
            let (status, v) = http(self.port, "POST", &format!("/session/{}/execute/sync", self.session), Some(&body));
            let v = if status == 200 { v["value"].clone() } else { Value::Null };
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return (v, start.elapsed());
            }
            assert!(start.elapsed() < limit, "waited {limit:?} for {what}; the page:\n{}", self.text("body"));
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The element `css` selects (first match); panics when there is none.
    #[track_caller]
    pub fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    #[track_caller]
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Types `text` into the element `css` (WebDriver key codes allowed).
    #[track_caller]
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }

    /// Presses and releases `key` (a WebDriver key code) where the focus is.
    pub fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
        ]}]});
        self.cmd("POST", "/actions", Some(actions));
    }

    /// The text of the first element `css` selects ("" when none).
    pub fn text(&self, css: &str) -> String {
        let js = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';";
        self.js(js, json!([css])).as_str().unwrap_or_default().to_string()
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({"width": width, "height": height})));
    }

    /// Runs `f` in the window the page just opened (a link with a target),
    /// then closes that window and comes back.
    #[track_caller]
    pub fn in_new_window<T>(&self, f: impl FnOnce() -> T) -> T {
        let first = self.cmd("GET", "/window", None);
        let start = Instant::now();
        let other = loop {
            let all = self.cmd("GET", "/window/handles", None);
            if let Some(h) = all.as_array().unwrap().iter().find(|h| **h != first) {
                break h.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no new window opened");
            std::thread::sleep(Duration::from_millis(25));
        };
        self.cmd("POST", "/window", Some(json!({ "handle": other })));
        let out = f();
        self.cmd("DELETE", "/window", None);
        self.cmd("POST", "/window", Some(json!({ "handle": first })));
        out
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64ct::{Base64, Encoding};
        let v = self.cmd("GET", "/screenshot", None);
        let png = Base64::decode_vec(v.as_str().expect("base64 PNG")).expect("valid base64");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// The process groups of every process whose command line names `needle`.
fn groups_naming(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        if let Some(pgrp) = rest.split(' ').nth(2).and_then(|g| g.parse().ok()) {
            out.push(pgrp);
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        // Chromium may sit in a group of its own: end every group that runs
        // with this test's profile (a folder no other process names).
        let profile = format!("--user-data-dir={}", self.profile.display());
        let me = unsafe { libc::getpgrp() };
        for g in groups_naming(&profile) {
            if g > 1 && g != me {
                // SAFETY: kill(2) on a group this test's browser made.
                unsafe { libc::kill(-g, libc::SIGKILL) };
            }
        }
    }
}

/// The test browser works and leaves nothing behind: after the drop no
/// process runs with its profile and chromedriver's group is gone.
#[test]
fn the_test_browser_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let profile;
    {
        let b = Browser::start(dir.path(), 800, 600);
        b.goto("data:text/html,<p id=x>hi from chromium</p>");
        assert_eq!(b.text("#x"), "hi from chromium");
        b.screenshot(&dir.path().join("shot.png"));
        let png = std::fs::read(dir.path().join("shot.png")).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        profile = format!("--user-data-dir={}", b.profile.display());
        assert!(!groups_naming(&profile).is_empty(), "chromium does not run with the profile");
    }
    let start = Instant::now();
    while !groups_naming(&profile).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "still running: {:?}", groups_naming(&profile));
        std::thread::sleep(Duration::from_millis(50));
    }
}
