//! den's blocks in an OpenSSH client config, and its pinned host keys.
//!
//! A block is everything from `# den: begin ID` to `# den: end ID`; the rest
//! of the file is kept byte for byte. New blocks go at the top, because
//! OpenSSH takes the first value it finds for each option, so a later
//! `Host *` cannot override what den wrote.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{create_private_dir, replace_file, Result, StateError};

fn begin(id: &str) -> String {
    format!("# den: begin {id}")
}

fn end(id: &str) -> String {
    format!("# den: end {id}")
}

/// The file a path finally names, following symlinks (a dotfiles manager
/// often links ~/.ssh/config): den edits the target and keeps the link.
fn final_target(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p).map_err(StateError::io("reading link", &p))?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(StateError::io("following links", path)(std::io::Error::other("too many levels of symbolic links")))
}

/// A lock on the folder of a shared file (flock on the folder itself, so
/// no lock file is left beside the user's config). Every den edits these
/// files only while holding it: dens working on different workspaces at
/// once must not write over each other's edits.
struct FolderLock(File);

impl FolderLock {
    fn take(dir: &Path) -> Result<Self> {
        let f = File::open(dir).map_err(StateError::io("opening", dir))?;
        f.lock().map_err(StateError::io("locking", dir))?;
        Ok(FolderLock(f))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Reads, changes and writes a shared file under its folder's lock.
/// `change` gets the current text (empty when there is none) and returns
/// the new text, or `None` to leave the file alone. A new file is 0600 in a
/// folder made 0700; an existing one keeps its mode. `remove_if_empty`
/// deletes the file instead of leaving it empty.
fn edit(path: &Path, remove_if_empty: bool, change: impl FnOnce(&str) -> Option<String>) -> Result<()> {
    let target = final_target(path)?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    if !dir.exists() {
        create_private_dir(&dir)?;
    }
    let _lock = FolderLock::take(&dir)?;
    let (text, mode) = match std::fs::read(&target) {
        Ok(b) => {
            let mode = std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
            (String::from_utf8_lossy(&b).into_owned(), Some(mode))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(StateError::io("reading", &target)(e)),
    };
    let Some(new) = change(&text).filter(|n| *n != text) else { return Ok(()) };
    if new.is_empty() && remove_if_empty {
        // Only what den itself put there was in it: no file is as good.
        return std::fs::remove_file(&target).map_err(StateError::io("removing", &target));
    }
    // A new file is 0600; the folder (made above when missing) is left as
    // the user has it.
    replace_file(&target, new.as_bytes(), mode.unwrap_or(0o600))
}

fn read(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(StateError::io("reading", path)(e)),
    }
}

/// The byte range of `id`'s block (including its end line's newline).
fn find(text: &str, id: &str) -> Option<(usize, usize)> {
    let (b, e) = (begin(id), end(id));
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end_matches(['\n', '\r']);
        if start.is_none() && t == b {
            start = Some(offset);
        } else if let Some(s) = start {
            if t == e {
                return Some((s, offset + line.len()));
            }
        }
        offset += line.len();
    }
    None
}

/// Replaces `id`'s block with `body` (lines without the markers), or adds
/// it at the top. Creates the file (0600) and its folder (0700) if needed.
pub fn upsert_block(path: &Path, id: &str, body: &str) -> Result<()> {
    let mut block = format!("{}\n{}", begin(id), body);
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&end(id));
    block.push('\n');
    edit(path, false, |text| {
        Some(match find(text, id) {
            Some((s, e)) => format!("{}{}{}", &text[..s], block, &text[e..]),
            None if text.is_empty() => block,
            None => format!("{block}\n{text}"),
        })
    })
}

/// Removes `id`'s block (and the blank line den put after it). A file left
/// empty is removed: den made it, or only den's blocks were in it.
pub fn remove_block(path: &Path, id: &str) -> Result<()> {
    let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    edit(path, !linked, |text| {
        let (s, mut e) = find(text, id)?;
        if text[e..].starts_with('\n') {
            e += 1;
        }
        Some(format!("{}{}", &text[..s], &text[e..]))
    })
}

/// Pins `key` (`ssh-ed25519 AAAA…`) for `host` in a known_hosts file,
/// replacing what was pinned for it.
pub fn pin_host_key(path: &Path, host: &str, key: &str) -> Result<()> {
    edit(path, false, |text| {
        let mut lines: Vec<&str> = text.lines().filter(|l| l.split_whitespace().next() != Some(host)).collect();
        let line = format!("{host} {key}");
        lines.push(&line);
        let mut new = lines.join("\n");
        new.push('\n');
        Some(new)
    })
}

/// The pinned key for `host`, if any.
pub fn pinned_host_key(path: &Path, host: &str) -> Result<Option<String>> {
    Ok(read(path)?.lines().find_map(|l| {
        let mut it = l.splitn(2, ' ');
        (it.next() == Some(host)).then(|| it.next().unwrap_or("").trim().to_string())
    }))
}

pub fn unpin_host_key(path: &Path, host: &str) -> Result<()> {
    edit(path, false, |text| {
        if !text.lines().any(|l| l.split_whitespace().next() == Some(host)) {
            return None;
        }
        let lines: Vec<&str> = text.lines().filter(|l| l.split_whitespace().next() != Some(host)).collect();
        let mut new = lines.join("\n");
        if !new.is_empty() {
            new.push('\n');
        }
        Some(new)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const USER: &str = "# my config\nInclude ~/.ssh/conf.d/*\n\nHost *\n  ServerAliveInterval 30\n";

    #[test]
    fn adds_at_the_top_and_keeps_the_rest_byte_for_byte() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config");
        std::fs::write(&p, USER).unwrap();
        upsert_block(&p, "api", "Host api.den\n  User dev\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, format!("# den: begin api\nHost api.den\n  User dev\n# den: end api\n\n{USER}"));
        // replacing changes only the block
        upsert_block(&p, "api", "Host api.den\n  User root\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("User root") && !text.contains("User dev"));
        assert!(text.ends_with(USER));
        upsert_block(&p, "web", "Host web.den\n").unwrap();
        remove_block(&p, "api").unwrap();
        remove_block(&p, "web").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), USER);
        remove_block(&p, "ghost").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), USER);
    }

    #[test]
    fn creates_missing_file_and_folder_privately() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dot-ssh/config");
        upsert_block(&p, "x", "Host x.den\n").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "# den: begin x\nHost x.den\n# den: end x\n");
    }

    #[test]
    fn a_file_without_final_newline_survives() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config");
        std::fs::write(&p, "Host a\n  User b").unwrap();
        upsert_block(&p, "x", "Host x.den").unwrap();
        remove_block(&p, "x").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "Host a\n  User b");
    }

    #[test]
    fn known_hosts_pins() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("known_hosts");
        pin_host_key(&p, "a.den", "ssh-ed25519 AAA1").unwrap();
        pin_host_key(&p, "b.den", "ssh-ed25519 BBB").unwrap();
        pin_host_key(&p, "a.den", "ssh-ed25519 AAA2").unwrap();
        assert_eq!(pinned_host_key(&p, "a.den").unwrap().as_deref(), Some("ssh-ed25519 AAA2"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b.den ssh-ed25519 BBB\na.den ssh-ed25519 AAA2\n");
        unpin_host_key(&p, "a.den").unwrap();
        assert_eq!(pinned_host_key(&p, "a.den").unwrap(), None);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn concurrent_edits_lose_nothing() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("config");
        let kh = t.path().join("home/known_hosts");
        std::fs::write(&cfg, USER).unwrap();
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (cfg, kh) = (cfg.clone(), kh.clone());
                std::thread::spawn(move || {
                    for round in 0..5 {
                        upsert_block(&cfg, &format!("w{i}"), &format!("Host w{i}.den\n  User r{round}\n")).unwrap();
                        pin_host_key(&kh, &format!("w{i}.den"), &format!("ssh-ed25519 K{i}R{round}")).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let text = std::fs::read_to_string(&cfg).unwrap();
        for i in 0..20 {
            assert!(text.contains(&format!("Host w{i}.den\n  User r4\n")), "w{i} lost:\n{text}");
            assert_eq!(pinned_host_key(&kh, &format!("w{i}.den")).unwrap(), Some(format!("ssh-ed25519 K{i}R4")));
        }
        assert!(text.ends_with(USER));
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let (cfg, kh) = (cfg.clone(), kh.clone());
                std::thread::spawn(move || {
                    remove_block(&cfg, &format!("w{i}")).unwrap();
                    unpin_host_key(&kh, &format!("w{i}.den")).unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), USER);
        assert_eq!(std::fs::read_to_string(&kh).unwrap(), "");
    }

    #[test]
    fn a_symlinked_config_is_edited_through_the_link() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("dotfiles/ssh_config");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, USER).unwrap();
        let link = t.path().join("config");
        std::os::unix::fs::symlink("dotfiles/ssh_config", &link).unwrap();
        upsert_block(&link, "x", "Host x.den\n").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&real).unwrap().starts_with("# den: begin x\n"));
        remove_block(&link, "x").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), USER);
    }

    #[test]
    fn the_users_mode_is_kept_and_a_file_den_made_is_removed_again() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config");
        std::fs::write(&p, USER).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        upsert_block(&p, "x", "Host x.den\n").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        remove_block(&p, "x").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);

        let absent = t.path().join("new/config");
        upsert_block(&absent, "x", "Host x.den\n").unwrap();
        remove_block(&absent, "x").unwrap();
        assert!(!absent.exists(), "an ssh config den made is not left behind empty");
    }
}
