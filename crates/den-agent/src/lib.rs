//! The agent: what den does inside a workspace container ([`setup`],
//! [`hooks`], [`ssh`], [`credentials`], [`inactivity`], [`ports`],
//! [`extensions`]): it sets the workspace up and serves SSH. It is a leaf:
//! den on a machine or in a pod (`den_workspace::far`) is orchestration and
//! lives with it, so the container agent is not built against it.

pub mod credentials;
pub mod extensions;
pub mod hooks;
pub mod inactivity;
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
