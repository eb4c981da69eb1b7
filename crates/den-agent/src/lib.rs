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
