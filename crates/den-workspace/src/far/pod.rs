//! In a pod (kubernetes): the workspace's files arrive on a volume before
//! the workspace container starts, either cloned there (`den agent
//! clone-content`) or sent by den (`den agent receive-content`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use den_protocol::transfer::{unpack_into, GitClone, RemoteUpResult, CONTENT_DIR_ENV, CONTENT_MARKER};
use den_protocol::{Outcome, DATA_DIR, NO_CONTENT, SEND_CONTENT};

use super::clone_relay::CloneRelay;
use super::{answer, fail, on_path, ready, ToDen};
use crate::{RemoteSource, Reporter};

/// Where the workspace's files go ($DEN_CONTENT_DIR, the volume's mount
/// point).
fn content_target() -> Option<PathBuf> {
    std::env::var_os(CONTENT_DIR_ENV).map(PathBuf::from)
}

/// The marker (on the volume) that the files arrived.
fn mark_content_received() {
    let marker = Path::new(DATA_DIR).join(CONTENT_MARKER);
    let _ = std::fs::create_dir_all(DATA_DIR).and_then(|_| std::fs::write(marker, b""));
}

/// `den agent clone-content`: clones the workspace's repository (the
/// request) into $DEN_CONTENT_DIR, the volume's mount point, in place,
/// with the client's credentials and ssh through the clone relay. Without
/// git in the image it says [`Outcome::NoGit`] and den sends the files
/// instead.
pub fn clone_content_main() -> i32 {
    let Some(dir) = content_target() else {
        return fail(format!("{CONTENT_DIR_ENV} is not set"));
    };
    ready();
    let source = match read_clone_request() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let den_source::Spec::Git(g) = &source.spec else { return fail("bad request: not a git source".into()) };
    if !on_path("git") {
        println!("{NO_CONTENT}");
        return answer(&RemoteUpResult { outcome: Outcome::NoGit, ..Default::default() });
    }
    let data = Path::new(DATA_DIR);
    let relay = match std::fs::create_dir_all(data).and_then(|_| CloneRelay::start(data)) {
        Ok(r) => r,
        Err(e) => {
            println!("{NO_CONTENT}");
            return fail(format!("starting the clone relay: {e}"));
        }
    };
    let incoming = dir.join(".den-incoming");
    let _ = std::fs::remove_dir_all(&incoming);
    ToDen.phase("source", &format!("cloning {} in the pod", den_source::redact(&g.url)));
    let cloned = den_source::clone_with_env(
        g,
        source.strategy,
        source.recursive_submodules,
        &relay.env(),
        &incoming,
        &mut |l| ToDen.line(&format!("  │ {l}")),
    );
    relay.close();
    let cloned = match cloned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&incoming);
            return fail(e.to_string());
        }
    };
    if let Err(e) = take_clone(&incoming, g.subpath.as_deref(), &dir) {
        return fail(e);
    }
    mark_content_received();
    answer(&RemoteUpResult { outcome: Outcome::Done, commit: cloned.commit, ..Default::default() })
}

/// The request: the repository to clone, one line on stdin.
fn read_clone_request() -> Result<RemoteSource, String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading the request: {e}"))?;
    serde_json::from_str::<GitClone>(&line)
        .map_err(|e| e.to_string())
        .and_then(|g| RemoteSource::from_git_clone(&g).map_err(|e| e.to_string()))
        .map_err(|e| format!("bad request: {e}"))
}

/// The clone (or its `subpath`) in `incoming` becomes the content of
/// `dir`; `incoming` is removed either way.
fn take_clone(incoming: &Path, subpath: Option<&str>, dir: &Path) -> Result<(), String> {
    let from = match subpath {
        Some(sub) => incoming.join(sub),
        None => incoming.to_path_buf(),
    };
    // The subpath is a folder of the repository, not a link out of it.
    if !std::fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_dir_all(incoming);
        return Err(format!("the repository's `{}` is not a folder", subpath.unwrap_or("")));
    }
    let moved = move_entries(&from, dir);
    let _ = std::fs::remove_dir_all(incoming);
    moved.map_err(|e| format!("moving the clone into {}: {e}", dir.display()))
}

/// Moves what is in `from` into `dir`, over what has the same name there.
fn move_entries(from: &Path, dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let to = dir.join(entry.file_name());
        if to.symlink_metadata().is_ok() {
            crate::record::remove_dir(&to).or_else(|_| std::fs::remove_file(&to))?;
        }
        std::fs::rename(entry.path(), to)?;
    }
    Ok(())
}

/// `den agent receive-content`: unpacks the workspace's files into
/// $DEN_CONTENT_DIR, a volume's mount point, in place.
pub fn receive_content_main() -> i32 {
    let Some(dir) = content_target() else {
        return fail(format!("{CONTENT_DIR_ENV} is not set"));
    };
    ready();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    if let Err(e) = input.read_line(&mut line) {
        return fail(format!("reading the request: {e}"));
    }
    println!("{SEND_CONTENT}");
    let _ = std::io::stdout().flush();
    let r = std::fs::create_dir_all(&dir).and_then(|_| unpack_into(&mut input, &dir));
    match r {
        Ok(()) => {
            mark_content_received();
            answer(&RemoteUpResult { outcome: Outcome::Done, ..Default::default() })
        }
        Err(e) => fail(format!("unpacking the workspace's files into {}: {e}", dir.display())),
    }
}
