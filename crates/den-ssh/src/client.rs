//! den's own SSH client: a session (shell or command) over any stream, with
//! the local terminal in raw mode, port forwards and agent forwarding.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{self, ChannelOpenHandle, Msg, Session};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::SshError;

/// `[bind:]port:host:hostport`, as for `ssh -L` and `ssh -R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub bind: String,
    pub port: u16,
    pub host: String,
    pub host_port: u16,
}

impl std::str::FromStr for Forward {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not [bind_address:]port:host:hostport");
        let parts: Vec<&str> = s.split(':').collect();
        let (bind, rest) = match parts.len() {
            3 => ("localhost", &parts[..]),
            4 => (parts[0], &parts[1..]),
            _ => return Err(bad()),
        };
        let port = rest[0].parse().map_err(|_| bad())?;
        let host_port = rest[2].parse().map_err(|_| bad())?;
        if rest[1].is_empty() {
            return Err(bad());
        }
        Ok(Forward { bind: bind.to_string(), port, host: rest[1].to_string(), host_port })
    }
}

/// The exit code of a session whose program the server refused (a
/// subsystem it does not serve), as a shell says of a missing command.
pub const REFUSED: i32 = 127;

pub struct Options {
    pub user: String,
    /// `None`: an interactive shell (unless `subsystem`).
    pub command: Option<String>,
    /// A subsystem instead of a command or shell. A server that does not
    /// serve it refuses: the session ends with [`REFUSED`].
    pub subsystem: Option<String>,
    /// Ask for a pseudo-terminal (and put the local one in raw mode).
    pub tty: bool,
    pub env: Vec<(String, String)>,
    pub local_forwards: Vec<Forward>,
    pub remote_forwards: Vec<Forward>,
    /// Forward this ssh-agent socket (`-A`).
    pub agent_socket: Option<PathBuf>,
    /// Tells the user something (a busy port …) without stopping.
    pub note: Arc<dyn Fn(&str) + Send + Sync>,
}

struct Client {
    host_key: PublicKey,
    mismatch: Arc<std::sync::Mutex<Option<String>>>,
    remote_forwards: Vec<Forward>,
    agent_socket: Option<PathBuf>,
}

impl client::Handler for Client {
    type Error = SshError;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let offered = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            _ => return Ok(false),
        };
        if offered.key_data() == self.host_key.key_data() {
            Ok(true)
        } else {
            *self.mismatch.lock().unwrap() = Some(crate::keys::public_openssh(&offered));
            Ok(false)
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        _connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(f) = self.remote_forwards.iter().find(|f| f.port as u32 == connected_port || f.port == 0).cloned()
        else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        crate::pipe::connect_tcp(channel, reply, &f.host, f.host_port).await;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(path) = self.agent_socket.clone() else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        match tokio::net::UnixStream::connect(&path).await {
            Ok(sock) => {
                reply.accept().await;
                tokio::spawn(crate::pipe::pipe(channel, sock));
            }
            Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }
}

/// The local terminal in raw mode until dropped.
pub struct RawTerminal {
    saved: libc::termios,
}

/// The terminal settings to put back if den dies in raw mode (a panic in a
/// release build aborts, so no destructor runs; a signal kills).
static SAVED_TERMIOS: std::sync::Mutex<Option<libc::termios>> = std::sync::Mutex::new(None);

fn restore_saved() {
    if let Ok(saved) = SAVED_TERMIOS.lock() {
        if let Some(t) = saved.as_ref() {
            // SAFETY: restores what tcgetattr gave us.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}

impl RawTerminal {
    /// Raw mode on stdin, when stdin is a terminal. The terminal is restored
    /// when the guard drops, on a panic, and on SIGTERM, SIGHUP or SIGQUIT.
    pub fn enable() -> Option<RawTerminal> {
        // SAFETY: termios calls on fd 0 with a zeroed struct to fill.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            *SAVED_TERMIOS.lock().ok()? = Some(saved);
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_saved();
                previous(info);
            }));
            if tokio::runtime::Handle::try_current().is_ok() {
                for kind in [
                    tokio::signal::unix::SignalKind::terminate(),
                    tokio::signal::unix::SignalKind::hangup(),
                    tokio::signal::unix::SignalKind::quit(),
                ] {
                    if let Ok(mut sig) = tokio::signal::unix::signal(kind) {
                        tokio::spawn(async move {
                            if sig.recv().await.is_some() {
                                restore_saved();
                                // Then the signal does what it would have
                                // done: the process ends by it (its parent
                                // sees 128 + N), as if den had not caught it.
                                let n = kind.as_raw_value();
                                // SAFETY: resetting a disposition and raising
                                // a signal touch no memory of ours.
                                libc::signal(n, libc::SIG_DFL);
                                libc::raise(n);
                            }
                        });
                    }
                }
            }
            Some(RawTerminal { saved })
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores what tcgetattr gave us.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
        if let Ok(mut s) = SAVED_TERMIOS.lock() {
            *s = None;
        }
    }
}

/// The size of the local terminal (cols, rows), or 80x24.
pub fn terminal_size() -> (u32, u32) {
    // SAFETY: TIOCGWINSZ fills a winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        for fd in [1, 0, 2] {
            if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
                return (ws.ws_col as u32, ws.ws_row as u32);
            }
        }
    }
    (80, 24)
}

/// A long-lived connection's messages waiting per channel (each up to a
/// packet, 128 KiB): few, so that many idle forwards stay small.
const FORWARDER_CHANNEL_BUFFER: usize = 16;
/// Bytes of one forwarded connection waiting for its local reader.
const FORWARD_QUEUE: usize = 4 * 1024 * 1024;

/// How a connection is set up for its use: a session or a forwarder.
struct Tuning {
    channel_buffer_size: usize,
    keepalive: bool,
}

/// An authenticated connection, for channels of the caller's choosing
/// (den's port forwarder).
pub struct Connection {
    handle: Arc<client::Handle<Client>>,
}

impl Connection {
    /// Connects over `stream` as `user`, checking the server's key.
    pub async fn open<S>(stream: S, key: PrivateKey, host_key: PublicKey, user: &str) -> Result<Connection, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let tuning = Tuning { channel_buffer_size: FORWARDER_CHANNEL_BUFFER, keepalive: true };
        Connection::open_with(stream, key, host_key, user, (vec![], None), tuning).await
    }

    async fn open_with<S>(
        stream: S,
        key: PrivateKey,
        host_key: PublicKey,
        user: &str,
        (remote_forwards, agent_socket): (Vec<Forward>, Option<PathBuf>),
        Tuning { channel_buffer_size, keepalive }: Tuning,
    ) -> Result<Connection, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = client::Config {
            window_size: 8 * 1024 * 1024,
            // den's own agent takes big packets: fewer of them per byte.
            maximum_packet_size: 128 * 1024,
            channel_buffer_size,
            inactivity_timeout: None,
            // A long-lived connection finds out that a half-open tunnel (a
            // machine that slept) is gone.
            keepalive_interval: keepalive.then(|| std::time::Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            preferred: crate::preferred(),
            ..Default::default()
        };
        let mismatch = Arc::new(std::sync::Mutex::new(None));
        let handler = Client { host_key, mismatch: mismatch.clone(), remote_forwards, agent_socket };
        let mut handle =
            match client::connect_stream(Arc::new(config), crate::transport::unblocked(stream), handler).await {
                Ok(h) => h,
                Err(e) => {
                    if let Some(k) = mismatch.lock().unwrap().take() {
                        return Err(SshError::HostKeyMismatch(k));
                    }
                    return Err(e);
                }
            };
        let auth = handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None)).await?;
        if !auth.success() {
            return Err(SshError::AuthRefused(user.to_string()));
        }
        Ok(Connection { handle: Arc::new(handle) })
    }

    /// A TCP connection to `host:port` as the workspace sees them, piped
    /// to `tcp` until either side closes.
    pub async fn forward(&self, tcp: tokio::net::TcpStream, host: &str, port: u16) -> Result<(), SshError> {
        let peer = tcp.peer_addr().ok();
        let ch = self
            .handle
            .channel_open_direct_tcpip(
                host.to_string(),
                port as u32,
                peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "127.0.0.1".into()),
                peer.map(|p| p.port() as u32).unwrap_or(0),
            )
            .await?;
        let _ = tcp.set_nodelay(true);
        crate::pipe::pipe_bounded(ch, tcp, FORWARD_QUEUE).await;
        Ok(())
    }

    /// The output of the named subsystem, as lines, until it ends.
    pub async fn subsystem_lines(&self, name: &str) -> Result<tokio::sync::mpsc::UnboundedReceiver<String>, SshError> {
        let ch = self.handle.channel_open_session().await?;
        ch.request_subsystem(true, name).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut ch = ch;
        tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        pending.extend_from_slice(&data);
                        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            if tx.send(String::from_utf8_lossy(&line[..i]).into_owned()).is_err() {
                                return;
                            }
                        }
                    }
                    ChannelMsg::Close | ChannelMsg::Eof => break,
                    _ => {}
                }
            }
        });
        Ok(rx)
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// Where a session's input comes from and its output goes: the process's
/// own stdio ([`Io::process`]) or the caller's. Output is written by a
/// thread of its own, so that decrypting the next packets overlaps with
/// writing the last ones: the writers are plain (blocking) ones.
pub struct Io {
    pub stdin: Box<dyn AsyncRead + Send + Unpin>,
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

impl Io {
    /// This process's stdin, stdout and stderr.
    pub fn process() -> Io {
        Io { stdin: Box::new(tokio::io::stdin()), stdout: Box::new(Fd1), stderr: Box::new(std::io::stderr()) }
    }
}

/// fd 1 written directly: std's Stdout is line-buffered and scans every
/// chunk for newlines, which showed in profiles of bulk output.
struct Fd1;

impl Write for Fd1 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::FromRawFd;
        // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop
        // keeps this File from closing it.
        let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
        f.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An authenticated connection on which one session is to run.
pub struct Connected {
    conn: Connection,
}

/// Connects over `stream` for one session, checking the server's key;
/// nothing of the session's input is read yet (a caller may try again on
/// another stream with the same input).
pub async fn connect<S>(stream: S, key: PrivateKey, host_key: PublicKey, opts: &Options) -> Result<Connected, SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Connection::open_with(
        stream,
        key,
        host_key,
        &opts.user,
        (opts.remote_forwards.clone(), opts.agent_socket.clone()),
        Tuning { channel_buffer_size: 256, keepalive: false },
    )
    .await?;
    Ok(Connected { conn })
}

/// Runs one session over `stream` on this process's stdio; returns the
/// remote exit code (128+n for a signal, like a shell), or `None` when the
/// connection ended before the remote program did (the far end went away).
pub async fn run<S>(stream: S, key: PrivateKey, host_key: PublicKey, opts: Options) -> Result<Option<i32>, SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    run_with(stream, key, host_key, opts, Io::process()).await
}

/// [`run`] with the caller's input and output.
pub async fn run_with<S>(
    stream: S,
    key: PrivateKey,
    host_key: PublicKey,
    opts: Options,
    io: Io,
) -> Result<Option<i32>, SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connect(stream, key, host_key, &opts).await?.run(opts, io).await
}

/// Where a session's pseudo-terminal gets its type and size.
pub enum Window {
    /// This process's terminal: its size, `$TERM`, and each SIGWINCH.
    Local,
    /// The caller's (a terminal in a web page): a type, the first size
    /// (columns, rows), then each new size. Its input ending hangs up.
    Fed { term: String, size: (u32, u32), changes: tokio::sync::mpsc::UnboundedReceiver<(u32, u32)> },
}

impl Connected {
    /// The session: forwards, then the shell or command with `io`, until
    /// it ends. Returns as [`run`] does.
    pub async fn run(self, opts: Options, io: Io) -> Result<Option<i32>, SshError> {
        self.run_in(opts, io, Window::Local).await
    }

    /// [`Connected::run`], the pseudo-terminal (when `opts.tty`) sized by
    /// `window`.
    pub async fn run_in(self, opts: Options, io: Io, window: Window) -> Result<Option<i32>, SshError> {
        let handle = self.conn.handle.clone();
        forward_ports(Arc::new(self.conn), &handle, &opts).await;
        let ch = handle.channel_open_session().await?;
        if opts.agent_socket.is_some() {
            ch.agent_forward(false).await?;
        }
        for (k, v) in &opts.env {
            ch.set_env(false, k.clone(), v.clone()).await?;
        }
        let mut changes = None;
        if opts.tty {
            let (term, (cols, rows)) = match window {
                Window::Local => (std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()), terminal_size()),
                Window::Fed { term, size, changes: c } => {
                    changes = Some(c);
                    (term, size)
                }
            };
            ch.request_pty(false, &term, cols, rows, 0, 0, &[]).await?;
        }
        match (&opts.subsystem, &opts.command) {
            (Some(s), _) => ch.request_subsystem(true, s.clone()).await?,
            (None, Some(c)) => ch.exec(true, c.as_bytes().to_vec()).await?,
            (None, None) => ch.request_shell(true).await?,
        }
        let (rx, tx) = ch.split();
        let tx = Arc::new(tx);
        // A caller's terminal that goes away hangs up, as a closed
        // terminal window does; a local stdin that ends is an end of file.
        tokio::spawn(pump_input(io.stdin, tx.clone(), changes.is_some()));
        match changes {
            Some(c) => drop(tokio::spawn(feed_window(c, tx.clone()))),
            None if opts.tty => drop(tokio::spawn(follow_window(tx.clone()))),
            None => {}
        }
        let code = pump_output(rx, io.stdout, io.stderr).await;
        let _ = handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        // `None`: the connection ended before the remote program did.
        Ok(code)
    }
}

/// Listens for the local forwards and asks for the remote ones; a port
/// that cannot be had is said, not fatal.
async fn forward_ports(conn: Arc<Connection>, handle: &client::Handle<Client>, opts: &Options) {
    for f in &opts.local_forwards {
        let listener = match tokio::net::TcpListener::bind((bind_addr(&f.bind), f.port)).await {
            Ok(l) => l,
            Err(e) => {
                (opts.note)(&format!("cannot forward local port {}: {e}", f.port));
                continue;
            }
        };
        let (conn, f) = (conn.clone(), f.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (conn, f) = (conn.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = conn.forward(tcp, &f.host, f.host_port).await;
                });
            }
        });
    }
    for f in &opts.remote_forwards {
        if let Err(e) = handle.tcpip_forward(f.bind.clone(), f.port as u32).await {
            (opts.note)(&format!("the workspace refused to forward its port {}: {e}", f.port));
        }
    }
}

/// The session's input → the channel, then end of file (or, with
/// `hangup`, the channel's close).
async fn pump_input(mut input: Box<dyn AsyncRead + Send + Unpin>, tx: Arc<russh::ChannelWriteHalf<Msg>>, hangup: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = if hangup { tx.close().await } else { tx.eof().await };
                break;
            }
            Ok(n) => {
                if tx.data_bytes(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// The local terminal's size changes → the remote pseudo-terminal.
async fn follow_window(tx: Arc<russh::ChannelWriteHalf<Msg>>) {
    let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
        return;
    };
    while sig.recv().await.is_some() {
        let (c, r) = terminal_size();
        let _ = tx.window_change(c, r, 0, 0).await;
    }
}

/// The caller's sizes → the remote pseudo-terminal.
async fn feed_window(
    mut changes: tokio::sync::mpsc::UnboundedReceiver<(u32, u32)>,
    tx: Arc<russh::ChannelWriteHalf<Msg>>,
) {
    while let Some((c, r)) = changes.recv().await {
        let _ = tx.window_change(c, r, 0, 0).await;
    }
}

/// The channel's output → `stdout` and `stderr` (written by a thread of
/// their own), until it closes; the remote exit code, if it said one.
async fn pump_output(
    mut rx: russh::ChannelReadHalf,
    mut stdout: Box<dyn Write + Send>,
    mut stderr: Box<dyn Write + Send>,
) -> Option<i32> {
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<(bool, bytes::Bytes)>(64);
    let writer = std::thread::spawn(move || {
        for (is_err, data) in out_rx {
            let r = if is_err {
                stderr.write_all(&data).and_then(|_| stderr.flush())
            } else {
                stdout.write_all(&data).and_then(|_| stdout.flush())
            };
            if r.is_err() && !is_err {
                return false;
            }
        }
        true
    });
    let mut code = None;
    while let Some(msg) = rx.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                // The writer thread is gone only when stdout is closed.
                let Ok(()) = out_tx.send((false, data)) else { break };
            }
            ChannelMsg::ExtendedData { data, .. } => {
                let _ = out_tx.send((true, data));
            }
            ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status as i32),
            ChannelMsg::ExitSignal { signal_name, .. } => code = Some(128 + signal_code(&signal_name)),
            ChannelMsg::Close => break,
            // The program (a subsystem it does not serve) was refused.
            ChannelMsg::Failure => {
                code = Some(REFUSED);
                break;
            }
            _ => {}
        }
    }
    drop(out_tx);
    let _ = writer.join();
    code
}

fn bind_addr(b: &str) -> &str {
    match b {
        "" | "*" => "0.0.0.0",
        "localhost" => "127.0.0.1",
        other => other,
    }
}

fn signal_code(s: &russh::Sig) -> i32 {
    use russh::Sig::*;
    match s {
        ABRT => 6,
        ALRM => 14,
        FPE => 8,
        HUP => 1,
        ILL => 4,
        INT => 2,
        KILL => 9,
        PIPE => 13,
        QUIT => 3,
        SEGV => 11,
        TERM => 15,
        USR1 => 10,
        Custom(_) => 15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs() {
        let f: Forward = "8080:localhost:80".parse().unwrap();
        assert_eq!(f, Forward { bind: "localhost".into(), port: 8080, host: "localhost".into(), host_port: 80 });
        let f: Forward = "0.0.0.0:9000:db:5432".parse().unwrap();
        assert_eq!((f.bind.as_str(), f.port, f.host.as_str(), f.host_port), ("0.0.0.0", 9000, "db", 5432));
        assert!("80".parse::<Forward>().is_err());
        assert!("x:y:z".parse::<Forward>().is_err());
        assert!("1:2:3:4:5".parse::<Forward>().is_err());
    }
}
