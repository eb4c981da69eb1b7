//! The agent: what den does on the far side. In a container ([`setup`],
//! [`hooks`], [`ssh`], [`credentials`], [`inactivity`]) it sets the workspace
//! up and serves SSH; on a machine ([`machine`]) it keeps a den state of its
//! own and brings containers up there with den-workspace.

pub mod clone_relay;
pub mod credentials;
pub mod extensions;
pub mod hooks;
pub mod inactivity;
pub mod machine;
pub mod passwd;
pub mod ports;
pub mod setup;
pub mod ssh;

pub use den_protocol as protocol;
pub use den_protocol::DATA_DIR;

/// Where the agent's files live: /var/lib/den, or /tmp/den when that
/// cannot be made (a read-only image).
pub fn data_dir() -> std::path::PathBuf {
    let preferred = std::path::Path::new(DATA_DIR);
    if std::fs::create_dir_all(preferred.join("markers")).is_ok() {
        return preferred.to_path_buf();
    }
    let fallback = std::path::PathBuf::from("/tmp/den");
    let _ = std::fs::create_dir_all(fallback.join("markers"));
    fallback
}
