//! den's blocks in an OpenSSH client config, and its pinned host keys.
//!
//! A block is everything from `# den: begin ID` to `# den: end ID`; the rest
//! of the file is kept byte for byte. New blocks go at the top, because
//! OpenSSH takes the first value it finds for each option, so a later
//! `Host *` cannot override what den wrote.

use std::path::Path;

use crate::{atomic_write, create_private_dir, Result, StateError};

fn begin(id: &str) -> String {
    format!("# den: begin {id}")
}

fn end(id: &str) -> String {
    format!("# den: end {id}")
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
    let text = read(path)?;
    let mut block = format!("{}\n{}", begin(id), body);
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&end(id));
    block.push('\n');
    let new = match find(&text, id) {
        Some((s, e)) => format!("{}{}{}", &text[..s], block, &text[e..]),
        None if text.is_empty() => block,
        None => format!("{block}\n{text}"),
    };
    if new == text {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_private_dir(dir)?;
    }
    atomic_write(path, new.as_bytes())
}

/// Removes `id`'s block (and the blank line den put after it).
pub fn remove_block(path: &Path, id: &str) -> Result<()> {
    let text = read(path)?;
    let Some((s, mut e)) = find(&text, id) else { return Ok(()) };
    if text[e..].starts_with('\n') {
        e += 1;
    }
    atomic_write(path, format!("{}{}", &text[..s], &text[e..]).as_bytes())
}

/// Pins `key` (`ssh-ed25519 AAAA…`) for `host` in a known_hosts file,
/// replacing what was pinned for it.
pub fn pin_host_key(path: &Path, host: &str, key: &str) -> Result<()> {
    let text = read(path)?;
    let mut lines: Vec<&str> = text.lines().filter(|l| l.split_whitespace().next() != Some(host)).collect();
    let line = format!("{host} {key}");
    lines.push(&line);
    let mut new = lines.join("\n");
    new.push('\n');
    if new == text {
        return Ok(());
    }
    atomic_write(path, new.as_bytes())
}

/// The pinned key for `host`, if any.
pub fn pinned_host_key(path: &Path, host: &str) -> Result<Option<String>> {
    Ok(read(path)?.lines().find_map(|l| {
        let mut it = l.splitn(2, ' ');
        (it.next() == Some(host)).then(|| it.next().unwrap_or("").trim().to_string())
    }))
}

pub fn unpin_host_key(path: &Path, host: &str) -> Result<()> {
    let text = read(path)?;
    if !text.lines().any(|l| l.split_whitespace().next() == Some(host)) {
        return Ok(());
    }
    let lines: Vec<&str> = text.lines().filter(|l| l.split_whitespace().next() != Some(host)).collect();
    let mut new = lines.join("\n");
    if !new.is_empty() {
        new.push('\n');
    }
    atomic_write(path, new.as_bytes())
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
}
