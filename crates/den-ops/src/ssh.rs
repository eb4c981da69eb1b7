//! Sessions in a workspace over den's own SSH client: `den ssh` (a shell
//! or a command on this process's terminal), the ProxyCommand (`den ssh
//! --stdio`), and [`exec`], a command den runs there for itself. A
//! workspace found stopped (or gone) is brought up and tried once more.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use den_devcontainer::model::ForwardPort;
use den_ssh::client::{Forward, Io, Options, RawTerminal, Window};
use den_workspace::ssh::Target;
use den_workspace::Den;

use crate::{restart, Ctx, OpsError, Progress, Result};

/// Says something to the user (`den: …`), from any thread.
pub type Note = Arc<dyn Fn(&str) + Send + Sync>;

/// What `den ssh` asks for.
pub struct SessionRequest {
    /// `None`: an interactive shell.
    pub command: Option<String>,
    /// Ask for a pseudo-terminal.
    pub tty: bool,
    /// This process's stdin is a terminal (raw mode while a tty session
    /// runs).
    pub local_terminal: bool,
    /// Instead of the record's remote user.
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub local: Vec<Forward>,
    pub remote: Vec<Forward>,
    /// The ssh-agent socket to forward (`-A`).
    pub agent_socket: Option<PathBuf>,
    /// Forward the configured ports when no forwarder holds them.
    pub forward_ports: bool,
    pub note: Note,
}

/// A session on this process's stdio; the remote exit code (255 when the
/// connection ended before the command did, which `note` says).
pub fn session(ctx: &Ctx, id: &str, req: &SessionRequest, r: &mut dyn Progress) -> Result<i32> {
    // The local terminal's pipes grow like the tunnel's.
    den_ssh::grow_pipe(0);
    den_ssh::grow_pipe(1);
    session_with(ctx, id, req, Io::process(), Window::Local, r)
}

/// [`session`] with the caller's input and output, its pseudo-terminal
/// sized by `window` (the dashboard's terminal: [`crate::terminal`]).
pub fn session_with(
    ctx: &Ctx,
    id: &str,
    req: &SessionRequest,
    io: Io,
    window: Window,
    r: &mut dyn Progress,
) -> Result<i32> {
    let rt = crate::runtime()?;
    // Kept across tries: a try that did not connect has not read it.
    let mut io = Some((io, window));
    let code = with_restart(ctx, id, r, |t| {
        let opts = session_options(ctx, t, req);
        let raw = req.tty && req.local_terminal;
        rt.block_on(try_session(&ctx.den, t, req.workdir.as_deref(), raw, opts, &mut io))
    });
    // A read of our stdin, blocked in the runtime's pool, must not hold
    // us: dropping the runtime would wait for it.
    rt.shutdown_background();
    Ok(code?.unwrap_or_else(|| {
        (req.note)(&ended_early(id));
        255
    }))
}

fn session_options(ctx: &Ctx, t: &Target, req: &SessionRequest) -> Options {
    let mut local = req.local.clone();
    // The workspace's forwarder holds its ports already.
    if req.forward_ports && !t.record.forward_ports.is_empty() && !den_forward::running(&ctx.den, &t.record.id) {
        for f in forwards_of(&t.record.forward_ports) {
            if !local.iter().any(|l| l.port == f.port) {
                local.push(f);
            }
        }
    }
    Options {
        user: req.user.clone().unwrap_or_else(|| t.record.remote_user.clone()),
        command: req.command.clone(),
        tty: req.tty,
        env: ctx.env.clone(),
        local_forwards: local,
        remote_forwards: req.remote.clone(),
        agent_socket: req.agent_socket.clone(),
        subsystem: None,
        note: req.note.clone(),
    }
}

fn forwards_of(ports: &[ForwardPort]) -> Vec<Forward> {
    let forward =
        |host: &str, port: u16| Forward { bind: "localhost".into(), port, host: host.into(), host_port: port };
    ports
        .iter()
        .map(|p| match p {
            ForwardPort::Port(n) => forward("localhost", *n),
            ForwardPort::HostPort { host, port } => forward(host, *port),
        })
        .collect()
}

fn ended_early(id: &str) -> String {
    format!(
        "the connection to workspace `{id}` ended before the command did: its container stopped or restarted (see `den status {id}`); `den ssh {id}` connects again"
    )
}

/// Tries `attempt` on the workspace; when it finds the workspace stopped
/// (`None`), brings it up and tries once more. Credentials are served
/// while each attempt runs.
fn with_restart<T>(
    ctx: &Ctx,
    id: &str,
    r: &mut dyn Progress,
    mut attempt: impl FnMut(&Target) -> Result<Option<T>>,
) -> Result<T> {
    let t = den_workspace::ssh::target(&ctx.den, id)?;
    // git in the workspace may ask for credentials while the session lasts.
    den_workspace::ssh::serve_credentials(&t);
    if let Some(v) = attempt(&t)? {
        return Ok(v);
    }
    restart(ctx, &t.record, r)?;
    // A container made anew has a new host key, pinned by that up.
    let t = den_workspace::ssh::target(&ctx.den, id)?;
    den_workspace::ssh::serve_credentials(&t);
    attempt(&t)?.ok_or_else(|| OpsError::Failed(format!("workspace `{id}` did not start")))
}

/// One try: the direct line when it answers, else the tunnel, and the
/// session over it with `io` (taken once the connection stands, so a
/// retry has it still). `Ok(None)`: the tunnel says the workspace needs
/// starting; `Ok(Some(None))`: the connection ended before the remote
/// program did.
async fn try_session(
    den: &Den,
    t: &Target,
    workdir: Option<&str>,
    raw: bool,
    mut opts: Options,
    io: &mut Option<(Io, Window)>,
) -> Result<Option<Option<i32>>> {
    // One server serves every connection on a direct line (here, or the
    // one a machine's tunnel relays to): the folder is asked for in the
    // request too. The exec tunnel's server gets it as its argument.
    opts.env.extend(workdir.map(|w| (den_ssh::server::WORKDIR_ENV.to_string(), w.to_string())));
    if let Some(stream) = den_workspace::ssh::direct(t) {
        match direct_connect(stream, t, &opts).await {
            Ok(c) => return Ok(Some(run_connected(c, raw, opts, io).await?)),
            Err(e) => den_workspace::ssh::direct_failed(t, &e),
        }
    }
    let tunnel = den_workspace::ssh::tunnel(t, workdir)?;
    let den_ssh::tunnel::Tunnel { mut child, stream, stderr } =
        den_ssh::tunnel::spawn(tunnel.to_command()).map_err(|e| tunnel.spawn_error(e))?;
    let result = match den_ssh::client::connect(stream, t.key.clone(), t.host_key.clone(), &opts).await {
        Ok(c) => run_connected(c, raw, opts, io).await,
        Err(e) => Err(e.into()),
    };
    let error = match result {
        Ok(code) => return Ok(Some(code)),
        Err(e) => e,
    };
    let _ = child.kill().await;
    let stderr = stderr.await.unwrap_or_default();
    if den_workspace::ssh::needs_start(den, t, &stderr) {
        return Ok(None);
    }
    match (error, stderr.trim()) {
        (OpsError::Ssh(error), said) if !said.is_empty() => Err(OpsError::Tunnel { error, said: said.to_string() }),
        (error, _) => Err(error),
    }
}

/// An SSH connection on the direct line's socket.
async fn direct_connect(
    stream: std::os::unix::net::UnixStream,
    t: &Target,
    opts: &Options,
) -> std::result::Result<den_ssh::client::Connected, den_ssh::SshError> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    den_ssh::client::connect(stream, t.key.clone(), t.host_key.clone(), opts).await
}

/// The session on a connection that stands, the local terminal raw while
/// it runs when asked.
async fn run_connected(
    c: den_ssh::client::Connected,
    raw: bool,
    opts: Options,
    io: &mut Option<(Io, Window)>,
) -> Result<Option<i32>> {
    let Some((io, window)) = io.take() else {
        return Err(OpsError::Failed("the session's input went to an earlier try".into()));
    };
    let raw = if raw { RawTerminal::enable() } else { None };
    let code = c.run_in(opts, io, window).await;
    drop(raw);
    Ok(code?)
}

/// The ProxyCommand: connects this process's stdio to the agent; the
/// tunnel's exit code. The tunnel is tried first without asking the engine
/// whether the container runs (that inspect would cost every connection);
/// `docker exec` refuses a stopped container before it reads any input, so
/// the client's bytes are still unread when den starts the workspace and
/// tries again. The tunnel's other complaints go to stderr.
pub fn proxy(ctx: &Ctx, id: &str, r: &mut dyn Progress) -> Result<i32> {
    let target = den_workspace::ssh::target(&ctx.den, id)?;
    if let Some(stream) = den_workspace::ssh::direct(&target) {
        den_workspace::ssh::serve_credentials(&target);
        return Ok(proxy_direct(stream));
    }
    let tunnel = den_workspace::ssh::tunnel(&target, None)?;
    let mut cmd = tunnel.to_command();
    cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::piped());
    die_with_us(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| tunnel.spawn_error(e))?;
    // git in the workspace may ask for credentials while the connection lasts.
    den_workspace::ssh::serve_credentials(&target);
    let stderr = child.stderr.take().expect("piped");
    let relay = std::thread::spawn(move || stopped_lines(stderr));
    let status = child.wait().map_err(OpsError::io("waiting for the tunnel"))?;
    let stopped = relay.join().unwrap_or_default();
    if status.success() || !den_workspace::ssh::needs_start(&ctx.den, &target, &stopped) {
        return Ok(status.code().unwrap_or(255));
    }
    restart(ctx, &target.record, r)?;
    den_workspace::ssh::serve_credentials(&target);
    let tunnel = den_workspace::ssh::tunnel(&target, None)?;
    let mut cmd = tunnel.to_command();
    die_with_us(&mut cmd);
    let status = cmd.status().map_err(|e| tunnel.spawn_error(e))?;
    Ok(status.code().unwrap_or(255))
}

/// The ProxyCommand on the direct line: this process's stdin to the
/// socket (spliced in the kernel where it can, [`pump`]) and the socket to
/// its stdout (read and written: OpenSSH was seen not to wake for data
/// spliced from the socket into its pipe), until the agent closes the
/// connection.
fn proxy_direct(stream: std::os::unix::net::UnixStream) -> i32 {
    use std::os::fd::AsRawFd;
    let Ok(up) = stream.try_clone() else { return 255 };
    // Not joined: a blocked read of our stdin must not hold us once the
    // agent has closed the connection.
    std::thread::spawn(move || {
        let _ = pump(0, up.as_raw_fd());
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    match copy_fds(stream.as_raw_fd(), 1, 1 << 20) {
        Ok(()) => 0,
        Err(_) => 255,
    }
}

/// Copies `from` to `to` until `from` ends: splice(2), which moves the
/// bytes between a pipe (OpenSSH gives its ProxyCommand pipes) and the
/// socket without copying them through this process, else read and write
/// with a large buffer.
fn pump(from: std::os::fd::RawFd, to: std::os::fd::RawFd) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    loop {
        // SAFETY: splice on two fds this process holds; no offsets.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                CHUNK,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
            )
        };
        match n {
            0 => return Ok(()),
            1.. => continue,
            _ => {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EINVAL) => break,
                    _ => return Err(e),
                }
            }
        }
    }
    copy_fds(from, to, CHUNK)
}

/// read(2) and write(2) with a buffer of `size` bytes.
fn copy_fds(from: std::os::fd::RawFd, to: std::os::fd::RawFd, size: usize) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: both fds stay open for the copy; ManuallyDrop keeps them open after it.
    let mut r = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(from) });
    let mut w = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(to) });
    let mut buf = vec![0u8; size];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Passes the tunnel's stderr on, but for the lines that say the
/// workspace is stopped or gone: those are returned.
fn stopped_lines(stderr: impl Read) -> String {
    use std::io::{BufRead, Write};
    let mut stopped = String::new();
    let mut out = std::io::stderr();
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        if den_workspace::ssh::says_stopped(&line) {
            stopped.push_str(&line);
            stopped.push('\n');
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    stopped
}

/// The tunnel dies with us, as it would have if it had replaced us.
fn die_with_us(cmd: &mut std::process::Command) {
    // SAFETY: prctl between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Which output of a command a line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// What a command run with [`exec`] did.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Its exit code (255 when the connection ended before it did).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` (each word quoted for the remote shell) in workspace `id`
/// as its remote user, with no terminal and no port forwards, `input` on
/// its stdin; each line of its output goes to `on_line` as it comes. A
/// stopped workspace is started first (its progress comes as stderr
/// lines). Credentials are served while it runs.
pub fn exec(
    ctx: &Ctx,
    id: &str,
    argv: &[&str],
    input: Option<Box<dyn Read + Send>>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<ExecOutput> {
    let command = argv.iter().map(|w| den_process::shell_quote(w)).collect::<Vec<_>>().join(" ");
    let (tx, rx) = std::sync::mpsc::channel::<(Stream, Vec<u8>)>();
    std::thread::scope(|s| {
        let worker = s.spawn(move || exec_in(ctx, id, command, input, tx));
        let mut lines = Lines::default();
        for (stream, bytes) in rx {
            lines.push(stream, &bytes, on_line);
        }
        let (stdout, stderr) = lines.finish(on_line);
        let code = worker.join().map_err(|_| OpsError::Failed(format!("running `{}` in `{id}` failed", argv[0])))??;
        Ok(ExecOutput { code, stdout, stderr })
    })
}

/// [`exec`]'s session, on a thread of its own: output goes to `tx`.
fn exec_in(
    ctx: &Ctx,
    id: &str,
    command: String,
    input: Option<Box<dyn Read + Send>>,
    tx: Sender<Chunk>,
) -> Result<i32> {
    let rt = crate::runtime()?;
    let note: Note = {
        let tx = tx.clone();
        Arc::new(move |m: &str| {
            let _ = tx.send((Stream::Err, format!("den: {}\n", den_process::text::lines(m)).into_bytes()));
        })
    };
    // Kept across tries: a try that did not connect has not read it.
    let io = Io {
        stdin: Box::new(BlockingRead(input.unwrap_or_else(|| Box::new(std::io::empty())))),
        stdout: Box::new(ChunkWriter(Stream::Out, tx.clone())),
        stderr: Box::new(ChunkWriter(Stream::Err, tx.clone())),
    };
    let mut io = Some((io, Window::Local));
    let mut progress = ChunkWriter(Stream::Err, tx);
    let code = with_restart(ctx, id, &mut progress, |t| {
        let opts = Options {
            user: t.record.remote_user.clone(),
            command: Some(command.clone()),
            tty: false,
            env: ctx.env.clone(),
            local_forwards: vec![],
            remote_forwards: vec![],
            agent_socket: None,
            subsystem: None,
            note: note.clone(),
        };
        rt.block_on(try_session(&ctx.den, t, None, false, opts, &mut io))
    })?;
    Ok(code.unwrap_or_else(|| {
        note(&ended_early(id));
        255
    }))
}

type Chunk = (Stream, Vec<u8>);

/// Output of [`exec`]'s session, sent to the caller's thread.
struct ChunkWriter(Stream, Sender<Chunk>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.send((self.0, buf.to_vec())).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A workspace started for [`exec`] says so on its stderr lines.
impl den_workspace::Reporter for ChunkWriter {
    fn phase(&mut self, name: &str, detail: &str) {
        let text = if detail.is_empty() { name.to_string() } else { format!("{name}: {detail}") };
        let _ = self.1.send((Stream::Err, format!("{}\n", den_process::text::one_line(&text)).into_bytes()));
    }

    fn line(&mut self, text: &str) {
        let _ = self.1.send((Stream::Err, format!("  {text}\n").into_bytes()));
    }
}

impl Progress for ChunkWriter {
    fn finish(&mut self) {}

    fn output(&mut self, tag: &str, line: &str) {
        let _ = self.1.send((Stream::Err, format!("[{tag}] {line}\n").into_bytes()));
    }

    fn say(&mut self, text: &str) {
        let _ = self.1.send((Stream::Err, format!("den: {}\n", den_process::text::lines(text)).into_bytes()));
    }
}

/// A caller's (blocking) input as the session's: its reads are quick (a
/// file, bytes in memory) and [`exec`]'s runtime has nothing else to do.
struct BlockingRead(Box<dyn Read + Send>);

impl tokio::io::AsyncRead for BlockingRead {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        std::task::Poll::Ready(Ok(()))
    }
}

/// [`exec`]'s output cut into lines, and kept whole.
#[derive(Default)]
struct Lines {
    out: Vec<u8>,
    err: Vec<u8>,
    /// Where the unfinished line of each starts.
    start: [usize; 2],
}

impl Lines {
    fn push(&mut self, stream: Stream, bytes: &[u8], on_line: &mut dyn FnMut(Stream, &str)) {
        let (all, start) = self.of(stream);
        all.extend_from_slice(bytes);
        while let Some(i) = all[*start..].iter().position(|b| *b == b'\n') {
            let line = &all[*start..*start + i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            on_line(stream, &String::from_utf8_lossy(line));
            *start += i + 1;
        }
    }

    /// The last lines that had no newline; the output.
    fn finish(mut self, on_line: &mut dyn FnMut(Stream, &str)) -> (String, String) {
        for stream in [Stream::Out, Stream::Err] {
            let (all, start) = self.of(stream);
            if *start < all.len() {
                on_line(stream, &String::from_utf8_lossy(&all[*start..]));
            }
        }
        (String::from_utf8_lossy(&self.out).into_owned(), String::from_utf8_lossy(&self.err).into_owned())
    }

    fn of(&mut self, stream: Stream) -> (&mut Vec<u8>, &mut usize) {
        match stream {
            Stream::Out => (&mut self.out, &mut self.start[0]),
            Stream::Err => (&mut self.err, &mut self.start[1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_into_lines_and_kept_whole() {
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        let mut on_line = |s: Stream, l: &str| seen.push((s, l.to_string()));
        lines.push(Stream::Out, b"a\r\nb", &mut on_line);
        lines.push(Stream::Err, b"e1\n", &mut on_line);
        lines.push(Stream::Out, b"c\nlast", &mut on_line);
        let (out, err) = lines.finish(&mut on_line);
        assert_eq!((out.as_str(), err.as_str()), ("a\r\nbc\nlast", "e1\n"));
        let want = [(Stream::Out, "a"), (Stream::Err, "e1"), (Stream::Out, "bc"), (Stream::Out, "last")];
        assert_eq!(seen, want.map(|(s, l)| (s, l.to_string())));
    }

    #[test]
    fn configured_ports_are_forwarded_from_localhost() {
        let f = forwards_of(&[ForwardPort::Port(3000), ForwardPort::HostPort { host: "db".into(), port: 5432 }]);
        assert_eq!((f[0].port, f[0].host.as_str(), f[0].bind.as_str()), (3000, "localhost", "localhost"));
        assert_eq!((f[1].port, f[1].host.as_str(), f[1].host_port), (5432, "db", 5432));
    }
}
