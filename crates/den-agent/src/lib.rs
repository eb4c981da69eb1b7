//! The agent: what den does inside the workspace.

pub mod credentials;
pub mod hooks;
pub mod inactivity;
pub mod passwd;
pub mod protocol;
pub mod setup;
pub mod ssh;

/// Where the agent keeps its files inside the container.
pub const DATA_DIR: &str = "/var/lib/den";

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
