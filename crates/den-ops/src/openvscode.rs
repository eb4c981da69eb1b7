//! `--ide openvscode`: OpenVSCode Server in the workspace, in the browser.
//! The archive is fetched here (or taken from `--ide-option ARCHIVE`),
//! checked and cached in DEN_HOME, sent through den's own ssh, unpacked
//! once per archive in the remote user's home, and started with a
//! connection token; den's port forwarder carries its port, and the
//! browser opens on it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use den_workspace::{WorkspaceError, WorkspaceRecord};

use crate::{Ctx, OpsError, Result};

/// Reads the token (the first line of stdin: an argument would show in
/// every process listing), unpacks the archive that follows (unless this one
/// is there already) and starts the server unless it runs; prints the token
/// in use. Arguments: SHA PORT [EXTENSION…].
const START: &str = r#"set -e
IFS= read -r token
base="$HOME/.den-openvscode"; dir="$base/$1"; port=$2; shift 2
mkdir -p "$base"; chmod 700 "$base"
if [ -x "$dir/bin/openvscode-server" ]; then cat >/dev/null; else
  rm -rf "$dir.new"; mkdir -p "$dir.new"
  tar -xz -C "$dir.new"
  top=$(ls "$dir.new")
  rm -rf "$dir"
  if [ -x "$dir.new/bin/openvscode-server" ]; then mv "$dir.new" "$dir"
  elif [ -x "$dir.new/$top/bin/openvscode-server" ]; then mv "$dir.new/$top" "$dir"; rm -rf "$dir.new"
  else rm -rf "$dir.new"; echo "the archive has no bin/openvscode-server" >&2; exit 3; fi
fi
state="$base/server"
if [ -f "$state.pid" ] && kill -0 "$(cat "$state.pid")" 2>/dev/null && [ "$(cat "$state.dir" 2>/dev/null)" = "$dir" ]; then
  cat "$state.token"; exit 0
fi
umask 077; printf %s "$token" > "$state.token"
n=$#; for e in "$@"; do set -- "$@" --install-extension "$e"; done; shift $n
[ $# -gt 0 ] && set -- "$@" --start-server
# The session's end hangs its process group up: the server ignores that
# (an ignored signal stays ignored across exec; not every image has nohup).
(trap '' HUP; exec "$dir/bin/openvscode-server" --host 127.0.0.1 --port "$port" --connection-token-file "$state.token" --telemetry-level off "$@") </dev/null >"$state.log" 2>&1 &
echo $! > "$state.pid"; printf %s "$dir" > "$state.dir"
cat "$state.token"
"#;

/// Where the server is, for the browser.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The server's URL, with its token.
    pub url: String,
    /// A page of this user's (0600) that leads on to the URL: the
    /// browser's command line is every local user's to read.
    pub page: PathBuf,
    /// Open the browser on the page (`--ide-option OPEN`).
    pub open: bool,
}

/// Starts the server in workspace `rec` (unless it runs), forwards its
/// port and waits until it answers.
pub fn start(ctx: &Ctx, rec: &WorkspaceRecord, options: &[(String, String)]) -> Result<Browser> {
    let o = den_ide::browser::options(options)?;
    let arch = if o.archive.is_none() && o.url.is_none() {
        den_ide::browser::release_arch(&run(ctx, &rec.id, &["uname", "-m"], None)?)?.to_string()
    } else {
        String::new()
    };
    let cache = ctx.den.home.root().join("cache").join("ide");
    let (archive, sha) = den_ide::browser::fetch(&o, &arch, &cache)?;
    let port = o.port.to_string();
    let mut argv = vec!["sh", "-c", START, "sh", &sha, &port];
    // Only ids that cannot be taken for the server's options.
    argv.extend(rec.vscode_extensions.iter().map(String::as_str).filter(|e| den_protocol::ids::is_extension_id(e)));
    let file = std::fs::File::open(&archive).map_err(OpsError::io(format!("reading {}", archive.display())))?;
    // The token travels on stdin: an argument would show in every process
    // listing.
    let input = std::io::Read::chain(std::io::Cursor::new(format!("{}\n", token()?)), file);
    let token = run(ctx, &rec.id, &argv, Some(Box::new(input))).map_err(|e| e.context("starting OpenVSCode Server"))?;
    let local = forward(ctx, &rec.id, o.port)?;
    wait_for(local, o.port)?;
    let url = den_ide::browser::browser_url(local, &rec.workspace_folder, token.trim());
    let page = ctx.den.home.workspace_dir(&ctx.den.context, &rec.id).join("openvscode.html");
    den_state::atomic_write(&page, den_ide::browser::redirect_page(&url).as_bytes()).map_err(WorkspaceError::from)?;
    Ok(Browser { url, page, open: o.open })
}

/// `argv` in the workspace, with `input` on stdin; its stdout.
fn run(ctx: &Ctx, id: &str, argv: &[&str], input: Option<Box<dyn std::io::Read + Send>>) -> Result<String> {
    let out = crate::ssh::exec(ctx, id, argv, input, &mut |_, _| {})?;
    if out.code != 0 {
        return Err(OpsError::Remote {
            program: argv.first().copied().unwrap_or("").to_string(),
            code: out.code,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn token() -> Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(OpsError::io("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Has the forwarder carry the workspace's `port`; the local port.
fn forward(ctx: &Ctx, id: &str, port: u16) -> Result<u16> {
    crate::ports::start_and_wait(ctx, id)?;
    let req = den_forward::Request::Add { host: "localhost".into(), port, local_port: None };
    let reply = match den_forward::ask(&ctx.den, id, &req) {
        Ok(r) => r,
        // Forwarded already (found listening, or an earlier open).
        Err(den_forward::ForwardError::Refused { .. }) => den_forward::ask(&ctx.den, id, &den_forward::Request::List)?,
        Err(e) => return Err(e.into()),
    };
    reply
        .ports
        .iter()
        .find(|p| p.port == port && p.host == "localhost")
        .and_then(|p| p.local.rsplit(':').next().and_then(|l| l.parse::<u16>().ok()))
        .ok_or_else(|| OpsError::Failed(format!("den's port forwarder did not forward port {port}")))
}

/// The server takes a moment to listen (and longer to install extensions).
fn wait_for(local: u16, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(local) {
        if Instant::now() > deadline {
            return Err(OpsError::Failed(format!(
                "OpenVSCode Server did not answer on port {port} within a minute; its log is ~/.den-openvscode/server.log in the workspace"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether an HTTP server answers on 127.0.0.1:`port`.
fn answers(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut first = [0u8; 5];
    s.read_exact(&mut first).is_ok() && &first == b"HTTP/"
}
