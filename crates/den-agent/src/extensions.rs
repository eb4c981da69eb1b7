//! `customizations.vscode.extensions`, installed the way Remote-SSH's
//! default extensions are: into each VS Code family server that appears in
//! the remote user's home, with the server's own `--install-extension`.
//!
//! Setup keeps the list in the agent's folder. Each SSH connection starts
//! the watcher (`den agent vscode-extensions`) unless it runs: it looks for
//! servers every second for ten minutes after the last one it found, and
//! installs the list once per server (a marker in the server's folder).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use den_protocol::WorkspaceInfo;

/// Where the VS Code family's servers keep their data in the remote
/// user's home (VS Code, Insiders, Cursor, Windsurf, VSCodium, Positron).
pub const VSCODE_SERVER_DIRS: [&str; 6] = [
    ".vscode-server",
    ".vscode-server-insiders",
    ".cursor-server",
    ".windsurf-server",
    ".vscodium-server",
    ".positron-server",
];

/// How long the watcher waits for a (next) server before it exits.
const WATCH_FOR: Duration = Duration::from_secs(600);

fn list_file(data: &Path) -> PathBuf {
    data.join("vscode-extensions.json")
}

/// Keeps (or, empty, removes) the list for the watcher.
pub fn save(data: &Path, extensions: &[String]) -> std::io::Result<()> {
    if extensions.is_empty() {
        match std::fs::remove_file(list_file(data)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => return Ok(()),
        }
    }
    std::fs::write(list_file(data), serde_json::to_vec(extensions).unwrap_or_default())
}

fn load(data: &Path) -> Vec<String> {
    let list: Vec<String> =
        std::fs::read(list_file(data)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    list.into_iter().filter(|e| is_extension_id(e)).collect()
}

/// The server programs under `home`: `DIR/bin/COMMIT/bin/*-server` (the
/// older layout) and `DIR/cli/servers/*/server/bin/*-server`.
pub fn servers(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in VSCODE_SERVER_DIRS {
        let base = home.join(dir);
        let roots = [base.join("bin"), base.join("cli/servers")];
        for (i, root) in roots.iter().enumerate() {
            for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
                let bin = if i == 0 { entry.path().join("bin") } else { entry.path().join("server/bin") };
                for program in std::fs::read_dir(&bin).into_iter().flatten().flatten() {
                    let name = program.file_name().to_string_lossy().into_owned();
                    if name.ends_with("-server") && program.path().is_file() {
                        out.push(program.path());
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The marker in the agent's own folder (never in the user's, where a
/// link could point root's write elsewhere): the list installed into that
/// server.
fn marker(data: &Path, server: &Path) -> PathBuf {
    data.join("vscode-extensions.done").join(den_state::path_tag(server))
}

pub use den_protocol::ids::is_extension_id;

/// Starts the watcher when there is a list and none runs (from the SSH
/// server, at every connection).
pub fn ensure_watcher(data: &Path) {
    if load(data).is_empty() {
        return;
    }
    let lock = data.join("vscode-extensions.lock");
    match den_state::Lock::try_acquire(&lock) {
        Ok(Some(l)) => drop(l),
        _ => return,
    }
    let Ok(exe) = std::env::current_exe() else { return };
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["agent", "vscode-extensions"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid between fork and exec: it outlives the connection.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let _ = cmd.spawn();
}

/// `den agent vscode-extensions`: the watcher.
pub fn watch_main() -> i32 {
    let data = crate::data_dir();
    let Ok(Some(_lock)) = den_state::Lock::try_acquire(&data.join("vscode-extensions.lock")) else { return 0 };
    let Some(info) =
        std::fs::read(data.join("workspace.json")).ok().and_then(|b| serde_json::from_slice::<WorkspaceInfo>(&b).ok())
    else {
        return 0;
    };
    let home = PathBuf::from(&info.user.home);
    let mut last_found = Instant::now();
    let mut failures: std::collections::HashMap<PathBuf, u32> = Default::default();
    while last_found.elapsed() < WATCH_FOR {
        let wanted = load(&data);
        if wanted.is_empty() {
            return 0;
        }
        let text = wanted.join("\n");
        for server in servers(&home) {
            let mark = marker(&data, &server);
            if std::fs::read_to_string(&mark).is_ok_and(|t| t == text) {
                continue;
            }
            // A server that keeps failing is tried three times, not forever.
            let tries = failures.entry(server.clone()).or_insert(0u32);
            if *tries >= 3 {
                continue;
            }
            last_found = Instant::now();
            if install(&server, &wanted, &info) {
                let _ = std::fs::create_dir_all(mark.parent().expect("a folder"))
                    .and_then(|_| std::fs::write(&mark, &text));
            } else {
                *tries += 1;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    0
}

/// `SERVER --install-extension A --install-extension B …` as the remote
/// user; true when it worked.
fn install(server: &Path, extensions: &[String], info: &WorkspaceInfo) -> bool {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(server);
    for e in extensions {
        cmd.arg("--install-extension").arg(e);
    }
    cmd.env("HOME", &info.user.home).current_dir(&info.user.home);
    for (k, v) in &info.env {
        if k == "PATH" {
            cmd.env(k, v);
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && info.user.uid != 0 {
        cmd.uid(info.user.uid).gid(info.user.gid);
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_in_both_layouts_and_every_family() {
        let home = tempfile::tempdir().unwrap();
        let make = |rel: &str| {
            let p = home.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
        };
        make(".vscode-server/bin/abc/bin/code-server");
        make(".vscode-server/cli/servers/Stable-def/server/bin/code-server");
        make(".cursor-server/bin/123/bin/cursor-server");
        make(".vscode-server/bin/abc/bin/not-a-server.sh");
        let found: Vec<String> =
            servers(home.path()).iter().map(|p| p.strip_prefix(home.path()).unwrap().display().to_string()).collect();
        assert_eq!(
            found,
            [
                ".cursor-server/bin/123/bin/cursor-server",
                ".vscode-server/bin/abc/bin/code-server",
                ".vscode-server/cli/servers/Stable-def/server/bin/code-server"
            ]
        );
        let m = marker(Path::new("/var/lib/den"), &home.path().join(".vscode-server/bin/abc/bin/code-server"));
        assert!(m.starts_with("/var/lib/den/vscode-extensions.done"), "{}", m.display());
    }

    #[test]
    fn the_list_is_kept_and_removed() {
        let d = tempfile::tempdir().unwrap();
        save(d.path(), &["a.b".into()]).unwrap();
        assert_eq!(load(d.path()), ["a.b"]);
        save(d.path(), &[]).unwrap();
        assert!(load(d.path()).is_empty());
        save(d.path(), &[]).unwrap();
    }
}
