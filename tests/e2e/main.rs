//! End-to-end tests: they run the built `den` binary, against the real
//! Docker engine where they need one (`tests/engine/setup.sh` makes sure it
//! is there; `tests/run.sh` calls it before `cargo test`).

mod agent_mount;
mod common;
mod compose;
mod conformance;
mod context;
mod credentials;
mod features;
mod fuzz;
mod home_modes;
mod hostile;
mod ide;
mod kubernetes;
mod line;
mod machine;
mod parity;
mod podman;
mod ports;
mod provider;
mod read_config;
mod remote;
mod sources;
mod ssh;
mod static_binary;
mod ui;
mod ui_browser;
mod up;
mod webdriver;
