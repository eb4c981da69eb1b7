//! den's state on disk.
//!
//! Everything den remembers lives under one folder, `DEN_HOME` (default: the
//! platform's data folder for "den"). Files there are written atomically and
//! privately, and work on one workspace is serialised by an advisory lock.

mod fs;
mod home;
mod lock;
pub mod ssh_config;

pub use fs::{atomic_write, create_private_dir, path_tag, read_json, replace_file, write_json};
pub use home::Home;
pub use lock::{Lock, LockWait};

use std::path::PathBuf;

/// What can go wrong with den's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot find a home folder for den's state; set DEN_HOME")]
    NoHome,
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StateError::Io { action, path, source }
    }
}

pub type Result<T, E = StateError> = std::result::Result<T, E>;
