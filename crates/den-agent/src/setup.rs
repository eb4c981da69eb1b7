//! `den agent setup`: make the container ready for the remote user and run
//! the lifecycle hooks that are due. Runs as root, once per `den up`.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use den_devcontainer::model::UserEnvProbe;
use den_devcontainer::substitute::{substitute_value, Context};
use indexmap::IndexMap;

use crate::hooks::{self, HookFailure, RunAs, Sink};
use crate::passwd::{self, GroupFile, PasswdFile};
use crate::protocol::{Hooks, Outcome, RemoteUser, SetupRequest, SetupResult, WorkspaceInfo, PHASE_PREFIX};

use crate::data_dir;

/// Writes to the client (stdout) and the agent log at once.
struct Tee {
    out: Box<dyn Write + Send>,
    log: Option<std::fs::File>,
}

impl Write for Tee {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some(l) = &mut self.log {
            // Phase markers are for the client's progress display only.
            if !b.starts_with(PHASE_PREFIX.as_bytes()) {
                let _ = l.write_all(b);
            }
        }
        self.out.write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs the setup; output lines go to `out`. Never panics on bad input:
/// every problem ends up in the result.
pub fn run(req: SetupRequest, out: Box<dyn Write + Send>) -> SetupResult {
    let data = data_dir();
    let log = open_private_log(&data.join("agent.log"));
    let sink: Sink = Arc::new(Mutex::new(Tee { out, log }));
    setup(&req, &data, &sink).unwrap_or_else(fail)
}

fn fail(error: String) -> SetupResult {
    SetupResult { outcome: Outcome::Failed { message: error }, ..Default::default() }
}

fn setup(req: &SetupRequest, data: &Path, sink: &Sink) -> Result<SetupResult, String> {
    phase(sink, "setup");
    let passwd_path = Path::new("/etc/passwd");
    let group_path = Path::new("/etc/group");
    let mut pw = PasswdFile::read(passwd_path).map_err(|e| format!("reading /etc/passwd: {e}"))?;
    let mut gr = GroupFile::read(group_path).map_err(|e| format!("reading /etc/group: {e}"))?;
    let spec = if req.remote_user.is_empty() { "root" } else { req.remote_user.as_str() };
    let mut user = passwd::resolve_user(&pw, spec)
        .ok_or_else(|| format!("remoteUser `{spec}` does not exist in the container's /etc/passwd"))?;

    if req.update_remote_user_uid && req.host_uid != 0 && user.uid != 0 && user.uid != req.host_uid {
        match update_uid(&mut pw, &mut gr, &user.name, req.host_uid, req.host_gid) {
            Ok(()) => {
                hooks::line(
                    sink,
                    "setup",
                    &format!("updated {}'s UID:GID to {}:{}", user.name, req.host_uid, req.host_gid),
                );
                let (old_uid, old_gid) = (user.uid, user.gid);
                user.uid = req.host_uid;
                user.gid = req.host_gid;
                chown_tree(Path::new(&user.home), old_uid, old_gid, user.uid, user.gid);
            }
            Err(why) => hooks::line(sink, "setup", &format!("not updating {}'s UID: {why}", user.name)),
        }
    }

    // The container's own environment (what docker exec gives us), for
    // ${containerEnv:…} and as the base of every session.
    let container_env = container_env();
    let lookup = |name: &str| container_env.get(name).cloned();
    let no_local = |_: &str| None;
    let ctx = Context {
        local_env: &no_local,
        local_workspace_folder: None,
        container_workspace_folder: None,
        devcontainer_id: None,
        container_env: Some(&lookup),
    };
    let mut remote_env = serde_json::to_value(&req.remote_env).unwrap_or_default();
    substitute_value(&mut remote_env, &ctx);
    let remote_env: IndexMap<String, Option<String>> = serde_json::from_value(remote_env).unwrap_or_default();
    let mut hooks_value = serde_json::to_value(&req.hooks).unwrap_or_default();
    substitute_value(&mut hooks_value, &ctx);
    let hooks: Hooks = serde_json::from_value(hooks_value).unwrap_or_default();

    let mut env = container_env.clone();
    env.insert("HOME".into(), user.home.clone());
    env.insert("USER".into(), user.name.clone());
    env.insert("LOGNAME".into(), user.name.clone());
    env.insert("SHELL".into(), user.shell.clone());
    let who = RunAs {
        uid: user.uid,
        gid: user.gid,
        groups: std::iter::once(user.gid).chain(gr.supplementary(&user.name)).collect(),
        cwd: req.workspace_folder.clone(),
        env: env.clone(),
    };
    let probe = req.user_env_probe.unwrap_or(UserEnvProbe::LoginInteractiveShell);
    let probed = probe_env(data, &user, probe, &who);
    for (k, v) in probed {
        env.insert(k, v);
    }
    // A login shell resets PATH for non-root users (/etc/profile); what the
    // image put on it (`ENV PATH=/opt/go/bin:$PATH`) comes back in.
    if let (Some(shell), Some(image)) = (env.get("PATH"), container_env.get("PATH")) {
        let merged = merge_paths(shell, image, user.uid == 0);
        env.insert("PATH".into(), merged);
    }
    for (k, v) in &remote_env {
        match v {
            Some(v) => {
                env.insert(k.clone(), v.clone());
            }
            None => {
                env.shift_remove(k);
            }
        }
    }
    if let Ok(agent) = std::env::current_exe() {
        if let Err(e) = crate::credentials::configure_git(Path::new("/etc/gitconfig"), &agent, req.credentials.git) {
            hooks::line(sink, "setup", &format!("git credentials from the client are not set up: /etc/gitconfig: {e}"));
        }
        crate::credentials::clear_stale_sockets(data);
        let home = Path::new(&user.home);
        if let Err(e) = crate::credentials::configure_docker(&agent, home, user.uid, user.gid, req.credentials.docker) {
            hooks::line(sink, "setup", &format!("docker credentials from the client are not set up: {e}"));
        }
    }
    if let Err(e) = crate::extensions::save(data, &req.vscode_extensions) {
        hooks::line(sink, "setup", &format!("customizations.vscode.extensions not kept: {e}"));
    }
    if !req.vscode_settings.is_empty() {
        for problem in write_vscode_settings(Path::new(&user.home), user.uid, user.gid, &req.vscode_settings) {
            hooks::line(sink, "setup", &problem);
        }
    }
    let remote_user = RemoteUser {
        name: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        home: user.home.clone(),
        shell: user.shell.clone(),
    };
    let info = WorkspaceInfo {
        workspace_id: req.workspace_id.clone(),
        workspace_folder: req.workspace_folder.clone(),
        user: remote_user.clone(),
        env: env.clone(),
    };
    let _ = write_file(&data.join("workspace.json"), &serde_json::to_vec_pretty(&info).unwrap_or_default());

    let who = RunAs { env, ..who };
    let host_key = crate::ssh::prepare_keys(data, &req.authorized_key)?;
    crate::inactivity::touch(data);
    if let Some(timeout) = crate::inactivity::parse_duration(&req.inactivity_timeout)? {
        crate::inactivity::ensure_watcher(data, timeout)?;
    }
    if crate::line::mounted() {
        if let Err(e) = crate::line::ensure_server(data) {
            hooks::line(sink, "setup", &e);
        }
    }
    let mut result = SetupResult { outcome: Outcome::Done, user: Some(remote_user), host_key, ..Default::default() };
    let markers = data.join("markers");
    // `postStartCommand` runs once per start of the container.
    let started_now = container_start_id();
    let started = started_now.as_str();
    let plan: [(&str, &Vec<_>, Option<&str>); 5] = [
        ("onCreateCommand", &hooks.on_create_command, Some("done")),
        ("updateContentCommand", &hooks.update_content_command, Some("done")),
        ("postCreateCommand", &hooks.post_create_command, Some("done")),
        ("postStartCommand", &hooks.post_start_command, Some(started)),
        ("postAttachCommand", &hooks.post_attach_command, None),
    ];
    let mut announced = false;
    for (name, commands, marker_value) in plan {
        let marker = markers.join(name);
        if let Some(v) = marker_value {
            if std::fs::read_to_string(&marker).is_ok_and(|m| m == v) {
                continue;
            }
        }
        if !commands.iter().all(|c| c.is_empty()) {
            if !announced {
                phase(sink, "hooks");
                announced = true;
            }
            if let Err(HookFailure { name: failed, code, detail }) = hooks::run_hook(name, commands, &who, sink) {
                result.outcome = Outcome::HookFailed { hook: failed, code, detail };
                return Ok(result);
            }
            result.ran.push(name.to_string());
        }
        if let Some(v) = marker_value.filter(|_| !hooks::aborting()) {
            let _ = write_file(&marker, v.as_bytes());
        }
    }
    Ok(result)
}

/// The container's own environment: this process's (a `docker exec`
/// gets the container's), or PID 1's when setup runs in an SSH session on
/// the direct line ([`den_protocol::CONTAINER_ENV_SWITCH`]).
fn container_env() -> IndexMap<String, String> {
    if std::env::var(den_protocol::CONTAINER_ENV_SWITCH).is_ok_and(|v| v == "pid1") {
        if let Ok(raw) = std::fs::read("/proc/1/environ") {
            return parse_environ(&raw);
        }
    }
    std::env::vars().collect()
}

/// NUL-separated `NAME=value` entries (/proc/PID/environ).
fn parse_environ(raw: &[u8]) -> IndexMap<String, String> {
    raw.split(|b| *b == 0)
        .filter_map(|e| std::str::from_utf8(e).ok()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Identifies the current start of the container: the boot and the start
/// time of its PID 1, which a restart changes. No client round trip needed.
pub fn container_start_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap_or_default();
    // Field 22 (starttime) counted after the parenthesised command name,
    // which may itself hold spaces.
    let start = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().nth(19).unwrap_or("");
    format!("{}-{start}", boot.trim())
}

fn phase(sink: &Sink, name: &str) {
    if let Ok(mut w) = sink.lock() {
        let _ = writeln!(w, "{PHASE_PREFIX}{name}");
    }
}

fn update_uid(pw: &mut PasswdFile, gr: &mut GroupFile, name: &str, uid: u32, gid: u32) -> Result<(), String> {
    if let Some(other) = pw.by_uid(uid).filter(|u| u.name != name) {
        return Err(format!("UID {uid} already belongs to {}", other.name));
    }
    let old_gid = pw.by_name(name).map(|u| u.gid).unwrap_or(gid);
    pw.set_ids(name, uid, gid);
    // The user's primary group follows, unless a group with that gid exists
    // already (then the user simply joins it).
    if gr.by_gid(gid).is_none() && old_gid != gid {
        gr.set_gid(old_gid, gid);
        passwd::replace_file(Path::new("/etc/group"), &gr.text()).map_err(|e| format!("writing /etc/group: {e}"))?;
    }
    passwd::replace_file(Path::new("/etc/passwd"), &pw.text()).map_err(|e| format!("writing /etc/passwd: {e}"))
}

/// Gives the files of the old owner in `dir` to the new one (bounded walk,
/// symlinks not followed).
fn chown_tree(dir: &Path, old_uid: u32, old_gid: u32, uid: u32, gid: u32) {
    if dir == Path::new("/") || !dir.is_dir() {
        return;
    }
    let mut stack = vec![dir.to_path_buf()];
    let mut budget = 200_000usize;
    while let Some(p) = stack.pop() {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.uid() == old_uid {
            let g = if meta.gid() == old_gid { gid } else { meta.gid() };
            let _ = std::os::unix::fs::lchown(&p, Some(uid), Some(g));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                budget = budget.saturating_sub(1);
                if budget == 0 {
                    return;
                }
                stack.push(e.path());
            }
        }
    }
}

/// The user's environment as their shell sets it up (`userEnvProbe`),
/// cached per container start, user and probe kind.
fn probe_env(data: &Path, user: &passwd::User, probe: UserEnvProbe, who: &RunAs) -> IndexMap<String, String> {
    let flags = match probe {
        UserEnvProbe::None => return IndexMap::new(),
        UserEnvProbe::LoginShell => "-lc",
        UserEnvProbe::InteractiveShell => "-ic",
        UserEnvProbe::LoginInteractiveShell => "-lic",
    };
    let key = format!("{}|{}|{}|{flags}", container_start_id(), user.name, user.uid);
    let cache = data.join("probed-env.json");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Ok((k, env)) = serde_json::from_str::<(String, IndexMap<String, String>)>(&text) {
            if k == key {
                return env;
            }
        }
    }
    let shell = if Path::new(&user.shell).is_file() { user.shell.clone() } else { "/bin/sh".to_string() };
    let script = "printf '\\nDEN_ENV_BEGIN\\n'; cat /proc/self/environ; printf '\\nDEN_ENV_END\\n'";
    let argv = vec![shell, flags.to_string(), script.to_string()];
    let env = run_probe(&argv, who).unwrap_or_default();
    let _ = write_file(&cache, &serde_json::to_vec(&(key, &env)).unwrap_or_default());
    env
}

fn run_probe(argv: &[String], who: &RunAs) -> Option<IndexMap<String, String>> {
    use std::process::Stdio;
    let mut c = hooks::command_as(argv, who);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    // A profile that hangs must not hang `up`: give it 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = reader.join().ok()?;
    parse_probe(&out)
}

/// Writes `customizations.vscode.settings` into each VS Code family
/// server's machine settings (`DIR/data/Machine/settings.json`), which the
/// editor applies to the workspace: keys already there stay unless the
/// config sets them. A file den cannot read as JSON(C) is left alone and
/// said. Folders and files den makes belong to the user. Returns problems.
pub fn write_vscode_settings(
    home: &Path,
    uid: u32,
    gid: u32,
    settings: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in crate::extensions::VSCODE_SERVER_DIRS {
        let machine = home.join(dir).join("data").join("Machine");
        let file = machine.join("settings.json");
        let made = [home.join(dir), home.join(dir).join("data"), machine.clone()];
        if let Err(e) = std::fs::create_dir_all(&machine) {
            problems.push(format!("editor settings not written: {}: {e}", machine.display()));
            continue;
        }
        for d in &made {
            let _ = std::os::unix::fs::chown(d, Some(uid), Some(gid));
        }
        let mut current = match std::fs::read_to_string(&file) {
            Ok(text) if !text.trim().is_empty() => match den_devcontainer::jsonc::parse(&text, &file) {
                Ok(doc) => match doc.value {
                    serde_json::Value::Object(m) => m,
                    _ => {
                        problems.push(format!("editor settings not written: {} is not a JSON object", file.display()));
                        continue;
                    }
                },
                Err(e) => {
                    problems.push(format!("editor settings not written: {e}"));
                    continue;
                }
            },
            _ => serde_json::Map::new(),
        };
        current.extend(settings.clone());
        let text = serde_json::to_vec_pretty(&serde_json::Value::Object(current)).unwrap_or_default();
        match write_file(&file, &text) {
            Ok(()) => {
                let _ = std::os::unix::fs::chown(&file, Some(uid), Some(gid));
            }
            Err(e) => problems.push(format!("editor settings not written: {}: {e}", file.display())),
        }
    }
    problems
}

/// The user's shell PATH with the container's PATH entries it lacks put
/// back, each right after the entry it follows in the container's PATH (or
/// in front), in the container's order. `sbin` folders stay out for
/// non-root users, as the reference implementation does.
pub fn merge_paths(shell: &str, container: &str, root: bool) -> String {
    let mut out: Vec<&str> = shell.split(':').filter(|p| !p.is_empty()).collect();
    let mut at = 0;
    for entry in container.split(':').filter(|p| !p.is_empty()) {
        match out.iter().position(|p| *p == entry) {
            Some(i) => at = i + 1,
            None if root || !is_sbin(entry) => {
                out.insert(at, entry);
                at += 1;
            }
            None => {}
        }
    }
    out.join(":")
}

fn is_sbin(dir: &str) -> bool {
    dir.trim_end_matches('/').rsplit('/').next() == Some("sbin")
}

/// The NUL-separated environment between the probe's markers.
fn parse_probe(out: &[u8]) -> Option<IndexMap<String, String>> {
    let text = String::from_utf8_lossy(out);
    let start = text.find("\nDEN_ENV_BEGIN\n")? + "\nDEN_ENV_BEGIN\n".len();
    let end = text[start..].find("\nDEN_ENV_END\n")? + start;
    let mut env = IndexMap::new();
    for entry in text[start..end].split('\0') {
        if let Some((k, v)) = entry.split_once('=') {
            // Shell bookkeeping that must not leak into sessions.
            if !matches!(k, "_" | "SHLVL" | "PWD" | "OLDPWD") && !k.is_empty() {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    Some(env)
}

/// Writes one of the agent's files, readable by its owner only: they hold
/// the remote user's environment (remoteEnv values, what their shell
/// profile sets), which other users of the container must not read.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The agent log (hook output), owner-only like the other files; a log an
/// older agent made world-readable is tightened.
fn open_private_log(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).ok()?;
    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
    Some(f)
}

/// The body of `den agent setup`: read the request from stdin, wait for
/// any other setup in this container, run, print the result. End of stdin
/// before the result means den is gone: the running hook is ended and the
/// agent exits (see [`crate::protocol`]).
pub fn main() -> i32 {
    use crate::protocol::{READY, RESULT_PREFIX};
    use std::io::BufRead;
    println!("{READY}");
    let _ = std::io::stdout().flush();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut line = String::new();
    let req: SetupRequest = match stdin.read_line(&mut line) {
        Ok(n) if n > 0 => match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("den agent: the setup request is not valid: {e}");
                return 2;
            }
        },
        _ => {
            eprintln!("den agent: no setup request on stdin (this command is run by `den up`)");
            return 2;
        }
    };
    // Watch for den going away from here on, waiting for the lock included.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdin, &mut std::io::sink());
        hooks::abort_all();
        std::process::exit(CLIENT_GONE);
    });
    let _lock = match setup_lock(&data_dir()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("den agent: {e}");
            return 1;
        }
    };
    let result = run(req, Box::new(std::io::stdout()));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{RESULT_PREFIX}{}", serde_json::to_string(&result).unwrap_or_default());
    let _ = out.flush();
    0
}

/// The agent's exit code when den went away during setup.
pub const CLIENT_GONE: i32 = 75;

/// One setup at a time in a container: a second `up` (whose first one was
/// killed a moment ago, say) waits here instead of starting the same hooks
/// beside it. den-state's lock (flock; the kernel drops it when the holder
/// exits), in a folder of its own: the lock makes its folder 0700, and the
/// data folder must stay reachable for the credentials sockets.
fn setup_lock(data: &Path) -> Result<den_state::Lock, String> {
    den_state::Lock::acquire(&data.join("locks").join("setup.lock"), |w| {
        let pid = w.holder.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        println!("another den up is still setting this container up (agent pid {pid}); waiting for it");
        let _ = std::io::stdout().flush();
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_settings_merge_into_each_servers_machine_settings() {
        let home = tempfile::tempdir().unwrap();
        let machine = home.path().join(".cursor-server/data/Machine");
        std::fs::create_dir_all(&machine).unwrap();
        std::fs::write(
            machine.join("settings.json"),
            "{\n  // mine\n  \"files.eol\": \"\\n\", \"editor.tabSize\": 8\n}\n",
        )
        .unwrap();
        let me = (unsafe { libc::getuid() }, unsafe { libc::getgid() });
        let settings = serde_json::json!({"editor.tabSize": 3}).as_object().unwrap().clone();
        assert!(write_vscode_settings(home.path(), me.0, me.1, &settings).is_empty());
        let read = |dir: &str| -> serde_json::Value {
            let p = home.path().join(dir).join("data/Machine/settings.json");
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        assert_eq!(read(".vscode-server"), serde_json::json!({"editor.tabSize": 3}));
        assert_eq!(read(".cursor-server"), serde_json::json!({"files.eol": "\n", "editor.tabSize": 3}));
        // Not JSON: left alone, and said.
        std::fs::write(machine.join("settings.json"), "not json").unwrap();
        let problems = write_vscode_settings(home.path(), me.0, me.1, &settings);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(std::fs::read_to_string(machine.join("settings.json")).unwrap(), "not json");
    }

    #[test]
    fn the_images_path_comes_back_after_a_login_shell() {
        let login = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games";
        let image = "/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/go/bin";
        assert_eq!(
            merge_paths(login, image, false),
            "/opt/tool/bin:/usr/local/bin:/usr/bin:/bin:/go/bin:/usr/local/games:/usr/games"
        );
        assert_eq!(
            merge_paths(login, image, true),
            "/opt/tool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/go/bin:/usr/local/games:/usr/games"
        );
        // Nothing to add: the shell's PATH as it is.
        assert_eq!(merge_paths("/a:/b", "/b:/a", false), "/a:/b");
        assert_eq!(merge_paths("/home/u/.cargo/bin:/usr/bin", "/usr/bin", false), "/home/u/.cargo/bin:/usr/bin");
    }

    #[test]
    fn agent_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("workspace.json");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&p, b"{\"env\": {\"TOKEN\": \"s\"}}").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let log = d.path().join("agent.log");
        std::fs::write(&log, b"").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private_log(&log).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn an_environ_file_is_read_as_names_and_values() {
        let env = parse_environ(b"PATH=/usr/bin:/bin\0EMPTY=\0WITH=eq=ual\0\0junk\0");
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("PATH", "/usr/bin:/bin"), ("EMPTY", ""), ("WITH", "eq=ual")]);
    }

    #[test]
    fn start_id_is_stable_within_a_start() {
        let a = container_start_id();
        assert_eq!(a, container_start_id());
        assert!(a.len() > 10, "{a}");
    }

    #[test]
    fn probe_output_is_parsed_between_markers() {
        let out =
            b"motd junk\n\nDEN_ENV_BEGIN\nPATH=/usr/bin:/x\0HOME=/home/u\0_=/usr/bin/cat\0EMPTY=\0\nDEN_ENV_END\nbye";
        let env = parse_probe(out).unwrap();
        assert_eq!(env["PATH"], "/usr/bin:/x");
        assert_eq!(env["EMPTY"], "");
        assert!(!env.contains_key("_"));
        assert!(parse_probe(b"no markers").is_none());
    }
}
