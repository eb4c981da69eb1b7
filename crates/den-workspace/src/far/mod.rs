//! den on the far side: the half of the remote and kubernetes backends that
//! runs on a machine (reached through a provider's `command`) or in a pod.
//! On a machine den keeps a den state of its own (the "agent home") and
//! drives that machine's docker engine with this crate's `up`, the same
//! code as `den up` on a laptop; `den agent …` dispatches here.
//!
//! - [`machine`]: `remote-up`, the tunnel's middle hop (`remote-tunnel`)
//!   and `remote-op stop|delete|status|logs`.
//! - [`watch`]: the machine's inactivity (`machine-watch`).
//! - [`pod`]: the workspace's files in a pod (`clone-content`,
//!   `receive-content`).
//! - [`clone_relay`]: the far end of the clone relay (`git-ssh`), whose
//!   near end is `crate::relay`.

pub mod clone_relay;
pub mod machine;
pub mod pod;
pub mod watch;

use std::io::Write;
use std::path::Path;

use den_protocol::transfer::RemoteUpResult;
use den_protocol::{Outcome, PHASE_PREFIX, READY, RESULT_PREFIX};

use crate::Reporter;

/// Phases and lines go to stdout for den on the other side.
struct ToDen;

impl Reporter for ToDen {
    fn phase(&mut self, name: &str, detail: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{PHASE_PREFIX}{name}\t{detail}");
        let _ = out.flush();
    }
    fn line(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Says the request may come now.
fn ready() {
    println!("{READY}");
    let _ = std::io::stdout().flush();
}

/// The last line den reads; the exit code goes with it.
fn answer(r: &RemoteUpResult) -> i32 {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{RESULT_PREFIX}{}", serde_json::to_string(r).expect("serialises"));
    let _ = out.flush();
    if r.outcome.is_done() {
        0
    } else {
        1
    }
}

fn fail(msg: String) -> i32 {
    answer(&RemoteUpResult { outcome: Outcome::Failed { message: msg }, ..Default::default() })
}

/// True when `program` is a path that exists or a name found on PATH.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false)
}
