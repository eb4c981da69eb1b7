//! `den ui` in a real headless Chromium (see webdriver.rs) against the real
//! engine: the list of workspaces the CLI made and its live changes, the
//! operations the page runs (stop, create from a git URL with its
//! progress, delete after a confirmation), forwarded port links, the agent
//! log, and terminals over the websocket (output, resize, paste, several
//! tabs, the exit code). Screenshots go under target/tmp/ui_browser/.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::webdriver::{Browser, ENTER, ESCAPE, TAB};

/// A running `den ui --no-open` for a sandbox, and where the page is.
struct Ui {
    url: String,
    port: u16,
    server: Option<Daemon>,
}

impl Ui {
    fn start(sb: &Sandbox) -> Ui {
        let (server, port, url) = start_den_ui(sb);
        Ui { url, port, server: Some(server) }
    }
}

/// Where this test's screenshots go (kept after the run).
fn output_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui_browser").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page at `ui`, its list shown.
fn open_page(sb: &Sandbox, ui: &Ui, width: u32, height: u32) -> Browser {
    let b = Browser::start(sb.path(), width, height);
    b.goto(&ui.url);
    b.wait("the list", "document.querySelector('#conn')?.dataset.conn === 'live'", Duration::from_secs(20));
    b
}

/// The status the page shows for workspace `id` ("" when it has no row).
fn page_status(b: &Browser, id: &str) -> String {
    let js = "const e = document.querySelector(`#workspaces tr[data-id=\"${arguments[0]}\"] [data-status]`); \
              return e ? e.dataset.status : '';";
    b.js(js, json!([id])).as_str().unwrap_or_default().to_string()
}

/// Waits until the page shows `status` for `id`; how long that took.
#[track_caller]
fn wait_status(b: &Browser, id: &str, status: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while page_status(b, id) != status {
        assert!(start.elapsed() < limit, "{id} is not {status} on the page after {limit:?}: {:?}", page_status(b, id));
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn row(id: &str) -> String {
    format!("#workspaces tr[data-id=\"{id}\"]")
}

fn cli_status(sb: &Sandbox, id: &str) -> String {
    run(sb.den().args(["status", id])).stdout.trim().to_string()
}

/// A config serving "hello" over http on `web` (forwarded, labelled).
fn web_config(web: u16) -> String {
    format!(
        r#"{{"image": "den-test/busybox", "forwardPorts": [{web}],
  "portsAttributes": {{"{web}": {{"label": "web"}}}},
  "postStartCommand": "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && (busybox httpd -p {web} -h /tmp/www &)"}}"#
    )
}

const PLAIN: &str = r#"{"image": "den-test/busybox"}"#;

#[test]
fn the_page_lists_the_cli_workspaces_and_follows_them() {
    require_engine();
    let sb = Sandbox::new();
    let web = free_port();
    let a = sb.workspace("web", &web_config(web));
    let b_ws = sb.workspace("plain", PLAIN);
    a.up(&["--ide", "none"]).assert_ok();
    b_ws.up(&["--ide", "none"]).assert_ok();
    let ui = Ui::start(&sb);
    let b = open_page(&sb, &ui, 1280, 800);

    // Both, with their status, source and the forwarded port's link.
    wait_status(&b, &a.id, "Running", Duration::from_secs(10));
    wait_status(&b, &b_ws.id, "Running", Duration::from_secs(10));
    let source = b.text(&format!("{} td[data-col=source]", row(&a.id)));
    assert!(source.contains(a.folder.to_str().unwrap()), "{source}");
    let link = format!("{} a[data-port=\"{web}\"]", row(&a.id));
    let (href, _) = b.wait("the port link", &format!("{}?.href", sel(&link)), Duration::from_secs(10));
    assert_eq!(href, json!(format!("http://127.0.0.1:{web}/")));
    b.screenshot(&output_dir("list").join("list.png"));

    // A phone-width window: the rows become cards that fit, nothing scrolls sideways.
    b.set_window(390, 844);
    let fits = "const w = document.querySelector('.table-wrap'); \
                return [w.scrollWidth <= w.clientWidth, document.documentElement.scrollWidth <= innerWidth];";
    b.wait("the narrow layout", "innerWidth <= 400", Duration::from_secs(5));
    assert_eq!(b.js(fits, json!([])), json!([true, true]));
    b.screenshot(&output_dir("list").join("list-390.png"));
    b.set_window(1280, 800);

    // The link answers: clicked, it opens in a new tab that shows the server's page.
    b.click(&link);
    let text = b.in_new_window(|| b.wait("the port's page", "document.body?.innerText", Duration::from_secs(10)).0);
    assert_eq!(text.as_str().map(str::trim), Some("hello"));

    // Stop from the page: the engine and the CLI agree.
    b.click(&format!("{} button[data-action=stop]", row(&b_ws.id)));
    wait_status(&b, &b_ws.id, "Stopped", Duration::from_secs(60));
    assert_eq!(container_running(&b_ws.container()), Some(false), "the engine still runs it");
    assert_eq!(cli_status(&sb, &b_ws.id), "Stopped");
    b.wait("the stop's result", "document.querySelector('#ops li[data-state=ok]')", Duration::from_secs(10));

    // A `den up` in a shell shows on the page without a reload.
    b.js("window.__same_page = true; return null;", json!([]));
    b_ws.up(&["--ide", "none"]).assert_ok();
    let took = wait_status(&b, &b_ws.id, "Running", Duration::from_secs(10));
    eprintln!("ui_browser: `den up` in a shell showed on the page {} ms after it returned", took.as_millis());
    assert_eq!(b.js("return window.__same_page === true;", json!([])), json!(true), "the page reloaded");

    // The agent log streams.
    b.click(&format!("{} button[data-action=log]", row(&a.id)));
    b.wait("the agent log", "document.querySelector('#log').textContent.trim().length > 0", Duration::from_secs(10));
}

/// A JS expression for the first element `css` selects (or null).
fn sel(css: &str) -> String {
    format!("document.querySelector({})", json!(css))
}

/// Types `line` and Enter into terminal tab `n`.
fn type_line(b: &Browser, n: u32, line: &str) {
    b.type_into(&format!(".term-pane[data-term=\"{n}\"] textarea"), &format!("{line}{ENTER}"));
}

#[track_caller]
fn wait_screen(b: &Browser, n: u32, what: &str) {
    let rows = sel(&format!(".term-pane[data-term=\"{n}\"] .xterm-rows"));
    let js = format!("({rows}?.innerText || '').replace(/\\u00a0/g, ' ').includes({})", json!(what));
    b.wait(&format!("{what:?} in terminal {n}"), &js, Duration::from_secs(20));
}

/// Pastes `text` into terminal tab `n` as a clipboard paste would.
fn paste(b: &Browser, n: u32, text: &str) {
    let js = "const dt = new DataTransfer(); dt.setData('text/plain', arguments[1]); \
              const t = document.querySelector(`.term-pane[data-term=\"${arguments[0]}\"] textarea`); \
              t.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); \
              return null;";
    b.js(js, json!([n, text]));
}

#[test]
fn the_terminal_runs_commands_resizes_pastes_and_shows_the_exit_code() {
    require_engine();
    let sb = Sandbox::new();
    let ws = sb.workspace("term", PLAIN);
    ws.up(&["--ide", "none"]).assert_ok();
    let ui = Ui::start(&sb);
    let b = open_page(&sb, &ui, 1280, 800);
    wait_status(&b, &ws.id, "Running", Duration::from_secs(10));

    b.click(&format!("{} button[data-action=terminal]", row(&ws.id)));
    b.wait("a terminal tab", &sel(&format!(".term-tab[data-id=\"{}\"]", ws.id)), Duration::from_secs(5));
    type_line(&b, 1, "echo hi-$((6*7))");
    wait_screen(&b, 1, "hi-42");
    // xterm.js's own styles (font, theme colours) apply under the page's CSP.
    let look = format!("const s = getComputedStyle({}); return [s.color, s.fontFamily];", sel(".xterm-rows"));
    let look = b.js(&look, json!([]));
    assert_eq!(look[0], json!("rgb(230, 225, 207)"), "{look}");
    assert!(look[1].as_str().unwrap().contains("DejaVu Sans Mono"), "{look}");

    // A pasted line runs like a typed one.
    paste(&b, 1, "echo pas''ted-$((2+3))\r");
    wait_screen(&b, 1, "pasted-5");

    // A smaller window: the terminal fits it and the shell learns the size.
    let pane = sel(".term-pane[data-term=\"1\"]");
    let before = b.js(&format!("return {pane}.dataset.cols;"), json!([]));
    b.set_window(900, 700);
    let narrower = format!("{pane}.dataset.cols !== {before}");
    b.wait("the terminal to fit the smaller window", &narrower, Duration::from_secs(5));
    let size = b.js(
        "const p = document.querySelector('.term-pane[data-term=\"1\"]'); return `${p.dataset.rows} ${p.dataset.cols}`;",
        json!([]),
    );
    type_line(&b, 1, "stty size | sed 's/^/size:/'");
    wait_screen(&b, 1, &format!("size:{}", size.as_str().unwrap()));
    b.set_window(1280, 800);
    b.js(&format!("{}.scrollIntoView(); return null;", sel("#terminals-section")), json!([]));
    b.screenshot(&output_dir("terminal").join("terminal.png"));

    // A second tab; its shell ends with exit 3, and the first one still runs.
    b.click(&format!("{} button[data-action=terminal]", row(&ws.id)));
    type_line(&b, 2, "exit 3");
    let exit = format!("{}?.dataset.exit", sel(".term-tab[data-term=\"2\"]"));
    let (code, _) = b.wait("the exit code", &exit, Duration::from_secs(10));
    assert_eq!(code, json!("3"));
    assert!(b.text(".term-pane[data-term=\"2\"] .term-status").contains("exit code 3"));
    b.click(".term-tab[data-term=\"1\"] .term-label");
    type_line(&b, 1, "echo still-$((40+2))");
    wait_screen(&b, 1, "still-42");
}

/// A bare repository `repo.git` under `root` whose main branch holds a
/// busybox devcontainer.json, served by a real git daemon on 127.0.0.1.
fn served_repo(root: &Path) -> (Daemon, u16) {
    std::fs::create_dir_all(root).unwrap();
    git_in(root, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    git_in(root, &["clone", "-q", "repo.git", "work"]);
    let work = root.join("work");
    std::fs::create_dir_all(work.join(".devcontainer")).unwrap();
    let config = r#"{"image": "den-test/busybox", "postCreateCommand": "echo made-from-git"}"#;
    std::fs::write(work.join(".devcontainer/devcontainer.json"), config).unwrap();
    git_in(&work, &["checkout", "-q", "-b", "main"]);
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-q", "-m", "config"]);
    git_in(&work, &["push", "-q", "origin", "main"]);
    let port = free_port();
    let daemon = Daemon::spawn(
        std::process::Command::new("git")
            .args(["daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_port(port);
    (daemon, port)
}

#[test]
fn the_page_creates_a_workspace_from_a_git_url_and_deletes_it() {
    require_engine();
    let sb = Sandbox::new();
    let (_git, git_port) = served_repo(&sb.path().join("git"));
    let id = unique_id("fromgit");
    let _c = sb.cleanup(&id);
    let ui = Ui::start(&sb);
    let b = open_page(&sb, &ui, 1280, 800);

    let url = format!("git://127.0.0.1:{git_port}/repo.git");
    b.type_into("#create-form input[name=source]", &url);
    b.click("#create-form summary");
    b.type_into("#create-form input[name=id]", &id);
    b.js(&format!("{}.value = 'none'; return null;", sel("#create-form select[name=ide]")), json!([]));
    b.click("#create-form button[type=submit]");

    // Its progress streams into the operations panel while it runs.
    let op = "#ops li[data-op]";
    b.wait("the operation", &sel(op), Duration::from_secs(10));
    let (state, _) = b.wait(
        "the operation to end",
        &format!("{0}.dataset.state !== 'running' && {0}.dataset.state", sel(op)),
        Duration::from_secs(180),
    );
    let lines = b.text(&format!("{op} .lines"));
    assert_eq!(state, json!("ok"), "the up failed: {}", b.text(op));
    assert!(lines.contains("made-from-git"), "no hook output among the progress lines:\n{lines}");
    wait_status(&b, &id, "Running", Duration::from_secs(10));
    let source = b.text(&format!("{} td[data-col=source]", row(&id)));
    assert!(source.contains(&url), "{source}");
    assert_eq!(cli_status(&sb, &id), "Running");
    assert_eq!(container_running(&container(&id)), Some(true));

    // Delete asks first, from the keyboard too: Tab reaches the button,
    // Enter opens the question, Escape closes it (nothing happens) and
    // gives the focus back.
    let delete = format!("{} button[data-action=delete]", row(&id));
    tab_to(&b, &delete);
    b.press(ENTER);
    b.wait("the confirmation", &format!("{}.open", sel("#confirm-dialog")), Duration::from_secs(5));
    b.press(ESCAPE);
    b.wait("the dialog to close", &format!("!{}.open", sel("#confirm-dialog")), Duration::from_secs(5));
    assert_eq!(b.js(&format!("return document.activeElement === {};", sel(&delete)), json!([])), json!(true));
    assert_eq!(container_running(&container(&id)), Some(true));
    b.click(&delete);
    b.click("#confirm-ok");
    let gone = format!("!{}", sel(&row(&id)));
    b.wait("the row to go", &gone, Duration::from_secs(60));
    assert_eq!(container_running(&container(&id)), None, "the container is still there");
    assert_eq!(cli_status(&sb, &id), "NotFound");
}

/// Presses Tab from the top of the page until `css` has the focus (bounded).
#[track_caller]
fn tab_to(b: &Browser, css: &str) {
    b.js("document.activeElement?.blur(); window.scrollTo(0, 0); return null;", json!([]));
    let focused = format!("return document.activeElement === {};", sel(css));
    for _ in 0..80 {
        b.press(TAB);
        if b.js(&focused, json!([])) == json!(true) {
            let visible = "const s = getComputedStyle(document.activeElement); return s.outlineStyle !== 'none';";
            assert_eq!(b.js(visible, json!([])), json!(true), "{css} has the focus but no visible outline");
            return;
        }
    }
    panic!("80 presses of Tab never reached {css}");
}

/// Deletes workspace `id` of context `context` when dropped.
struct InContext<'a>(&'a Sandbox, &'static str, String);

impl Drop for InContext<'_> {
    fn drop(&mut self) {
        let _ = self.0.den().args(["--context", self.1, "delete", "--force", &self.2]).output();
    }
}

#[test]
fn the_page_switches_contexts_and_shows_the_clis_errors() {
    require_engine();
    let sb = Sandbox::new();
    run(sb.den().args(["context", "create", "work"])).assert_ok();
    let folder = sb.project("elsewhere", &[(".devcontainer/devcontainer.json", PLAIN)]);
    let id = unique_id("elsewhere");
    let _c = InContext(&sb, "work", id.clone());
    let up = run(sb.den().args(["--context", "work", "up", "--ide", "none", "--id", &id]).arg(&folder));
    up.assert_ok();
    let ui = Ui::start(&sb);
    let b = open_page(&sb, &ui, 1280, 800);

    // The current context (default) has none; the other one has it.
    b.wait("the empty list", &format!("!{}.hidden", sel("#empty")), Duration::from_secs(10));
    assert_eq!(page_status(&b, &id), "");
    b.js(
        &format!("const s = {}; s.value = 'work'; s.dispatchEvent(new Event('change')); return null;", sel("#context")),
        json!([]),
    );
    wait_status(&b, &id, "Running", Duration::from_secs(10));
    assert!(b.js("return location.hash;", json!([])) == json!("#work"));
    // A reload comes back to it.
    b.js("location.reload(); return null;", json!([]));
    wait_status(&b, &id, "Running", Duration::from_secs(10));
    assert_eq!(b.js(&format!("return {}.value;", sel("#context")), json!([])), json!("work"));

    // Open in IDE asks which, with the configured one chosen, and runs.
    b.click(&format!("{} button[data-action=open]", row(&id)));
    b.wait("the IDE question", &format!("{}.open", sel("#open-dialog")), Duration::from_secs(5));
    assert_eq!(b.js(&format!("return {}.value;", sel("#open-ide")), json!([])), json!("none"));
    b.click("#open-ok");
    b.wait("the open to end", &sel("#ops li[data-state=ok]"), Duration::from_secs(30));
    assert!(b.text("#ops li .op-head").contains(&format!("open {id}")), "{}", b.text("#ops"));

    // A failing create shows the CLI's message and exit code, and makes nothing.
    let missing = sb.path().join("no-such-folder");
    b.type_into("#create-form input[name=source]", missing.to_str().unwrap());
    b.click("#create-form button[type=submit]");
    let failed = "#ops li[data-state=failed]";
    b.wait("the failure", &sel(failed), Duration::from_secs(30));
    let cli = run(sb.den().args(["--context", "work", "up", "--ide", "none"]).arg(&missing));
    let message = cli.stderr.lines().find_map(|l| l.strip_prefix("den: ")).expect("the CLI's error line");
    let shown = b.text(&format!("{failed} .result"));
    assert!(shown.contains(message), "the page says {shown:?}, the CLI {:?}", cli.stderr);
    assert!(shown.contains(&format!("(exit {})", cli.code)), "{shown}");
    assert_eq!(b.js("return document.querySelectorAll('#workspaces tbody tr').length;", json!([])), json!(1));

    // den ui ends and another starts on the same port (another token): the
    // page stops retrying and says so.
    let mut ui = ui;
    drop(ui.server.take());
    let port = ui.port.to_string();
    let _again =
        Daemon::spawn(sb.den().args(["ui", "--no-open", "--port", &port]).stdout(Stdio::null()).stderr(Stdio::null()));
    let said = format!("{}.textContent.startsWith('disconnected')", sel("#conn"));
    b.wait("the page to give up", &said, Duration::from_secs(20));
}
