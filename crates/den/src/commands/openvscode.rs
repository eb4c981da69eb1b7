//! `--ide openvscode`: OpenVSCode Server in the workspace, in the browser.
//! The archive is fetched here (or taken from `--ide-option ARCHIVE`),
//! checked and cached in DEN_HOME, sent through den's own ssh, unpacked
//! once per archive in the remote user's home, and started with a
//! connection token; den's port forwarder carries its port, and the
//! browser opens on it.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use den_workspace::{Den, WorkspaceRecord};

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

/// `den ssh ID -- ARGV` as this den, with `input` on stdin; its stdout.
fn den_ssh(den: &Den, id: &str, argv: &[&str], input: Option<Box<dyn std::io::Read + Send>>) -> anyhow::Result<String> {
    let (child, writer) = crate::commands::ssh::spawn_in(den, id, argv, input)?;
    let out = child.wait_with_output()?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if !out.status.success() {
        anyhow::bail!(
            "`{}` in the workspace failed ({}): {}",
            argv.first().copied().unwrap_or(""),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts the server in workspace `rec`, forwards it, opens the browser.
pub fn open(den: &Den, rec: &WorkspaceRecord, options: &[(String, String)]) -> anyhow::Result<()> {
    let o = den_ide::browser::options(options)?;
    let arch = if o.archive.is_none() && o.url.is_none() {
        den_ide::browser::release_arch(&den_ssh(den, &rec.id, &["uname", "-m"], None)?)?.to_string()
    } else {
        String::new()
    };
    let cache = den.home.root().join("cache").join("ide");
    let (archive, sha) = den_ide::browser::fetch(&o, &arch, &cache)?;
    let port = o.port.to_string();
    let mut argv = vec!["sh", "-c", START, "sh", &sha, &port];
    // Only ids that cannot be taken for the server's options.
    argv.extend(rec.vscode_extensions.iter().map(String::as_str).filter(|e| den_agent::extensions::is_extension_id(e)));
    let file = std::fs::File::open(&archive).with_context(|| format!("reading {}", archive.display()))?;
    let input = std::io::Read::chain(std::io::Cursor::new(format!("{}\n", token()?)), file);
    let token = den_ssh(den, &rec.id, &argv, Some(Box::new(input))).context("starting OpenVSCode Server")?;
    let token = token.trim();

    crate::commands::ports::start_and_wait(den, &rec.id)?;
    let req = den_forward::Request::Add { host: "localhost".into(), port: o.port, local_port: None };
    let reply = match den_forward::ask(den, &rec.id, &req) {
        Ok(r) => r,
        // Forwarded already (found listening, or an earlier open).
        Err(den_forward::ForwardError::Refused { .. }) => den_forward::ask(den, &rec.id, &den_forward::Request::List)?,
        Err(e) => return Err(e.into()),
    };
    let local = reply
        .ports
        .iter()
        .find(|p| p.port == o.port && p.host == "localhost")
        .and_then(|p| p.local.rsplit(':').next().and_then(|l| l.parse::<u16>().ok()))
        .ok_or_else(|| anyhow::anyhow!("den's port forwarder did not forward port {}", o.port))?;
    // The server takes a moment to listen (and longer to install extensions).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(local) {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "OpenVSCode Server did not answer on port {} within a minute; its log is ~/.den-openvscode/server.log in the workspace",
                o.port
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = den_ide::browser::browser_url(local, &rec.workspace_folder, token);
    eprintln!("OpenVSCode Server: {url}");
    if o.open {
        // The browser's command line is every local user's to read: it gets
        // a file of this user's that leads on to the URL with the token.
        let page = den.home.workspace_dir(&den.context, &rec.id).join("openvscode.html");
        den_state::atomic_write(&page, den_ide::browser::redirect_page(&url).as_bytes())?;
        den_ide::open_url(&den_ide::file_url(&page))?;
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
