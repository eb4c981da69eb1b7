//! A machine's inactivity: the activity mark that `remote-up` and the
//! tunnels keep fresh, and `den agent machine-watch`, which stops the
//! containers and runs the provider's shutdown command once no tunnel has
//! been open for `inactivityTimeout`. Also the provider's
//! `agent.docker.env`, which every docker command here uses.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use den_protocol::transfer::MachineWatch;

use crate::Den;

fn docker_env_file(home: &Path) -> PathBuf {
    home.join("docker-env.json")
}

/// Saves the provider's `agent.docker.env` (from `remote-up`) for the
/// agent's later commands on this machine.
pub(super) fn save_docker_env(home: &Path, env: &[(String, String)]) -> Result<(), String> {
    den_state::write_json(&docker_env_file(home), &env)
        .map_err(|e| format!("writing {}: {e}", docker_env_file(home).display()))
}

/// The provider's `agent.docker.env`, saved by `remote-up`, for every
/// docker command the agent runs on this machine.
pub(super) fn apply_docker_env(home: &Path) {
    let env: Vec<(String, String)> = den_state::read_json(&docker_env_file(home)).ok().flatten().unwrap_or_default();
    for (k, v) in env {
        // SAFETY: called first thing, before any thread starts.
        unsafe { std::env::set_var(k, v) };
    }
}

fn activity_file(home: &Path) -> PathBuf {
    home.join("last-activity")
}

/// Marks the machine as used now.
pub(super) fn touch(home: &Path) {
    let _ = std::fs::create_dir_all(home);
    let _ = std::fs::write(activity_file(home), b"");
}

/// Runs `work`, marking the machine as used while it runs: a long build
/// must not look like an idle machine.
pub(super) fn with_heartbeat<T>(home: &Path, work: impl FnOnce() -> T) -> T {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let heartbeat = {
        let home = home.to_path_buf();
        std::thread::spawn(move || {
            touch(&home);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                finished.recv_timeout(Duration::from_millis(500))
            {
                touch(&home);
            }
        })
    };
    let out = work();
    drop(done);
    let _ = heartbeat.join();
    touch(home);
    out
}

fn watch_file(home: &Path) -> PathBuf {
    home.join("machine-watch.json")
}

/// Watches the machine as `watch` says; none (no timeout any more): a
/// running watcher ends on its next tick.
pub(super) fn configure(home: &Path, watch: Option<&MachineWatch>) -> std::io::Result<()> {
    match watch {
        Some(w) => start_machine_watch(home, w),
        None => {
            let _ = std::fs::remove_file(watch_file(home));
            Ok(())
        }
    }
}

/// True when a process of ours with `needle` in its arguments and this
/// home runs (`remote-tunnel` or `machine-watch`).
fn running(home: &Path, needle: &str) -> bool {
    let home = home.as_os_str().as_encoded_bytes();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me.as_str() {
            return false;
        }
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                // den's port forwarder is no session (its traffic counts).
                args.contains(&needle.as_bytes()) && args.contains(&home) && !args.contains(&&b"--forwarder"[..])
            })
            .unwrap_or(false)
    })
}

fn start_machine_watch(home: &Path, w: &MachineWatch) -> std::io::Result<()> {
    std::fs::create_dir_all(home)?;
    den_state::write_json(&watch_file(home), w).map_err(std::io::Error::other)?;
    touch(home);
    if running(home, "machine-watch") {
        return Ok(()); // it re-reads the file on every tick
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["agent", "machine-watch", "--home"])
        .arg(home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(home.join("machine-watch.log"))?);
    // SAFETY: setsid between fork and exec: the watcher outlives this
    // session's tunnel.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map(|_| ())
}

/// `den agent machine-watch`: returns once it shut the machine down.
pub fn machine_watch_main(home: &Path) -> i32 {
    apply_docker_env(home);
    let started = SystemTime::now();
    loop {
        let Ok(Some(w)) = den_state::read_json::<MachineWatch>(&watch_file(home)) else {
            return 0; // the machine's state is gone: nothing to watch
        };
        if w.timeout_secs == 0 {
            return 0;
        }
        let timeout = Duration::from_secs(w.timeout_secs);
        let tick = (timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(30));
        std::thread::sleep(tick);
        if running(home, "remote-tunnel") {
            touch(home);
            continue;
        }
        let last = std::fs::metadata(activity_file(home)).and_then(|m| m.modified()).unwrap_or(started);
        if SystemTime::now().duration_since(last).unwrap_or_default() < timeout {
            continue;
        }
        eprintln!("den agent: no session for {}s: stopping the workspaces and the machine", w.timeout_secs);
        stop_all(home);
        let _ = std::fs::remove_file(watch_file(home));
        return shut_down(&w);
    }
}

/// Runs the provider's shutdown command.
fn shut_down(w: &MachineWatch) -> i32 {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(&w.shutdown);
    for (k, v) in &w.env {
        cmd.env(k, v);
    }
    match cmd.status() {
        Ok(s) if s.success() => return 0,
        Ok(s) => eprintln!("den agent: the shutdown command {s}"),
        Err(e) => eprintln!("den agent: running the shutdown command: {e}"),
    }
    1
}

/// Stops every running workspace container of this agent home.
fn stop_all(home: &Path) {
    let den = Den { home: den_state::Home::at(home), context: "default".into() };
    for context in crate::context::list(&den).unwrap_or_default() {
        let den = Den { home: den.home.clone(), context };
        for rec in crate::WorkspaceRecord::all(&den).unwrap_or_default() {
            if let Err(e) = crate::stop(&den, &rec.id, &mut crate::Quiet) {
                eprintln!("den agent: stopping {}: {e}", rec.id);
            }
        }
    }
}
