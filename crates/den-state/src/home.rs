use std::path::{Path, PathBuf};

use crate::{create_private_dir, Result, StateError};

/// The root of den's state, and the names of the things in it.
///
/// ```text
/// $DEN_HOME/
///   config.json                       current context, defaults
///   known_hosts                       pinned agent host keys
///   contexts/<ctx>/providers/<name>/  provider.yaml, options.json
///   contexts/<ctx>/workspaces/<id>/   workspace.json, lock, keys
///   agents/<fingerprint>/             den's binary, mounted into containers
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
    /// The user chose this folder (`--home`, `DEN_HOME`), rather than den
    /// taking the platform's default.
    chosen: bool,
}

impl Home {
    /// The folder the user chose (`--home`, `DEN_HOME`: the binary reads
    /// them), else the platform's data folder.
    pub fn resolve(chosen: Option<PathBuf>) -> Result<Self> {
        match chosen.filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => Ok(Self::at(p)),
            None => Self::platform_default().map(|root| Home { root, chosen: false }).ok_or(StateError::NoHome),
        }
    }

    /// The platform's data folder for den (`~/.local/share/den` on Linux).
    fn platform_default() -> Option<PathBuf> {
        directories::ProjectDirs::from("dev", "den", "den").map(|d| d.data_dir().to_path_buf())
    }

    /// True when the user chose this folder: a den started in another
    /// process (the ProxyCommand) must be told where it is.
    pub fn is_chosen(&self) -> bool {
        self.chosen
    }

    /// A folder given explicitly.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), chosen: true }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root folder (0700) if it does not exist yet.
    pub fn ensure(&self) -> Result<()> {
        create_private_dir(&self.root)
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.json")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts")
    }

    /// The copies of den's binary that local containers mount, one folder
    /// per fingerprint.
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }

    pub fn context_dir(&self, context: &str) -> PathBuf {
        self.root.join("contexts").join(context)
    }

    pub fn providers_dir(&self, context: &str) -> PathBuf {
        self.context_dir(context).join("providers")
    }

    pub fn provider_dir(&self, context: &str, provider: &str) -> PathBuf {
        self.providers_dir(context).join(provider)
    }

    pub fn workspaces_dir(&self, context: &str) -> PathBuf {
        self.context_dir(context).join("workspaces")
    }

    pub fn workspace_dir(&self, context: &str, id: &str) -> PathBuf {
        self.workspaces_dir(context).join(id)
    }

    /// The lock file of one workspace. It sits beside, not inside, the
    /// workspace folder so that deleting the folder cannot race the lock.
    pub fn workspace_lock(&self, context: &str, id: &str) -> PathBuf {
        self.context_dir(context).join("locks").join(format!("{id}.lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_the_root() {
        let h = Home::at("/x");
        assert_eq!(h.workspace_dir("default", "api"), PathBuf::from("/x/contexts/default/workspaces/api"));
        assert_eq!(h.provider_dir("default", "docker"), PathBuf::from("/x/contexts/default/providers/docker"));
        assert_eq!(h.workspace_lock("c", "api"), PathBuf::from("/x/contexts/c/locks/api.lock"));
        assert_eq!(h.known_hosts(), PathBuf::from("/x/known_hosts"));
    }
}
