//! ed25519 keys: making them, writing and reading them in OpenSSH formats.

use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey, PublicKey};

use crate::SshError;

pub fn generate() -> Result<PrivateKey, SshError> {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| SshError::Key(e.to_string()))
}

/// The private key in OpenSSH format (what `ssh -i` reads).
pub fn private_openssh(key: &PrivateKey) -> Result<String, SshError> {
    key.to_openssh(LineEnding::LF).map(|z| z.to_string()).map_err(|e| SshError::Key(e.to_string()))
}

pub fn parse_private(text: &str) -> Result<PrivateKey, SshError> {
    PrivateKey::from_openssh(text).map_err(|e| SshError::Key(e.to_string()))
}

/// `ssh-ed25519 AAAA…` (no comment).
pub fn public_openssh(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh().unwrap_or_default().trim().to_string()
}

pub fn parse_public(text: &str) -> Result<PublicKey, SshError> {
    PublicKey::from_openssh(text.trim()).map_err(|e| SshError::Key(e.to_string()))
}

/// Reads a private key file, or makes one (0600) when it does not exist.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, SshError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_private(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            write_private(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes a private key file with mode 0600 (temp + rename).
pub fn write_private(path: &Path, key: &PrivateKey) -> Result<(), SshError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = private_openssh(key)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let k = generate().unwrap();
        let text = private_openssh(&k).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let back = parse_private(&text).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let pubtext = public_openssh(k.public_key());
        assert!(pubtext.starts_with("ssh-ed25519 "));
        assert_eq!(&parse_public(&pubtext).unwrap(), k.public_key());
    }

    #[test]
    fn load_or_create_is_stable_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("k/id_ed25519");
        let a = load_or_create(&p).unwrap();
        let b = load_or_create(&p).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
