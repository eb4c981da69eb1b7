//! SSH over any byte stream.

pub mod client;
pub mod keys;
mod pipe;
mod pty;
pub mod server;
pub mod sftp;
mod transport;
pub mod tunnel;

pub use russh::keys::{PrivateKey, PublicKey};

/// The handle that accepts or rejects a channel the peer opens.
pub(crate) type ChannelOpenReply<M> = russh::ChannelOpenHandleInner<M>;

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

/// Ciphers in the order den asks for them: AES-GCM first, because ring's
/// AES-NI code is the fastest here and the tunnel is about throughput.
pub(crate) fn preferred() -> russh::Preferred {
    use russh::cipher;
    const CIPHERS: &[cipher::Name] = &[
        cipher::AES_128_GCM,
        cipher::AES_256_GCM,
        cipher::CHACHA20_POLY1305,
        cipher::AES_256_CTR,
        cipher::AES_128_CTR,
    ];
    russh::Preferred { cipher: std::borrow::Cow::Borrowed(CIPHERS), ..Default::default() }
}

/// The same order for OpenSSH clients (a `Ciphers` line in the ssh config).
pub const OPENSSH_CIPHERS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com";

/// Gives a pipe a 1 MiB buffer (the unprivileged maximum by default), so a
/// bulk stream needs fewer system calls and context switches. Not a pipe,
/// or not allowed: nothing happens.
pub fn grow_pipe(fd: std::os::fd::RawFd) {
    // SAFETY: F_SETPIPE_SZ only reads the integer argument.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
}
