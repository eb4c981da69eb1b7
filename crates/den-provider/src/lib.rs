//! Provider manifests and their options.

pub mod binaries;
mod exec;
mod manifest;
mod options;
mod source;

pub use den_http::Http;
pub use exec::{MachineSubject, ProviderRun, Subject, WorkspaceSubject};
pub use manifest::MAX_MANIFEST_BYTES;
pub use manifest::{
    builtin, builtin_names, is_plain_file_name, is_provider_name, AgentConfig, AgentDocker, Binary, Manifest,
    OptionEnum, OptionGroup, ProviderOption, StrArray, StrBool,
};
pub use options::{
    expand_known, expand_options, resolve_options, resolve_options_partial, OptionSource, ResolvedOption,
};
pub use source::{Base, Fetched, Source, DEFAULT_RELEASES_URL};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider source `{given}`: {message}")]
    Source { given: String, message: String },
    #[error("{origin}: not a valid provider manifest: {message}")]
    Manifest { origin: String, message: String },
    #[error("provider option {name} is required but has no value; set it with --provider-option {name}=VALUE or `den provider set-options {provider} -o {name}=VALUE`")]
    RequiredMissing { provider: String, name: String },
    #[error("provider option {name}={value:?} is not valid: {message}")]
    Invalid { name: String, value: String, message: String },
    #[error("provider option {name}: its command failed: {source}")]
    Command {
        name: String,
        #[source]
        source: den_process::ProcessError,
    },
    #[error("provider option {0} depends on itself (through its default or command)")]
    Cycle(String),
    #[error("provider {provider} has no option {name}")]
    Unknown { provider: String, name: String },
    #[error("provider `{provider}`: exec.{command} failed: {source}")]
    Exec {
        provider: String,
        command: String,
        #[source]
        source: Box<den_process::ProcessError>,
    },
    #[error("provider `{0}` has no exec.command to reach its machine")]
    NoCommand(String),
    #[error("provider `{provider}`: {message}")]
    Binary { provider: String, message: String },
}

/// This machine's architecture in Go's words, as manifests spell it
/// (`binaries[].arch`, `DEVPOD_ARCH`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
