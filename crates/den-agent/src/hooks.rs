//! Running lifecycle commands: as the remote user, in the workspace folder,
//! output streamed line by line with the hook's name in front.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use den_devcontainer::{LifecycleCommand, Step};
use indexmap::IndexMap;

/// Who runs a command and with what.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: String,
    pub env: IndexMap<String, String>,
}

/// Where output lines go (the client, and the log file).
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// A hook failed: its name (with the parallel command's name), exit code,
/// and what to say besides "NAME failed with exit code CODE" (it was
/// interrupted, could not start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    pub name: String,
    pub code: i32,
    pub detail: Option<String>,
}

/// Runs one hook: each of its commands in order (image metadata first); a
/// parallel object's commands together. Stops at the first failure.
pub fn run_hook(hook: &str, commands: &[LifecycleCommand], who: &RunAs, sink: &Sink) -> Result<(), HookFailure> {
    for cmd in commands {
        let steps = cmd.steps();
        if steps.is_empty() {
            continue;
        }
        let handles: Vec<_> = steps
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(name, step)| {
                let label = match name {
                    Some(n) => format!("{hook}:{n}"),
                    None => hook.to_string(),
                };
                let (who, sink) = (who.clone(), sink.clone());
                std::thread::spawn(move || run_step(&label, &step, &who, &sink))
            })
            .collect();
        let mut first_failure = None;
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(HookFailure { name: hook.into(), code: 1, detail: Some("the runner panicked".into()) })
            });
            if let Err(f) = r {
                first_failure.get_or_insert(f);
            }
        }
        if let Some(f) = first_failure {
            return Err(f);
        }
    }
    Ok(())
}

/// The hook commands running now (their process groups), and whether
/// [`abort_all`] has begun: from then on no command starts, and none that
/// ends counts as done, whatever its exit status (a command may catch
/// SIGTERM and exit 0).
struct Running {
    groups: Vec<i32>,
    aborting: bool,
}

static RUNNING: Mutex<Running> = Mutex::new(Running { groups: Vec::new(), aborting: false });

fn running() -> std::sync::MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// True once [`abort_all`] has begun: nothing may be marked done.
pub fn aborting() -> bool {
    running().aborting
}

fn interrupted(label: &str) -> HookFailure {
    HookFailure { name: label.into(), code: 143, detail: Some(format!("{label} was interrupted: den went away")) }
}

/// Ends every hook command that runs now, with all it started: SIGTERM to
/// each one's process group, then SIGKILL to what is left after 3 s. For
/// when den is gone and the hook must not outlive the `up` that ran it.
pub fn abort_all() {
    let groups = {
        let mut r = running();
        r.aborting = true;
        r.groups.clone()
    };
    let alive = |g: i32| unsafe { libc::kill(-g, 0) } == 0;
    for &g in &groups {
        // SAFETY: kill(2) with a negative pid signals that process group.
        unsafe { libc::kill(-g, libc::SIGTERM) };
    }
    for _ in 0..30 {
        if !groups.iter().any(|&g| alive(g)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for &g in &groups {
        unsafe { libc::kill(-g, libc::SIGKILL) };
    }
}

fn run_step(label: &str, step: &Step, who: &RunAs, sink: &Sink) -> Result<(), HookFailure> {
    let argv = step.argv();
    line(sink, label, &format!("running: {}", describe(step)));
    let mut c = command_as(&argv, who);
    // Its own process group, so that [`abort_all`] reaches whatever the
    // command starts.
    c.process_group(0);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Spawned and registered under the lock, so that abort_all either sees
    // this command or keeps it from starting.
    let mut guard = running();
    if guard.aborting {
        return Err(interrupted(label));
    }
    let mut child = c.spawn().map_err(|e| HookFailure {
        name: label.into(),
        code: 127,
        detail: Some(format!("{label}: cannot start `{}`: {e}", argv[0])),
    })?;
    let pgid = child.id() as i32;
    guard.groups.push(pgid);
    drop(guard);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let t1 = pump(out, label.to_string(), sink.clone());
    let t2 = pump(err, label.to_string(), sink.clone());
    let status = child.wait();
    let aborted = {
        let mut r = running();
        r.groups.retain(|&g| g != pgid);
        r.aborting
    };
    let status = status.map_err(|e| HookFailure { name: label.into(), code: 1, detail: Some(e.to_string()) })?;
    let _ = t1.join();
    let _ = t2.join();
    if aborted {
        return Err(interrupted(label));
    }
    if status.success() {
        Ok(())
    } else {
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Err(HookFailure { name: label.into(), code, detail: None })
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Shell(s) => s.clone(),
        Step::Exec(v) => v.join(" "),
    }
}

/// A `Command` that runs `argv` as `who` (uid, gid, supplementary groups),
/// in `who.cwd` (or `/` when that does not exist) with exactly `who.env`.
pub fn command_as(argv: &[String], who: &RunAs) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]).env_clear().envs(&who.env);
    let cwd = if std::path::Path::new(&who.cwd).is_dir() { who.cwd.as_str() } else { "/" };
    c.current_dir(cwd);
    let me = unsafe { libc::getuid() };
    if me == 0 && (who.uid != 0 || who.gid != 0) {
        let (uid, gid, groups): (libc::uid_t, libc::gid_t, Vec<libc::gid_t>) = (who.uid, who.gid, who.groups.clone());
        // SAFETY: only async-signal-safe calls, in the child between fork
        // and exec. std's own uid()/gid() would drop the uid before our
        // closures run, and setgroups needs root, so all three happen here,
        // in the order that works: groups, gid, uid.
        unsafe {
            c.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c
}

fn pump(r: impl Read + Send + 'static, label: String, sink: Sink) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    line(&sink, &label, text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

/// Writes one prefixed line to the sink.
pub fn line(sink: &Sink, label: &str, text: &str) {
    if let Ok(mut w) = sink.lock() {
        let _ = writeln!(w, "[{}] {text}", den_process::text::one_line(label));
        let _ = w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> RunAs {
        RunAs {
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            groups: vec![],
            cwd: "/".into(),
            env: [("PATH".to_string(), std::env::var("PATH").unwrap())].into_iter().collect(),
        }
    }

    fn cmd(v: serde_json::Value) -> LifecycleCommand {
        LifecycleCommand::try_from(v).unwrap()
    }

    fn capture() -> (Sink, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        (Arc::new(Mutex::new(W(buf.clone()))), buf)
    }

    #[test]
    fn output_is_prefixed_and_forms_run() {
        let (sink, buf) = capture();
        run_hook(
            "postCreateCommand",
            &[cmd(json!("echo one; echo two >&2")), cmd(json!(["echo", "a b"])), cmd(json!({"x": "echo par"}))],
            &me(),
            &sink,
        )
        .unwrap();
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(out.contains("[postCreateCommand] one\n"), "{out}");
        assert!(out.contains("[postCreateCommand] two\n"), "{out}");
        assert!(out.contains("[postCreateCommand] a b\n"), "{out}");
        assert!(out.contains("[postCreateCommand:x] par\n"), "{out}");
    }

    #[test]
    fn parallel_commands_run_together() {
        let (sink, _) = capture();
        // Each waits for the other's file: only concurrent runs can finish.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let c = cmd(json!({
            "a": format!("touch {d}/a; i=0; while [ ! -e {d}/b ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; [ -e {d}/b ]"),
            "b": format!("touch {d}/b; i=0; while [ ! -e {d}/a ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; [ -e {d}/a ]"),
        }));
        run_hook("postStartCommand", &[c], &me(), &sink).unwrap();
    }

    #[test]
    fn failure_stops_with_name_and_code() {
        let (sink, buf) = capture();
        let e =
            run_hook("onCreateCommand", &[cmd(json!("exit 7")), cmd(json!("echo never"))], &me(), &sink).unwrap_err();
        assert_eq!((e.name.as_str(), e.code), ("onCreateCommand", 7));
        assert!(!String::from_utf8(buf.lock().unwrap().clone()).unwrap().contains("never"));
        let e =
            run_hook("postCreateCommand", &[cmd(json!({"ok": "true", "bad": ["sh", "-c", "exit 3"]}))], &me(), &sink)
                .unwrap_err();
        assert_eq!((e.name.as_str(), e.code), ("postCreateCommand:bad", 3));
        let e = run_hook("postCreateCommand", &[cmd(json!(["/nonexistent/prog"]))], &me(), &sink).unwrap_err();
        assert_eq!(e.code, 127);
    }

    #[test]
    fn array_form_does_not_use_a_shell() {
        let (sink, buf) = capture();
        run_hook("x", &[cmd(json!(["echo", "$HOME;", "`id`"]))], &me(), &sink).unwrap();
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(out.contains("[x] $HOME; `id`\n"), "{out}");
    }
}
