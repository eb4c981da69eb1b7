//! The forwarder process: `den forward-daemon ID`.
//!
//! It binds its listeners first (so they exist before `up` returns), then
//! connects through the workspace's tunnel and keeps connecting again when
//! the tunnel drops (a restarted container, a machine that slept). Over the
//! connection it asks the agent's `den-ports` subsystem which ports are
//! listening and follows the answers. It ends on `Quit` (`den stop`,
//! `den delete`), when the workspace's record is gone, or when the
//! workspace has not been running for a while.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use den_devcontainer::model::{OnAutoForward, PortAttributes, PortProtocol};
use den_protocol::ListeningPort;
use den_ssh::client::Connection;
use den_workspace::ssh::{Target, Way};
use den_workspace::{Den, WorkspaceRecord};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use crate::rules::{self, Attributes, Origin, Wanted};
use crate::{paths, PortView, Reply, Request};

/// How long a workspace may be seen not running before the forwarder
/// gives up (a `docker restart` takes seconds).
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// How long a connection to a forwarded port waits for the tunnel to come
/// back before it is closed.
const WAIT_FOR_TUNNEL: Duration = Duration::from_secs(15);

type Conn = watch::Receiver<Option<Arc<Connection>>>;

struct Forward {
    want: Wanted,
    local: Option<u16>,
    label: String,
    process: String,
    note: String,
    task: Option<tokio::task::AbortHandle>,
}

impl Forward {
    fn view(&self, address: &str) -> PortView {
        PortView {
            port: self.want.port,
            host: self.want.host.clone(),
            local: self.local.map(|l| format!("{address}:{l}")).unwrap_or_default(),
            label: self.label.clone(),
            origin: self.want.origin.as_str().into(),
            process: self.process.clone(),
            note: self.note.clone(),
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

struct State {
    forwards: Vec<Forward>,
    /// Ports the user stopped with `den forward --stop`: not forwarded
    /// again when found listening.
    stopped: HashSet<u16>,
    /// `openBrowserOnce` ports already opened.
    opened: HashSet<u16>,
    attributes: Attributes,
    other: Option<PortAttributes>,
    /// The workspace runs on this machine's engine (which publishes
    /// `appPort` itself).
    local_engine: bool,
    address: String,
    connected: bool,
    conn: Conn,
}

type Shared = Arc<Mutex<State>>;

fn log(text: &str) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    eprintln!("[{secs}] {text}");
}

/// Runs the forwarder of `id`; returns the process's exit code.
pub fn run(den: &Den, id: &str) -> i32 {
    let p = paths(den, id);
    let _lock = match den_state::Lock::try_acquire(&p.lock) {
        Ok(Some(l)) => l,
        Ok(None) => {
            log("another forwarder runs for this workspace");
            return 0;
        }
        Err(e) => {
            log(&format!("error: {e}"));
            return 1;
        }
    };
    let _ = std::fs::write(&p.pid, std::process::id().to_string());
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            log(&format!("error: {e}"));
            return 1;
        }
    };
    let code = rt.block_on(main(den, id));
    let _ = std::fs::remove_file(&p.socket);
    let _ = std::fs::remove_file(&p.pid);
    code
}

async fn main(den: &Den, id: &str) -> i32 {
    let p = paths(den, id);
    let Some(record) = WorkspaceRecord::load(den, id).ok().flatten() else {
        log("the workspace is gone");
        return 0;
    };
    let address = den_workspace::context::options(den, &den.context)
        .ok()
        .and_then(|o| o.get("PORTS_ADDRESS").cloned())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    let local_engine = den_workspace::ssh::target(den, id).is_ok_and(|t| t.via.publishes_app_port());
    let (conn_tx, conn_rx) = watch::channel::<Option<Arc<Connection>>>(None);
    let state: Shared = Arc::new(Mutex::new(State {
        forwards: vec![],
        stopped: HashSet::new(),
        opened: HashSet::new(),
        attributes: Default::default(),
        other: None,
        local_engine,
        address,
        connected: false,
        conn: conn_rx,
    }));
    configure(&state, &record);

    if let Err(e) = crate::private_tmp(&p.socket) {
        log(&format!("error: the control socket's folder: {e}"));
        return 1;
    }
    let _ = std::fs::remove_file(&p.socket);
    // SAFETY: umask(2) has no preconditions; the socket is made 0600.
    let old_mask = unsafe { libc::umask(0o177) };
    let bound = tokio::net::UnixListener::bind(&p.socket);
    // SAFETY: as above, putting the mask back.
    unsafe { libc::umask(old_mask) };
    let control = match bound {
        Ok(l) => l,
        Err(e) => {
            log(&format!("error: the control socket {}: {e}", p.socket.display()));
            return 1;
        }
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&p.socket, std::fs::Permissions::from_mode(0o600));
    }
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let (reload_tx, mut reload_rx) = watch::channel(0u64);
    {
        let (state, den, id) = (state.clone(), den.clone(), id.to_string());
        tokio::spawn(async move {
            loop {
                let conn = match control.accept().await {
                    Ok((c, _)) => c,
                    Err(e) => {
                        // Out of descriptors, most likely: later, again.
                        log(&format!("the control socket: {e}"));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let (state, den, id, quit, reload) =
                    (state.clone(), den.clone(), id.clone(), quit_tx.clone(), reload_tx.clone());
                tokio::spawn(async move { answer(conn, &state, &den, &id, &quit, &reload).await });
            }
        });
    }

    let mut backoff = Duration::from_millis(200);
    let mut down_since: Option<Instant> = None;
    let mut last_error = String::new();
    loop {
        if *quit_rx.borrow() {
            break;
        }
        if !matches!(WorkspaceRecord::load(den, id), Ok(Some(_))) {
            log("the workspace was deleted");
            break;
        }
        match connect(den, id).await {
            Ok((conn, mut tunnel, ports)) => {
                log("connected");
                last_error.clear();
                backoff = Duration::from_millis(200);
                down_since = None;
                let conn = Arc::new(conn);
                let _ = conn_tx.send(Some(conn.clone()));
                state.lock().expect("not poisoned").connected = true;
                let mut ports = ports;
                loop {
                    tokio::select! {
                        line = async { match ports.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                            match line.map(|l| serde_json::from_str::<Vec<ListeningPort>>(&l)) {
                                Some(Ok(found)) => follow(&state, &found),
                                Some(Err(e)) => log(&format!("the agent said something unexpected: {e}")),
                                // The subsystem ended: the connection follows.
                                None => ports = None,
                            }
                        }
                        _ = ended(&mut tunnel, &conn) => break,
                        _ = quit_rx.changed() => break,
                        _ = reload_rx.changed() => {}
                    }
                }
                let _ = conn_tx.send(None);
                disconnected(&state);
                if let Some(t) = tunnel.as_mut() {
                    let _ = t.start_kill();
                }
                if *quit_rx.borrow() {
                    break;
                }
                log("the connection ended; connecting again");
            }
            Err(e) => {
                if e != last_error {
                    log(&format!("cannot connect: {e}"));
                    last_error = e;
                }
                let running = match den_workspace::ssh::target(den, id) {
                    Ok(t) => den_workspace::ssh::is_running(den, &t).unwrap_or(false),
                    Err(_) => false,
                };
                if running {
                    down_since = None;
                } else {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= GIVE_UP_AFTER {
                        log("the workspace is not running; stopping");
                        break;
                    }
                }
            }
        }
        let quit = tokio::select! {
            _ = tokio::time::sleep(backoff) => false,
            r = quit_rx.changed() => r.is_err() || *quit_rx.borrow(),
            _ = reload_rx.changed() => false,
        };
        if quit {
            break;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    state.lock().expect("not poisoned").forwards.clear();
    log("stopped");
    0
}

/// When the connection is over: its tunnel ended, or (on the direct line)
/// the connection closed.
async fn ended(tunnel: &mut Option<tokio::process::Child>, conn: &Connection) {
    match tunnel {
        Some(t) => {
            let _ = t.wait().await;
        }
        None => {
            while !conn.is_closed() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn direct_stream(s: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    s.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(s)
}

/// A connection through the exec tunnel, and the tunnel's process.
async fn open_tunnel(
    t: &Target,
    tunnel: den_workspace::ssh::Cmd,
) -> Result<(Connection, tokio::process::Child), String> {
    let den_ssh::tunnel::Tunnel { mut child, stream, stderr } =
        den_ssh::tunnel::spawn(tunnel.to_command()).map_err(|e| tunnel.spawn_error(e).to_string())?;
    match tokio::time::timeout(
        Duration::from_secs(60),
        Connection::open(stream, t.key.clone(), t.host_key.clone(), &t.record.remote_user),
    )
    .await
    {
        Ok(Ok(c)) => Ok((c, child)),
        Ok(Err(e)) => {
            let _ = child.start_kill();
            let said = stderr.await.unwrap_or_default();
            let said = said.trim();
            Err(if said.is_empty() { e.to_string() } else { format!("{e}: {said}") })
        }
        Err(_) => Err("the tunnel did not answer within a minute".into()),
    }
}

/// One connection through the workspace's direct line or tunnel: the
/// connection, the tunnel process (none on the direct line), and the
/// agent's port reports (`None`: an agent that does not report).
async fn connect(
    den: &Den,
    id: &str,
) -> Result<(Connection, Option<tokio::process::Child>, Option<tokio::sync::mpsc::UnboundedReceiver<String>>), String> {
    let t = den_workspace::ssh::target(den, id).map_err(|e| e.to_string())?;
    let (conn, child) = match den_workspace::ssh::forwarder_way(&t).map_err(|e| e.to_string())? {
        Way::Direct(stream) => {
            let stream = direct_stream(stream).map_err(|e| e.to_string())?;
            let conn = Connection::open(stream, t.key.clone(), t.host_key.clone(), &t.record.remote_user)
                .await
                .map_err(|e| e.to_string())?;
            log("on the direct line");
            (conn, None)
        }
        Way::Exec(tunnel) => {
            let (conn, child) = open_tunnel(&t, tunnel).await?;
            (conn, Some(child))
        }
    };
    let ports = match conn.subsystem_lines(den_protocol::PORTS_SUBSYSTEM).await {
        Ok(rx) => Some(rx),
        Err(e) => {
            log(&format!("the agent does not report listening ports ({e}); forwarding the configured ones only"));
            None
        }
    };
    Ok((conn, child, ports))
}

/// Sets the configured forwards from the workspace's record: new ones are
/// bound, ones no longer configured go.
fn configure(state: &Shared, rec: &WorkspaceRecord) {
    let mut s = state.lock().expect("not poisoned");
    s.attributes = rec.ports_attributes.clone();
    s.other = rec.other_ports_attributes.clone();
    let wanted = rules::configured(&rec.forward_ports, &rec.app_port, s.local_engine);
    s.forwards.retain(|f| {
        !matches!(f.want.origin, Origin::ForwardPorts | Origin::AppPort) || wanted.iter().any(|w| w == &f.want)
    });
    for w in wanted {
        if s.forwards.iter().any(|f| f.want == w) {
            continue;
        }
        let attrs = rules::attributes(&s.attributes, s.other.as_ref(), w.port, "");
        add(&mut s, w, &attrs, "");
    }
}

/// Binds a local port for `want` and starts serving it.
fn add(s: &mut State, want: Wanted, attrs: &PortAttributes, process: &str) -> usize {
    let require = attrs.require_local_port.unwrap_or(false);
    let bound = RefCell::new(None);
    let address = s.address.clone();
    let picked =
        rules::pick_local(want.local_port, require, &|p| match std::net::TcpListener::bind((address.as_str(), p)) {
            Ok(l) => {
                *bound.borrow_mut() = Some(l);
                true
            }
            Err(_) => false,
        });
    let mut f = Forward {
        label: attrs.label.clone().unwrap_or_default(),
        process: process.to_string(),
        note: String::new(),
        local: None,
        task: None,
        want,
    };
    match (picked, bound.into_inner()) {
        (Ok(local), Some(l)) => {
            if local != f.want.local_port {
                f.note = format!("local port {} is in use: forwarded on {local}", f.want.local_port);
                log(&f.note);
            }
            f.local = Some(local);
            let _ = l.set_nonblocking(true);
            match tokio::net::TcpListener::from_std(l) {
                Ok(listener) => {
                    let (host, port, conn) = (f.want.host.clone(), f.want.port, s.conn.clone());
                    f.task = Some(tokio::spawn(serve(listener, host, port, conn)).abort_handle());
                }
                Err(e) => f.note = format!("cannot listen: {e}"),
            }
        }
        (Err(e), _) => {
            log(&format!("port {}: {e}", f.want.port));
            f.note = e;
        }
        (Ok(_), None) => f.note = "cannot listen".into(),
    }
    s.forwards.push(f);
    s.forwards.len() - 1
}

/// Accepts on `listener` and carries each connection to `host:port` in
/// the workspace (waiting a little for the tunnel when it is down).
async fn serve(listener: tokio::net::TcpListener, host: String, port: u16, conn: Conn) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                log(&format!("port {port}: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (host, mut conn) = (host.clone(), conn.clone());
        tokio::spawn(async move {
            let ready = tokio::time::timeout(WAIT_FOR_TUNNEL, async {
                conn.wait_for(|c| c.is_some()).await.ok().and_then(|c| c.clone())
            })
            .await;
            let Ok(Some(c)) = ready else { return };
            let _ = c.forward(tcp, &host, port).await;
        });
    }
}

/// The connection ended. The processes seen belong to the agent's last
/// run: a restarted workspace reports its own again.
fn disconnected(state: &Shared) {
    let mut s = state.lock().expect("not poisoned");
    s.connected = false;
    s.forwards.iter_mut().for_each(|f| f.process.clear());
}

/// Follows a report of the listening ports: new ones are forwarded (as
/// their attributes say), gone ones that were found this way are dropped.
fn follow(state: &Shared, found: &[ListeningPort]) {
    let mut s = state.lock().expect("not poisoned");
    s.forwards.retain(|f| f.want.origin != Origin::Auto || found.iter().any(|p| p.port == f.want.port));
    // A configured port that nothing listens on any more has no owner.
    for f in s.forwards.iter_mut().filter(|f| !found.iter().any(|p| p.port == f.want.port)) {
        f.process.clear();
    }
    for lp in found {
        let attrs = rules::attributes(&s.attributes, s.other.as_ref(), lp.port, &lp.process);
        if let Some(f) = s
            .forwards
            .iter_mut()
            .find(|f| f.want.port == lp.port && (f.want.host == "localhost" || f.want.origin == Origin::Auto))
        {
            f.process = lp.process.clone();
            if f.label.is_empty() {
                f.label = attrs.label.clone().unwrap_or_default();
            }
            continue;
        }
        if s.stopped.contains(&lp.port) {
            continue;
        }
        let action = rules::on_auto_forward(&attrs);
        if action == OnAutoForward::Ignore {
            continue;
        }
        // A port bound to one address of the workspace's only is reached there.
        let host = match lp.address.as_str() {
            "0.0.0.0" | "::" | "127.0.0.1" | "::1" => "localhost".to_string(),
            a if a.starts_with("127.") => a.to_string(),
            a if a.contains(':') => format!("[{a}]"),
            a => a.to_string(),
        };
        let want = Wanted { host, port: lp.port, local_port: lp.port, origin: Origin::Auto };
        let i = add(&mut s, want, &attrs, &lp.process);
        let address = s.address.clone();
        let f = &s.forwards[i];
        let Some(local) = f.local else {
            log(&format!("port {} is listening but not forwarded: {}", lp.port, f.note));
            continue;
        };
        let label = if f.label.is_empty() { String::new() } else { format!(" ({})", f.label) };
        let scheme = if attrs.protocol == Some(PortProtocol::Https) { "https" } else { "http" };
        let url = format!("{scheme}://{}:{local}", if address == "0.0.0.0" { "127.0.0.1" } else { &address });
        match action {
            OnAutoForward::Silent => {}
            OnAutoForward::OpenBrowser => {
                log(&format!("port {}{label} is forwarded to {url}; opening the browser", lp.port));
                open_browser(&url);
            }
            OnAutoForward::OpenBrowserOnce => {
                let first = s.opened.insert(lp.port);
                log(&format!("port {}{label} is forwarded to {url}", lp.port));
                if first {
                    open_browser(&url);
                }
            }
            _ => log(&format!("port {}{label} is forwarded to {url}", lp.port)),
        }
    }
}

fn open_browser(url: &str) {
    if let Err(e) = den_ide::open_url(url) {
        log(&e.to_string());
    }
}

async fn answer(
    conn: tokio::net::UnixStream,
    state: &Shared,
    den: &Den,
    id: &str,
    quit: &watch::Sender<bool>,
    reload: &watch::Sender<u64>,
) {
    use tokio::io::AsyncWriteExt;
    let (r, mut w) = conn.into_split();
    let mut lines = tokio::io::BufReader::new(r).lines();
    let Ok(Some(line)) = lines.next_line().await else { return };
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply { error: format!("bad request: {e}"), ..Default::default() },
        Ok(req) => handle(req, state, den, id, quit, reload),
    };
    let mut text = serde_json::to_string(&reply).expect("serialises");
    text.push('\n');
    let _ = w.write_all(text.as_bytes()).await;
}

fn handle(
    req: Request,
    state: &Shared,
    den: &Den,
    id: &str,
    quit: &watch::Sender<bool>,
    reload: &watch::Sender<u64>,
) -> Reply {
    match req {
        Request::List => {}
        Request::Quit => {
            let _ = quit.send(true);
        }
        Request::Reload => {
            if let Ok(Some(rec)) = WorkspaceRecord::load(den, id) {
                configure(state, &rec);
            }
            // Connect now, not after the back-off.
            reload.send_modify(|n| *n += 1);
        }
        Request::Add { host, port, local_port } => {
            let mut s = state.lock().expect("not poisoned");
            s.stopped.remove(&port);
            if let Some(f) = s.forwards.iter().find(|f| f.want.port == port && f.want.host == host) {
                return Reply {
                    error: format!("port {port} is forwarded already, on {}", f.view(&s.address).local),
                    ..Default::default()
                };
            }
            let attrs = rules::attributes(&s.attributes, s.other.as_ref(), port, "");
            let mut attrs = attrs;
            if local_port.is_some() {
                // A port the user names is that port or nothing.
                attrs.require_local_port = Some(true);
            }
            let want = Wanted { host, port, local_port: local_port.unwrap_or(port), origin: Origin::Manual };
            let i = add(&mut s, want, &attrs, "");
            if s.forwards[i].local.is_none() {
                let note = s.forwards[i].note.clone();
                s.forwards.remove(i);
                return Reply { error: note, ..Default::default() };
            }
        }
        Request::Stop { port } => {
            let mut s = state.lock().expect("not poisoned");
            // The workspace's port, else a local one.
            let remote = match s
                .forwards
                .iter()
                .find(|f| f.want.port == port)
                .or_else(|| s.forwards.iter().find(|f| f.local == Some(port)))
            {
                Some(f) => f.want.port,
                None => return Reply { error: format!("port {port} is not forwarded"), ..Default::default() },
            };
            s.forwards.retain(|f| f.want.port != remote);
            s.stopped.insert(remote);
        }
    }
    let s = state.lock().expect("not poisoned");
    Reply {
        ok: true,
        error: String::new(),
        connected: s.connected,
        ports: s.forwards.iter().map(|f| f.view(&s.address)).collect(),
    }
}
