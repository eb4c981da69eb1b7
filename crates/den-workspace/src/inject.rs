//! Putting the agent into the container and running its setup, in one exec.
//!
//! The exec runs a small POSIX sh script as root. If a copy of this exact
//! den binary is already at one of the candidate paths, it says `DEN-HAVE`
//! and becomes `den agent setup` at once. Otherwise it says `DEN-NEED
//! <path>`, den streams its own binary into the exec's stdin, and the script
//! writes it to a temp name, checks the size, makes it executable and renames
//! it into place before doing the same. So a warm `up` costs one exec and a
//! cold one the same exec plus the copy.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use den_agent::protocol::{SetupRequest, SetupResult, PHASE_PREFIX, REQUEST_ENV, RESULT_PREFIX};
use den_driver::Docker;

use crate::{Reporter, Result, WorkspaceError};

/// Where the agent goes when the provider does not say: a system folder, or
/// /tmp when that one is read-only.
pub const DEFAULT_AGENT_PATHS: [&str; 2] = ["/usr/local/bin/den", "/tmp/den-agent/den"];

const SCRIPT: &str = r#"want=$1; size=$2; shift 2
for p in "$@"; do
  if [ -x "$p" ] && [ -f "$p.id" ]; then
    read -r got < "$p.id"
    if [ "$got" = "$want" ]; then echo "DEN-HAVE $p"; exec "$p" agent setup; fi
  fi
done
for p in "$@"; do
  mkdir -p "${p%/*}" 2>/dev/null
  t="$p.tmp.$$"
  if touch "$t" 2>/dev/null; then
    echo "DEN-NEED $p"
    cat > "$t"
    n=$(wc -c < "$t")
    if [ "$n" -ne "$size" ]; then rm -f "$t"; echo "den agent: received $n of $size bytes" >&2; exit 97; fi
    chmod 755 "$t" && mv -f "$t" "$p" && echo "$want" > "$p.id" || { rm -f "$t"; echo "den agent: cannot install at $p" >&2; exit 97; }
    exec "$p" agent setup
  fi
done
echo "den agent: no writable place for the agent among: $*" >&2
exit 97
"#;

/// Identifies this den binary cheaply (no hashing of megabytes on every
/// `up`): version, size and modification time of the executable.
pub fn agent_fingerprint() -> Result<(String, u64)> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let exe = std::path::Path::new("/proc/self/exe");
    let meta = std::fs::metadata(exe).map_err(WorkspaceError::io("reading /proc/self/exe"))?;
    let text = format!("{}|{}|{}|{}", env!("CARGO_PKG_VERSION"), meta.size(), meta.mtime(), meta.mtime_nsec());
    let hash = sha2::Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok((hex, meta.size()))
}

pub struct AgentRun {
    pub result: SetupResult,
    pub agent_path: String,
    pub uploaded: bool,
}

enum Msg {
    Out(String),
    Err(String),
}

pub fn inject_and_setup(
    docker: &Docker,
    container: &str,
    candidates: &[String],
    req: &SetupRequest,
    reporter: &mut dyn Reporter,
) -> Result<AgentRun> {
    let (want, size) = agent_fingerprint()?;
    let request = serde_json::to_string(req).expect("request serialises");
    let mut argv = vec!["/bin/sh".to_string(), "-c".into(), SCRIPT.into(), "den-inject".into(), want, size.to_string()];
    argv.extend(candidates.iter().cloned());
    let cmd = docker.exec(container, Some("0"), &[(REQUEST_ENV.to_string(), request)], &argv);
    let mut child = cmd.spawn(Stdio::piped(), Stdio::piped(), Stdio::piped())?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let stderr = child.stderr.take().expect("piped");

    let (tx, rx) = mpsc::channel::<Msg>();
    let tx_err = tx.clone();
    let err_thread = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx_err.send(Msg::Err(line));
        }
        all
    });

    let mut first = String::new();
    let _ = stdout.read_line(&mut first);
    let first = first.trim_end().to_string();
    let (agent_path, uploaded) = if let Some(p) = first.strip_prefix("DEN-HAVE ") {
        drop(stdin);
        (p.to_string(), false)
    } else if let Some(p) = first.strip_prefix("DEN-NEED ") {
        reporter.phase("inject", &format!("copying the agent to {p}"));
        let mut exe = std::fs::File::open("/proc/self/exe").map_err(WorkspaceError::io("reading /proc/self/exe"))?;
        let copied = std::io::copy(&mut exe, &mut stdin);
        drop(stdin);
        if let Err(e) = copied {
            let _ = child.wait();
            let stderr = err_thread.join().unwrap_or_default();
            return Err(WorkspaceError::Agent(format!("copying the agent into the container failed: {e}\n{stderr}")));
        }
        (p.to_string(), true)
    } else {
        drop(stdin);
        let status = child.wait().map_err(|e| cmd.spawn_error(e))?;
        let stderr = err_thread.join().unwrap_or_default();
        return Err(WorkspaceError::Process(cmd.failed(status, format!("{first}\n{stderr}"))));
    };

    let out_thread = std::thread::spawn(move || {
        for line in stdout.lines().map_while(|l| l.ok()) {
            let _ = tx.send(Msg::Out(line));
        }
    });
    let mut result: Option<SetupResult> = None;
    for msg in rx {
        match msg {
            Msg::Out(line) => {
                if let Some(p) = line.strip_prefix(PHASE_PREFIX) {
                    reporter.phase(p, "");
                } else if let Some(r) = line.strip_prefix(RESULT_PREFIX) {
                    result = serde_json::from_str(r).ok();
                } else {
                    reporter.line(&line);
                }
            }
            Msg::Err(line) => reporter.line(&line),
        }
    }
    let _ = out_thread.join();
    let stderr = err_thread.join().unwrap_or_default();
    let status = child.wait().map_err(|e| cmd.spawn_error(e))?;
    match result {
        Some(result) => Ok(AgentRun { result, agent_path, uploaded }),
        None => Err(WorkspaceError::Agent(format!(
            "the agent at {agent_path} ended without a result ({status}){}",
            if stderr.trim().is_empty() { String::new() } else { format!(":\n{}", stderr.trim_end()) }
        ))),
    }
}
