//! The SSH server the agent runs on the tunnel's stdio: one connection per
//! process, public-key auth, sessions as the requested user.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Mutex};

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Handle, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::pipe::Control;
use crate::SshError;

/// A user sessions can run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
    pub shell: String,
}

pub type AccountLookup = dyn Fn(&str) -> Option<Account> + Send + Sync;

pub struct Settings {
    pub host_key: PrivateKey,
    /// The client keys that may log in.
    pub authorized: Vec<PublicKey>,
    pub accounts: Box<AccountLookup>,
    /// The environment every session starts from (the workspace's).
    pub env: Vec<(String, String)>,
    /// Where sessions start.
    pub workdir: String,
    /// The programs that serve subsystems (`sftp`, …) on their stdio, run
    /// as the session's user.
    pub subsystems: Vec<(String, Vec<String>)>,
    /// Subsystems served in this process, before `subsystems`: each request
    /// runs the function on a thread of its own with the channel's input
    /// and output. Its input ending means the client is gone; it must
    /// return then.
    pub services: Vec<(String, Service)>,
    /// Told what the connection does (see [`Event`]).
    pub events: Arc<dyn Fn(Event) + Send + Sync>,
}

/// A subsystem served in the server's process (see [`Settings::services`]).
pub type Service = Arc<dyn Fn(std::io::PipeReader, std::io::PipeWriter) + Send + Sync>;

/// A session's starting folder, asked for by the client as an environment
/// variable: a server that serves many connections has no command line per
/// connection (`--workdir`). It is not passed on to the program.
pub const WORKDIR_ENV: &str = "DEN_WORKDIR";

/// What a connection did, for the server's owner (activity, roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A subsystem started.
    Subsystem(String),
    /// A forwarded TCP connection (`direct-tcpip`) opened.
    ForwardOpened,
    /// … and closed.
    ForwardClosed,
}

impl Settings {
    fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    fn subsystem(&self, name: &str) -> Option<&Vec<String>> {
        self.subsystems.iter().find(|(n, argv)| n == name && !argv.is_empty()).map(|(_, argv)| argv)
    }
}

/// Any byte stream the server can run on.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Serves one SSH connection on `stream` until the client goes away.
pub async fn serve<S>(stream: S, settings: Settings) -> Result<(), SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = russh::server::Config {
        keys: vec![settings.host_key.clone()],
        // The tunnel is private to one client: no need to slow failures down.
        auth_rejection_time: std::time::Duration::from_millis(0),
        auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
        inactivity_timeout: None,
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 128 * 1024,
        channel_buffer_size: 256,
        nodelay: true,
        preferred: crate::preferred(),
        ..Default::default()
    };
    let handler = Server { settings: Arc::new(settings), user: None, forwards: Arc::new(Mutex::new(HashMap::new())) };
    // Writes go straight to the stream here: the peer (den's client, or
    // OpenSSH) never stops reading while it writes, so a full pipe drains.
    let session = russh::server::run_stream(Arc::new(config), stream, handler).await?;
    session.await?;
    Ok(())
}

/// Remote forwards (`ssh -R`) by bind address and port: their accept loops.
type Forwards = HashMap<(String, u32), tokio::task::JoinHandle<()>>;

struct Server {
    settings: Arc<Settings>,
    user: Option<Account>,
    forwards: Arc<Mutex<Forwards>>,
}

impl russh::server::Handler for Server {
    type Error = SshError;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        key: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if self.settings.authorized.iter().any(|k| k.key_data() == key.public_key.key_data())
                && (self.settings.accounts)(user).is_some()
            {
                Auth::Accept
            } else {
                Auth::reject()
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.settings.authorized.iter().any(|k| k.key_data() == key.public_key.key_data()) {
            return Ok(Auth::reject());
        }
        match (self.settings.accounts)(user) {
            Some(a) => {
                self.user = Some(a);
                Ok(Auth::Accept)
            }
            None => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(user) = self.user.clone() else {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        reply.accept().await;
        let (settings, handle) = (self.settings.clone(), session.handle());
        tokio::spawn(async move {
            if let Err(e) = SessionChannel::new(settings, user, handle).run(channel).await {
                tracing::debug!("session ended with an error: {e}");
            }
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port) else {
            reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                reply.accept().await;
                let events = self.settings.events.clone();
                tokio::spawn(async move {
                    events(Event::ForwardOpened);
                    crate::pipe::pipe(channel, tcp).await;
                    events(Event::ForwardClosed);
                });
            }
            Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let bind = match address {
            "" | "*" | "0.0.0.0" => "0.0.0.0",
            "localhost" => "127.0.0.1",
            a => a,
        };
        let Ok(want) = u16::try_from(*port) else { return Ok(false) };
        let listener = match tokio::net::TcpListener::bind((bind, want)).await {
            Ok(l) => l,
            Err(_) => return Ok(false),
        };
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(want);
        *port = bound as u32;
        let handle = session.handle();
        let addr = address.to_string();
        let task = tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (handle, addr) = (handle.clone(), addr.clone());
                tokio::spawn(async move {
                    let ch = handle
                        .channel_open_forwarded_tcpip(addr, bound as u32, peer.ip().to_string(), peer.port() as u32)
                        .await;
                    if let Ok(ch) = ch {
                        let _ = tcp.set_nodelay(true);
                        crate::pipe::pipe(ch, tcp).await;
                    }
                });
            }
        });
        self.forwards.lock().unwrap().insert((address.to_string(), bound as u32), task);
        Ok(true)
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _: &mut Session) -> Result<bool, Self::Error> {
        Ok(match self.forwards.lock().unwrap().remove(&(address.to_string(), port)) {
            Some(t) => {
                t.abort();
                true
            }
            None => false,
        })
    }

    // The session task does the work; these only answer the requests.
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(session.channel_success(channel)?)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(session.channel_success(channel)?)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        Ok(session.channel_success(channel)?)
    }

    async fn exec_request(&mut self, channel: ChannelId, _: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        Ok(session.channel_success(channel)?)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.settings.service(name).is_some() || self.settings.subsystem(name).is_some() {
            Ok(session.channel_success(channel)?)
        } else {
            Ok(session.channel_failure(channel)?)
        }
    }

    async fn agent_request(&mut self, _: ChannelId, _: &mut Session) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A subsystem in this process: the channel's data goes to the service's
/// input, its output to the channel, until the service returns (its
/// output closes) or the client closes the channel.
async fn run_service(
    service: Service,
    rx: russh::ChannelReadHalf,
    tx: russh::ChannelWriteHalf<Msg>,
) -> Result<(), SshError> {
    use tokio::io::AsyncReadExt;
    let (in_r, in_w) = std::io::pipe()?;
    let (out_r, out_w) = std::io::pipe()?;
    std::thread::spawn(move || service(in_r, out_w));
    let input = tokio::net::unix::pipe::Sender::from_owned_fd(std::os::fd::OwnedFd::from(in_w))?;
    let mut output = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(out_r))?;
    // The input side ends on the client's EOF or close: the service's
    // input closes then, and it returns.
    let input = tokio::spawn(crate::pipe::drain_into(rx, Some(input), |_| {}));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match output.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.data_bytes(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        }
    }
    input.abort();
    let _ = tx.exit_status(0).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
    Ok(())
}

/// What a session channel asked for before its program starts.
struct SessionChannel {
    settings: Arc<Settings>,
    user: Account,
    handle: Handle,
    env: Vec<(String, String)>,
    pty: Option<(String, u32, u32)>,
    agent_dir: Option<std::path::PathBuf>,
}

enum Output {
    Pty(tokio::fs::File),
    Pipe(Option<tokio::process::ChildStdout>),
}

impl SessionChannel {
    fn new(settings: Arc<Settings>, user: Account, handle: Handle) -> Self {
        SessionChannel { settings, user, handle, env: vec![], pty: None, agent_dir: None }
    }

    async fn run(mut self, channel: Channel<Msg>) -> Result<(), SshError> {
        let id = channel.id();
        let (mut rx, tx) = channel.split();
        // Requests until the program starts.
        let argv = loop {
            match rx.wait().await {
                Some(ChannelMsg::SetEnv { variable_name, variable_value, .. }) => {
                    self.env.push((variable_name, variable_value))
                }
                Some(ChannelMsg::RequestPty { term, col_width, row_height, .. }) => {
                    self.pty = Some((term, col_width, row_height))
                }
                Some(ChannelMsg::AgentForward { .. }) => self.start_agent_forwarding(),
                Some(ChannelMsg::RequestShell { .. }) => break self.login_shell(),
                Some(ChannelMsg::Exec { command, .. }) => {
                    break vec![self.user_shell(), "-c".into(), String::from_utf8_lossy(&command).into_owned()]
                }
                Some(ChannelMsg::RequestSubsystem { name, .. }) if self.settings.service(&name).is_some() => {
                    (self.settings.events)(Event::Subsystem(name.clone()));
                    let service = self.settings.service(&name).cloned().expect("checked");
                    return run_service(service, rx, tx).await;
                }
                Some(ChannelMsg::RequestSubsystem { name, .. }) if self.settings.subsystem(&name).is_some() => {
                    self.pty = None;
                    (self.settings.events)(Event::Subsystem(name.clone()));
                    break self.settings.subsystem(&name).cloned().unwrap_or_default();
                }
                Some(ChannelMsg::RequestSubsystem { .. }) => {
                    let _ = tx.close().await;
                    return Ok(());
                }
                Some(ChannelMsg::Close) | None => return Ok(()),
                Some(_) => {}
            }
        };

        let mut cmd = std::process::Command::new(&argv[0]);
        if let Some(arg0) = argv.first().filter(|a| a.starts_with('-')) {
            // A login shell: argv[0] is "-sh"; the program is the shell.
            cmd = std::process::Command::new(self.user_shell());
            cmd.arg0(arg0);
        } else {
            cmd.args(&argv[1..]);
        }
        cmd.env_clear().envs(self.session_env());
        let cwd = if let Some((_, dir)) = self.env.iter().rev().find(|(k, _)| k == WORKDIR_ENV) {
            dir.clone()
        } else if std::path::Path::new(&self.settings.workdir).is_dir() {
            self.settings.workdir.clone()
        } else {
            self.user.home.clone()
        };
        cmd.current_dir(if std::path::Path::new(&cwd).is_dir() { cwd } else { "/".into() });
        let (uid, gid, groups) = (self.user.uid, self.user.gid, self.user.groups.clone());
        let switch = unsafe { libc::getuid() } == 0 && (uid != 0 || gid != 0);
        let mut pty_master: Option<OwnedFd> = None;
        if let Some((_, cols, rows)) = &self.pty {
            let pty = crate::pty::open(*cols, *rows)?;
            cmd.stdin(pty.slave.try_clone()?).stdout(pty.slave.try_clone()?).stderr(pty.slave.try_clone()?);
            pty_master = Some(pty.master);
            drop(pty.slave);
        } else {
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
        }
        let with_pty = pty_master.is_some();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if with_pty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if switch
                    && (libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = match tokio::process::Command::from(cmd).spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.extended_data_bytes(1, format!("den: cannot start {}: {e}\r\n", argv[0]).into_bytes()).await;
                let _ = tx.exit_status(127).await;
                let _ = tx.eof().await;
                let _ = tx.close().await;
                return Ok(());
            }
        };
        let pid = child.id();
        let (stdin_writer, mut output): (Option<Box<dyn AsyncWrite + Unpin + Send>>, Output) = match &pty_master {
            Some(m) => (
                Some(Box::new(tokio::fs::File::from_std(std::fs::File::from(m.try_clone()?)))),
                Output::Pty(tokio::fs::File::from_std(std::fs::File::from(m.try_clone()?))),
            ),
            None => (
                child.stdin.take().map(|s| Box::new(s) as Box<dyn AsyncWrite + Unpin + Send>),
                Output::Pipe(child.stdout.take()),
            ),
        };
        let mut errors = child.stderr.take();
        if let Output::Pipe(Some(o)) = &output {
            use std::os::fd::AsRawFd;
            crate::grow_pipe(o.as_raw_fd());
        }

        // Input: the client's data, window changes and signals.
        let resize_fd = match &pty_master {
            Some(m) => Some(m.try_clone()?),
            None => None,
        };
        let input = tokio::spawn(crate::pipe::drain_into(rx, stdin_writer, move |c| match c {
            Control::Other(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                if let Some(fd) = &resize_fd {
                    crate::pty::resize(fd, col_width, row_height);
                }
            }
            Control::Other(ChannelMsg::Signal { signal }) => {
                if let Some(pid) = pid {
                    // SAFETY: kill(2) on our child's process group.
                    unsafe {
                        libc::kill(-(pid as i32), signal_number(&signal));
                    }
                }
            }
            Control::Close => {
                if let Some(pid) = pid {
                    // SAFETY: as above; the client is gone.
                    unsafe {
                        libc::kill(-(pid as i32), libc::SIGHUP);
                    }
                }
            }
            _ => {}
        }));

        // Output: stdout and stderr to the client, until both end and the
        // program has exited.
        let mut out_buf = vec![0u8; 128 * 1024];
        let mut err_buf = vec![0u8; 16 * 1024];
        let (mut out_open, mut err_open) = (true, errors.is_some());
        let mut status = None;
        while out_open || err_open || status.is_none() {
            tokio::select! {
                n = read_out(&mut output, &mut out_buf), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => { if tx.data_bytes(out_buf[..n].to_vec()).await.is_err() { out_open = false; } }
                },
                n = read_err(&mut errors, &mut err_buf), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => { if tx.extended_data_bytes(1, err_buf[..n].to_vec()).await.is_err() { err_open = false; } }
                },
                s = child.wait(), if status.is_none() => {
                    status = Some(s);
                    // With a pty, the master reads EIO once the last holder
                    // of the slave is gone; background jobs that keep it must
                    // not hold the session open.
                    if with_pty {
                        drain_pty(&mut output, &mut out_buf, &tx).await;
                        out_open = false;
                    }
                }
            }
        }
        match status {
            Some(Ok(s)) => {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = s.signal() {
                    let _ = self
                        .handle
                        .exit_signal_request(id, sig_of(sig), s.core_dumped(), String::new(), String::new())
                        .await;
                } else {
                    let _ = tx.exit_status(s.code().unwrap_or(1) as u32).await;
                }
            }
            _ => {
                let _ = tx.exit_status(1).await;
            }
        }
        let _ = tx.eof().await;
        let _ = tx.close().await;
        input.abort();
        if let Some(d) = &self.agent_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        Ok(())
    }

    fn user_shell(&self) -> String {
        if std::path::Path::new(&self.user.shell).is_file() {
            self.user.shell.clone()
        } else {
            "/bin/sh".into()
        }
    }

    fn login_shell(&self) -> Vec<String> {
        let shell = self.user_shell();
        let base = shell.rsplit('/').next().unwrap_or("sh").to_string();
        vec![format!("-{base}")]
    }

    fn session_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self.settings.env.clone();
        let mut set = |k: &str, v: String| {
            env.retain(|(x, _)| x != k);
            env.push((k.to_string(), v));
        };
        set("HOME", self.user.home.clone());
        set("USER", self.user.name.clone());
        set("LOGNAME", self.user.name.clone());
        set("SHELL", self.user_shell());
        if let Some((term, _, _)) = &self.pty {
            set("TERM", if term.is_empty() { "xterm".into() } else { term.clone() });
        }
        if let Some(d) = &self.agent_dir {
            set("SSH_AUTH_SOCK", d.join("agent.sock").display().to_string());
        }
        for (k, v) in self.env.iter().filter(|(k, _)| k != WORKDIR_ENV) {
            set(k, v.clone());
        }
        env
    }

    /// Makes a socket the session's programs reach the client's ssh-agent
    /// through (one `auth-agent@openssh.com` channel per connection).
    fn start_agent_forwarding(&mut self) {
        let dir = std::env::temp_dir().join(format!("den-ssh-agent-{}-{}", std::process::id(), rand_suffix()));
        if std::fs::create_dir(&dir).is_err() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let sock = dir.join("agent.sock");
        let Ok(listener) = tokio::net::UnixListener::bind(&sock) else { return };
        let _ = std::os::unix::fs::chown(&dir, Some(self.user.uid), Some(self.user.gid));
        let _ = std::os::unix::fs::chown(&sock, Some(self.user.uid), Some(self.user.gid));
        let handle = self.handle.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    if let Ok(ch) = handle.channel_open_agent().await {
                        crate::pipe::pipe(ch, conn).await;
                    }
                });
            }
        });
        self.agent_dir = Some(dir);
    }
}

fn rand_suffix() -> u64 {
    use rand::RngExt;
    rand::rng().random()
}

async fn read_out(o: &mut Output, buf: &mut [u8]) -> std::io::Result<usize> {
    match o {
        Output::Pty(f) => f.read(buf).await,
        Output::Pipe(Some(s)) => s.read(buf).await,
        Output::Pipe(None) => Ok(0),
    }
}

async fn read_err(e: &mut Option<tokio::process::ChildStderr>, buf: &mut [u8]) -> std::io::Result<usize> {
    match e {
        Some(s) => s.read(buf).await,
        None => Ok(0),
    }
}

/// After a pty program exits: send what is still buffered.
async fn drain_pty(o: &mut Output, buf: &mut [u8], tx: &russh::ChannelWriteHalf<Msg>) {
    if let Output::Pty(f) = o {
        for _ in 0..64 {
            match tokio::time::timeout(std::time::Duration::from_millis(50), f.read(buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    let _ = tx.data_bytes(buf[..n].to_vec()).await;
                }
                _ => break,
            }
        }
    }
}

fn signal_number(s: &Sig) -> i32 {
    match s {
        Sig::ABRT => libc::SIGABRT,
        Sig::ALRM => libc::SIGALRM,
        Sig::FPE => libc::SIGFPE,
        Sig::HUP => libc::SIGHUP,
        Sig::ILL => libc::SIGILL,
        Sig::INT => libc::SIGINT,
        Sig::KILL => libc::SIGKILL,
        Sig::PIPE => libc::SIGPIPE,
        Sig::QUIT => libc::SIGQUIT,
        Sig::SEGV => libc::SIGSEGV,
        Sig::TERM => libc::SIGTERM,
        Sig::USR1 => libc::SIGUSR1,
        Sig::Custom(name) => match name.as_str() {
            "USR2" => libc::SIGUSR2,
            "WINCH" => libc::SIGWINCH,
            "CONT" => libc::SIGCONT,
            "STOP" => libc::SIGSTOP,
            _ => libc::SIGTERM,
        },
    }
}

fn sig_of(n: i32) -> Sig {
    match n {
        libc::SIGABRT => Sig::ABRT,
        libc::SIGALRM => Sig::ALRM,
        libc::SIGFPE => Sig::FPE,
        libc::SIGHUP => Sig::HUP,
        libc::SIGILL => Sig::ILL,
        libc::SIGINT => Sig::INT,
        libc::SIGKILL => Sig::KILL,
        libc::SIGPIPE => Sig::PIPE,
        libc::SIGQUIT => Sig::QUIT,
        libc::SIGSEGV => Sig::SEGV,
        libc::SIGTERM => Sig::TERM,
        libc::SIGUSR1 => Sig::USR1,
        libc::SIGUSR2 => Sig::Custom("USR2".into()),
        other => Sig::Custom(format!("{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};

    /// A server whose one service answers each line in capitals, over a
    /// socket pair, and a client session asking for `subsystem` with
    /// `input`: what it printed and its exit code.
    fn session(subsystem: &str, input: &'static [u8]) -> (String, Option<i32>, Vec<Event>) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let host = crate::keys::generate().unwrap();
            let client = crate::keys::generate().unwrap();
            let seen = Arc::new(std::sync::Mutex::new(vec![]));
            let upper: Service = Arc::new(|input, mut out| {
                for line in std::io::BufReader::new(input).lines().map_while(Result::ok) {
                    let _ = writeln!(out, "{}", line.to_uppercase());
                }
            });
            let settings = {
                let seen = seen.clone();
                Settings {
                    host_key: host.clone(),
                    authorized: vec![client.public_key().clone()],
                    accounts: Box::new(|name| {
                        Some(Account {
                            name: name.into(),
                            uid: unsafe { libc::getuid() },
                            gid: unsafe { libc::getgid() },
                            groups: vec![],
                            home: "/".into(),
                            shell: "/bin/sh".into(),
                        })
                    }),
                    env: vec![],
                    workdir: "/".into(),
                    subsystems: vec![],
                    services: vec![("upper".into(), upper)],
                    events: Arc::new(move |e| seen.lock().unwrap().push(e)),
                }
            };
            let (a, b) = tokio::net::UnixStream::pair().unwrap();
            tokio::spawn(serve(a, settings));
            let opts = crate::client::Options {
                user: "me".into(),
                command: None,
                subsystem: Some(subsystem.into()),
                tty: false,
                env: vec![],
                local_forwards: vec![],
                remote_forwards: vec![],
                agent_socket: None,
                note: Arc::new(|_: &str| {}),
            };
            let c = crate::client::connect(b, client, host.public_key().clone(), &opts).await.unwrap();
            let out = tempfile::NamedTempFile::new().unwrap();
            let io = crate::client::Io {
                stdin: Box::new(input),
                stdout: Box::new(out.reopen().unwrap()),
                stderr: Box::new(std::io::sink()),
            };
            let code =
                tokio::time::timeout(std::time::Duration::from_secs(20), c.run(opts, io)).await.unwrap().unwrap();
            let printed = std::fs::read_to_string(out.path()).unwrap();
            let events = seen.lock().unwrap().clone();
            (printed, code, events)
        })
    }

    #[test]
    fn a_service_runs_in_process_until_its_input_ends() {
        let (printed, code, events) = session("upper", b"hello\nden\n");
        assert_eq!(printed, "HELLO\nDEN\n");
        assert_eq!(code, Some(0));
        assert_eq!(events, vec![Event::Subsystem("upper".into())]);
    }

    #[test]
    fn a_subsystem_nobody_serves_is_refused() {
        let (printed, code, events) = session("nothing", b"hello\n");
        assert_eq!(printed, "");
        assert_eq!(code, Some(crate::client::REFUSED));
        assert!(events.is_empty());
    }
}
