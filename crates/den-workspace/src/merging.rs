//! The configuration with what the image brings: `${localEnv:…}` from this
//! process, and the image's metadata merged in. Features, the plan and the
//! backends all merge the same way.

use den_devcontainer::{MergedConfig, Resolved};

/// `${localEnv:…}`: this process's environment.
pub(crate) fn local_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The image's metadata entries merged with the configuration, each entry
/// substituted first with the configuration's variables (`${devcontainerId}`
/// in a Feature's mount, `${localEnv:…}` in its hooks), as the reference
/// CLI does; the label keeps the entries as written.
pub(crate) fn merge(resolved: &Resolved, meta: &[den_devcontainer::MetadataEntry]) -> MergedConfig {
    den_devcontainer::merge(&resolved.substitute_metadata(meta, &local_env), &resolved.config)
}
