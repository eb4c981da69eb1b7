//! Contexts: separate sets of providers, options and workspaces under one
//! DEN_HOME (`$DEN_HOME/contexts/<name>/`). `default` always exists.

use indexmap::IndexMap;

use crate::{Den, DenConfig, Result, WorkspaceError};

pub const DEFAULT_CONTEXT: &str = "default";

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 48
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        return Err(WorkspaceError::BadInput(format!(
            "context name `{name}` must be 1-48 characters of a-z, 0-9 and - (not starting with -)"
        )));
    }
    Ok(())
}

/// The contexts, `default` first, then by name.
pub fn list(den: &Den) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(den.home.root().join("contexts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != DEFAULT_CONTEXT && check_name(n).is_ok())
        .collect();
    names.sort();
    names.insert(0, DEFAULT_CONTEXT.to_string());
    Ok(names)
}

pub fn exists(den: &Den, name: &str) -> bool {
    name == DEFAULT_CONTEXT || den.home.context_dir(name).is_dir()
}

pub fn create(den: &Den, name: &str, options: &[(String, String)]) -> Result<()> {
    check_name(name)?;
    if exists(den, name) && name != DEFAULT_CONTEXT {
        return Err(WorkspaceError::Conflict(format!("context `{name}` exists already")));
    }
    den_state::create_private_dir(&den.home.context_dir(name))?;
    set_options(den, name, options)
}

/// Makes `name` the current context.
pub fn use_context(den: &Den, name: &str) -> Result<()> {
    if !exists(den, name) {
        return Err(WorkspaceError::Missing(format!("there is no context `{name}` (see `den context list`)")));
    }
    let mut cfg = DenConfig::load(&den.home)?;
    cfg.context = (name != DEFAULT_CONTEXT).then(|| name.to_string());
    cfg.save(&den.home)
}

/// Deletes a context and its providers; refused while it has workspaces.
pub fn delete(den: &Den, name: &str) -> Result<()> {
    if name == DEFAULT_CONTEXT {
        return Err(WorkspaceError::Conflict("the default context cannot be deleted".into()));
    }
    if !exists(den, name) {
        return Err(WorkspaceError::Missing(format!("there is no context `{name}`")));
    }
    let other = Den { home: den.home.clone(), context: name.to_string() };
    let workspaces: Vec<String> = crate::WorkspaceRecord::all(&other)?.into_iter().map(|w| w.id).collect();
    if !workspaces.is_empty() {
        return Err(WorkspaceError::Conflict(format!(
            "context `{name}` still has workspace(s) {}; delete them first (den --context {name} delete ID)",
            workspaces.join(", ")
        )));
    }
    crate::record::remove_dir(&den.home.context_dir(name))?;
    let mut cfg = DenConfig::load(&den.home)?;
    if cfg.context.as_deref() == Some(name) {
        cfg.context = None;
    }
    cfg.default_provider.shift_remove(name);
    cfg.save(&den.home)
}

fn options_file(den: &Den, name: &str) -> std::path::PathBuf {
    den.home.context_dir(name).join("options.json")
}

pub fn options(den: &Den, name: &str) -> Result<IndexMap<String, String>> {
    Ok(den_state::read_json(&options_file(den, name))?.unwrap_or_default())
}

/// Sets context options (KEY=VALUE; an empty value removes the key).
pub fn set_options(den: &Den, name: &str, values: &[(String, String)]) -> Result<()> {
    if !exists(den, name) {
        return Err(WorkspaceError::Missing(format!("there is no context `{name}`")));
    }
    if values.is_empty() {
        return Ok(());
    }
    let mut opts = options(den, name)?;
    for (k, v) in values {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(WorkspaceError::BadInput(format!("context option `{k}` must be in A-Z, 0-9 and _")));
        }
        if v.is_empty() {
            opts.shift_remove(k);
        } else {
            opts.insert(k.clone(), v.clone());
        }
    }
    Ok(den_state::write_json(&options_file(den, name), &opts)?)
}
