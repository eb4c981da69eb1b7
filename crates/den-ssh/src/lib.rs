//! SSH over any byte stream.

pub mod client;
pub mod keys;
mod pipe;
mod pty;
pub mod server;
pub mod sftp;

pub use russh::keys::{PrivateKey, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("ssh: {0}")]
    Protocol(#[from] russh::Error),
    #[error("ssh key: {0}")]
    Key(String),
    #[error("the workspace's host key does not match the pinned one ({0}); if the workspace was recreated, run `den up` again")]
    HostKeyMismatch(String),
    #[error("authentication as `{0}` was refused")]
    AuthRefused(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}
