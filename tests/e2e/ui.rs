//! `den ui`'s server without a browser: plain HTTP and websockets from a
//! small client over std's TcpStream (any Host, Origin or cookie can be
//! sent), against the real binary and, where a workspace is needed, the
//! real engine. The page itself is ui_browser.rs's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A running `den ui --no-open --port P`.
struct Ui {
    port: u16,
    token: String,
    server: Daemon,
}

impl Ui {
    fn start(sb: &Sandbox) -> Ui {
        let (server, port, url) = start_den_ui(sb);
        let token = url.rsplit_once("token=").unwrap().1.to_string();
        Ui { port, token, server }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn cookie(&self) -> String {
        format!("den_ui={}", self.token)
    }

    /// A request with the right Host and the cookie, plus `extra` headers.
    fn call(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> Reply {
        let (host, cookie) = (self.host(), self.cookie());
        let mut headers = vec![("Host", host.as_str()), ("Cookie", cookie.as_str()), ("X-Den", "1")];
        headers.extend_from_slice(extra);
        request(self.port, method, path, &headers, body)
    }

    fn get_json(&self, path: &str) -> Value {
        let r = self.call("GET", path, &[], "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request with exactly `headers`; the whole answer.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_string(), body: body.to_string() }
}

/// A websocket handshake with `headers`; the connection when it was
/// accepted (101), else the status.
fn ws_connect(port: u16, path: &str, headers: &[(&str, &str)]) -> Result<TcpStream, u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The head, byte by byte: the frames follow it at once.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "the server closed during the handshake");
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    if status == 101 {
        Ok(s)
    } else {
        Err(status)
    }
}

/// A client frame (masked, as clients must).
fn ws_send(s: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&f).unwrap();
}

/// The next server frame: (opcode, payload); `None` at the end.
fn ws_recv(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x0f, payload))
}

/// A terminal's output until `want` shows (bounded); all of it.
fn read_until(s: &mut TcpStream, seen: &mut String, want: &str) {
    read_while(s, seen, want, |seen| !seen.contains(want));
}

/// A terminal's output, read while `more` says so (bounded).
fn read_while(s: &mut TcpStream, seen: &mut String, what: &str, more: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while more(seen) {
        assert!(start.elapsed() < Duration::from_secs(60), "no `{what}` in the terminal; it showed:\n{seen}");
        match ws_recv(s) {
            Some((2, bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Some((1, text)) => seen.push_str(&format!("[text frame {}]", String::from_utf8_lossy(&text))),
            Some((8, _)) | None => panic!("the terminal closed before `{what}`; it showed:\n{seen}"),
            Some(_) => {}
        }
    }
}

/// The terminal's text frames until its end: the last one.
fn exit_frame(s: &mut TcpStream) -> Value {
    let mut last = Value::Null;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        match ws_recv(s) {
            Some((1, text)) => last = serde_json::from_slice(&text).unwrap(),
            Some((8, _)) | None => return last,
            Some(_) => {}
        }
    }
    panic!("the terminal did not end");
}

/// Reads an SSE stream until an event of `name` whose data satisfies
/// `want` (bounded); that data.
fn sse_until(stream: &mut BufReader<TcpStream>, name: &str, want: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    let mut event = String::new();
    loop {
        assert!(start.elapsed() < Duration::from_secs(120), "no `{name}` event as wanted");
        let mut line = String::new();
        if stream.read_line(&mut line).unwrap() == 0 {
            panic!("the event stream ended before a `{name}` event as wanted");
        }
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if event == name {
                if let Ok(v) = serde_json::from_str::<Value>(d) {
                    if want(&v) {
                        return v;
                    }
                }
            }
        }
    }
}

/// An SSE stream of `path`, past its head.
fn sse_open(ui: &Ui, path: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        ui.host(),
        ui.cookie()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "{path}: {line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

fn status_of(list: &Value, id: &str) -> Option<String> {
    list["workspaces"].as_array()?.iter().find(|w| w["id"] == id).map(|w| w["status"].as_str().unwrap().to_string())
}

#[test]
fn the_server_refuses_requests_without_the_token_or_from_elsewhere() {
    let sb = Sandbox::new();
    let ui = Ui::start(&sb);
    let (host, cookie) = (ui.host(), ui.cookie());
    let own = [("Host", host.as_str())];
    // No token at all, a wrong one, a foreign Host, a foreign Origin.
    assert_eq!(request(ui.port, "GET", "/api/workspaces", &own, "").status, 403);
    let wrong = [("Host", host.as_str()), ("Cookie", "den_ui=0000")];
    assert_eq!(request(ui.port, "GET", "/api/workspaces", &wrong, "").status, 403);
    let rebound = [("Host", "evil.example:80"), ("Cookie", cookie.as_str())];
    let r = request(ui.port, "GET", "/api/workspaces", &rebound, "");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("Host"), "{}", r.body);
    let other_port = format!("127.0.0.1:{}", ui.port + 1);
    let r = request(ui.port, "GET", "/", &[("Host", &other_port), ("Cookie", &cookie)], "");
    assert_eq!(r.status, 403);
    let r = ui.call("GET", "/api/workspaces", &[("Origin", "http://evil.example")], "");
    assert_eq!(r.status, 403, "{r:?}");
    let r = ui.call("POST", "/api/workspaces/x/stop", &[("Origin", "http://evil.example")], "{}");
    assert_eq!(r.status, 403);
    // A change without X-Den (what a form on another site could send).
    let r = request(ui.port, "POST", "/api/workspaces/x/stop", &[("Host", &host), ("Cookie", &cookie)], "{}");
    assert_eq!(r.status, 403, "{r:?}");
    // The websocket: no token, a foreign Origin, a foreign Host.
    let ws = "/api/workspaces/x/terminal?cols=80&rows=24";
    assert_eq!(ws_connect(ui.port, ws, &own).err(), Some(403));
    let foreign = [("Host", host.as_str()), ("Cookie", cookie.as_str()), ("Origin", "http://evil.example")];
    assert_eq!(ws_connect(ui.port, ws, &foreign).err(), Some(403));
    assert_eq!(ws_connect(ui.port, ws, &[("Host", "evil.example"), ("Cookie", &cookie)]).err(), Some(403));
    // Every answer carries the security headers.
    assert!(r.head.to_ascii_lowercase().contains("content-security-policy: default-src 'self'"), "{}", r.head);

    // The first load: the token moves into an HttpOnly SameSite=Strict
    // cookie, and the page goes on to / (a same-site load, which sends it).
    let r = request(ui.port, "GET", &format!("/?token={}", ui.token), &own, "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(r#"<meta http-equiv="refresh" content="0;url=/">"#), "{}", r.body);
    let head = r.head.to_ascii_lowercase();
    assert!(head.contains(&format!("set-cookie: den_ui={}; httponly; samesite=strict; path=/", ui.token)), "{head}");
    // With the cookie, from the page's own origin (or localhost's): the page and the API.
    let page = ui.call("GET", "/", &[("Origin", &format!("http://localhost:{}", ui.port))], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html") || page.body.contains("<!DOCTYPE"), "{}", page.body);
    assert_eq!(ui.get_json("/api/workspaces")["workspaces"], serde_json::json!([]));
    assert_eq!(ui.get_json("/api/contexts")["current"], "default");
    let by_query = request(ui.port, "GET", &format!("/api/contexts?token={}", ui.token), &own, "");
    assert_eq!(by_query.status, 200);
    // A body the route does not take: 400, saying why, nothing started.
    let bad = ui.call("POST", "/api/workspaces", &[], "{\"source\": 7}");
    assert_eq!(bad.status, 400, "{bad:?}");
    let doc: Value = serde_json::from_str(&bad.body).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("not what this route takes"), "{doc}");
    assert_eq!(doc["exit"], 1);
    // xterm.js is embedded gzipped: sent so to a browser, unpacked to others.
    let gz = ui.call("GET", "/assets/xterm.js", &[("Accept-Encoding", "gzip, deflate")], "");
    assert!(gz.head.to_ascii_lowercase().contains("content-encoding: gzip"), "{}", gz.head);
    let plain = ui.call("GET", "/assets/xterm.js", &[], "");
    assert_eq!(plain.status, 200);
    assert!(!plain.head.to_ascii_lowercase().contains("content-encoding"), "{}", plain.head);
    assert_eq!(
        plain.body.len(),
        std::fs::metadata(repo_root().join("crates/den-ui/assets/vendor/xterm.js")).unwrap().len() as usize
    );
}

#[test]
fn a_second_den_ui_points_at_the_first_and_ctrl_c_leaves_nothing() {
    let sb = Sandbox::new();
    let ui = Ui::start(&sb);
    let info = sb.home().join("ui.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&info).unwrap().permissions().mode() & 0o777, 0o600);
    let second = run(sb.den().args(["ui", "--no-open"]));
    second.assert_ok();
    assert!(
        second.stderr.contains(&format!("den ui already runs at http://127.0.0.1:{}/?token=", ui.port)),
        "{}",
        second.stderr
    );
    // A follower of the events is connected when Ctrl-C comes: it must not hold the exit.
    let _events = sse_open(&ui, "/api/events");
    // SAFETY: a signal to the server this test started.
    unsafe { libc::kill(ui.server.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", ui.port)).is_ok() || info.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "den ui still listens or left ui.json after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(group_members(ui.server.id()).is_empty(), "left running: {:?}", group_members(ui.server.id()));
}

#[test]
fn the_browser_is_opened_on_a_private_page_not_on_the_token() {
    let sb = Sandbox::new();
    let opened = sb.path().join("opened");
    let browser = sb.project("bin", &[("browser", &format!("#!/bin/sh\necho \"$1\" >> {}\n", opened.display()))]);
    let browser = browser.join("browser");
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = free_port();
    let server = Daemon::spawn(
        sb.den().args(["ui", "--port", &port.to_string()]).env("BROWSER", &browser).stdout(Stdio::null()),
    );
    wait_port(port);
    let start = Instant::now();
    while !std::fs::read_to_string(&opened).is_ok_and(|t| t.ends_with('\n')) {
        assert!(start.elapsed() < Duration::from_secs(10), "the browser was not opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: Value = serde_json::from_str(&std::fs::read_to_string(sb.home().join("ui.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap();
    let token = url.rsplit_once("token=").unwrap().1;
    let arg = std::fs::read_to_string(&opened).unwrap();
    assert!(arg.starts_with("file://") && !arg.contains(token), "the browser was given {arg}");
    let page = sb.home().join("ui.html");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&page).unwrap().contains(&format!("url={url}")));
    // SAFETY: a signal to the server this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while page.exists() || sb.home().join("ui.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "den ui left its files after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_api_lists_stops_and_opens_terminals_like_the_cli() {
    let sb = Sandbox::new();
    let ws = sb.workspace("uiapi", r#"{"image": "den-test/debian:bookworm"}"#);
    ws.up(&[]).assert_ok();
    let ui = Ui::start(&sb);
    let list = ui.get_json("/api/workspaces");
    assert_eq!(status_of(&list, &ws.id).as_deref(), Some("Running"), "{list}");
    let row = list["workspaces"].as_array().unwrap().iter().find(|w| w["id"] == ws.id.as_str()).unwrap().clone();
    assert_eq!(row["source"]["kind"], "folder");
    assert_eq!(row["provider"], "docker");

    // The agent's log, as `den logs ID` prints it.
    let cli_log = run(sb.den().args(["logs", &ws.id])).stdout;
    let first = cli_log.lines().next().expect("the agent logged something").to_string();
    let mut log = sse_open(&ui, &format!("/api/workspaces/{}/log", ws.id));
    sse_until(&mut log, "line", |v| v["text"] == first.as_str());
    drop(log);

    terminal_session(&ui, &ws.id);
    closing_the_page_ends_the_shell(&ui, &ws.id, &ws.container());

    // Stop through the API: the engine and `den status` agree, and the
    // events follow.
    let mut events = sse_open(&ui, "/api/events");
    sse_until(&mut events, "workspaces", |v| status_of(v, &ws.id).as_deref() == Some("Running"));
    let r = ui.call("POST", &format!("/api/workspaces/{}/stop", ws.id), &[], "{}");
    assert_eq!(r.status, 202, "{r:?}");
    let op: Value = serde_json::from_str(&r.body).unwrap();
    let mut progress = sse_open(&ui, &format!("/api/ops/{}/events", op["op"].as_str().unwrap()));
    let done = sse_until(&mut progress, "done", |_| true);
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(container_running(&ws.container()), Some(false));
    assert_eq!(run(sb.den().args(["status", &ws.id])).stdout.trim(), "Stopped");
    sse_until(&mut events, "workspaces", |v| status_of(v, &ws.id).as_deref() == Some("Stopped"));

    // A `den up` in a shell shows in the events.
    ws.up(&[]).assert_ok();
    let shown = Instant::now();
    sse_until(&mut events, "workspaces", |v| status_of(v, &ws.id).as_deref() == Some("Running"));
    eprintln!("a CLI up showed in the events {:?} after it ended", shown.elapsed());
    // A `den stop` in a shell changes no record: the engine's events tell.
    run(sb.den().args(["stop", &ws.id])).assert_ok();
    let shown = Instant::now();
    sse_until(&mut events, "workspaces", |v| status_of(v, &ws.id).as_deref() == Some("Stopped"));
    eprintln!("a CLI stop showed in the events {:?} after it ended", shown.elapsed());
    // A change in the engine alone (no record, no lock touched) shows too,
    // well before the engine poll that backs the events up (10 s): the
    // engine's event told.
    docker(&["start", &ws.container()]);
    let shown = Instant::now();
    sse_until(&mut events, "workspaces", |v| status_of(v, &ws.id).as_deref() == Some("Running"));
    eprintln!("a docker start showed in the events {:?} after it ended", shown.elapsed());
    assert!(shown.elapsed() < Duration::from_secs(5), "{:?}", shown.elapsed());
    run(sb.den().args(["up", "--id", &ws.id]).arg(&ws.folder)).assert_ok();

    // An error says what the CLI says, with its exit code.
    let r = ui.call("POST", "/api/workspaces/nope/stop", &[], "{}");
    let op: Value = serde_json::from_str(&r.body).unwrap();
    let mut progress = sse_open(&ui, &format!("/api/ops/{}/events", op["op"].as_str().unwrap()));
    let done = sse_until(&mut progress, "done", |_| true);
    let cli = run(sb.den().args(["stop", "nope"]));
    assert_eq!(done["exit"], cli.code, "{done}");
    assert_eq!(format!("den: {}", done["error"].as_str().unwrap()), cli.stderr.trim());

    // Ctrl-C with a terminal open: the server ends, and the shell with it.
    let (mut term, pid) = shell_with_pid(&ui, &ws.id);
    // SAFETY: a signal to the server this test started.
    unsafe { libc::kill(ui.server.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    while !matches!(ws_recv(&mut term), None | Some((8, _))) {
        assert!(start.elapsed() < Duration::from_secs(10), "the terminal went on after SIGINT");
    }
    wait_gone(&ws.container(), &pid);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", ui.port)).is_ok() || !group_members(ui.server.id()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "left running: {:?}", group_members(ui.server.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `echo`, `stty size` after a resize, and `exit 3` in a terminal.
fn terminal_session(ui: &Ui, id: &str) {
    let (host, cookie) = (ui.host(), ui.cookie());
    let origin = format!("http://{host}");
    let headers = [("Host", host.as_str()), ("Cookie", cookie.as_str()), ("Origin", origin.as_str())];
    let path = format!("/api/workspaces/{id}/terminal?cols=80&rows=24");
    let mut s = ws_connect(ui.port, &path, &headers).expect("the terminal's handshake");
    let mut seen = String::new();
    ws_send(&mut s, 2, b"echo hi-$((6*7))\r");
    read_until(&mut s, &mut seen, "hi-42");
    ws_send(&mut s, 1, br#"{"resize":[101,33]}"#);
    ws_send(&mut s, 2, b"stty size\r");
    read_until(&mut s, &mut seen, "33 101");
    ws_send(&mut s, 2, b"exit 3\r");
    assert_eq!(exit_frame(&mut s), serde_json::json!({ "exit": 3 }));
}

/// A terminal whose page goes away: its shell ends (no shell, thread or
/// connection is left for each closed tab).
fn closing_the_page_ends_the_shell(ui: &Ui, id: &str, container: &str) {
    let (s, pid) = shell_with_pid(ui, id);
    drop(s);
    wait_gone(container, &pid);
}

/// A terminal, and the pid of its shell in the container.
fn shell_with_pid(ui: &Ui, id: &str) -> (TcpStream, String) {
    let (host, cookie) = (ui.host(), ui.cookie());
    let headers = [("Host", host.as_str()), ("Cookie", cookie.as_str())];
    let mut s = ws_connect(ui.port, &format!("/api/workspaces/{id}/terminal"), &headers).unwrap();
    let mut seen = String::new();
    ws_send(&mut s, 2, b"echo shell-$$ | tr s S\r");
    let line = |seen: &str| {
        seen.split("Shell-").nth(1).and_then(|rest| rest.split_once("\r\n")).map(|(pid, _)| pid.to_string())
    };
    read_while(&mut s, &mut seen, "the shell's pid", |seen| line(seen).is_none());
    let pid = line(&seen).unwrap();
    assert!(pid.chars().all(|c| c.is_ascii_digit()), "{seen}");
    (s, pid)
}

/// Waits (bounded) until process `pid` is gone from the container.
fn wait_gone(container: &str, pid: &str) {
    let start = Instant::now();
    while exec(container, &format!("test -e /proc/{pid} && echo alive || true")).contains("alive") {
        assert!(start.elapsed() < Duration::from_secs(10), "the shell {pid} outlived its page");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ending_den_ui_ends_the_programs_of_its_running_operations() {
    require_engine();
    let sb = Sandbox::new();
    let config = r#"{"image": "den-test/busybox", "initializeCommand": "sleep 300"}"#;
    let ws = sb.workspace("uiend", config);
    let ui = Ui::start(&sb);
    let body = serde_json::json!({ "source": ws.folder, "id": ws.id }).to_string();
    let r = ui.call("POST", "/api/workspaces", &[], &body);
    assert_eq!(r.status, 202, "{r:?}");
    let start = Instant::now();
    while !group_members(ui.server.id()).iter().any(|p| p.contains("(sleep")) {
        assert!(start.elapsed() < Duration::from_secs(60), "initializeCommand never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: a signal to the server this test started.
    unsafe { libc::kill(ui.server.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while !group_members(ui.server.id()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "left running: {:?}", group_members(ui.server.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
}
