//! `$DEN_HOME/config.json`: the current context and its defaults.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use den_state::Home;

use crate::Result;

/// The image a folder without a devcontainer config comes up on.
pub const DEFAULT_FALLBACK_IMAGE: &str = "mcr.microsoft.com/devcontainers/base:ubuntu";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DenConfig {
    /// The context in use (`default` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Per context: the default provider.
    pub default_provider: IndexMap<String, String>,
    /// Per context: the IDE `den up` opens (`den ide use`).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub default_ide: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_image: Option<String>,
}

impl DenConfig {
    pub fn load(home: &Home) -> Result<Self> {
        Ok(den_state::read_json(&home.config_file())?.unwrap_or_default())
    }

    pub fn save(&self, home: &Home) -> Result<()> {
        Ok(den_state::write_json(&home.config_file(), self)?)
    }

    pub fn fallback_image(&self) -> &str {
        self.fallback_image.as_deref().unwrap_or(DEFAULT_FALLBACK_IMAGE)
    }
}
