//! The providers of a context: the built-in ones embedded in the binary and
//! the ones the user added, their saved options, and the default.

use std::path::{Path, PathBuf};

use den_provider::{Fetched, Manifest, ResolvedOption, Source};
use indexmap::IndexMap;

use crate::{Den, DenConfig, Result, WorkspaceError};

/// The provider a new context uses.
pub const DEFAULT_PROVIDER: &str = "docker";

#[derive(Debug, Clone)]
pub struct ProviderEntry {
    pub name: String,
    pub manifest: Manifest,
    pub builtin: bool,
    /// Where it came from: `built-in`, the source it was added from
    /// (`den provider update` reads it again), or, for a provider added
    /// before sources were recorded, its stored manifest.
    pub source: String,
}

/// What `den provider add` was given.
#[derive(Debug, Clone, Copy)]
pub struct AddRequest<'a> {
    /// A path, an http(s) URL, `OWNER/REPO[@VERSION]` or a short name.
    pub source: &'a str,
    /// Where a relative path starts.
    pub cwd: &'a Path,
    /// The provider's name instead of the manifest's.
    pub name: Option<&'a str>,
    /// Replace a built-in provider of the same name.
    pub force: bool,
    /// Option values to save with it, checked first.
    pub options: &'a [(String, String)],
    /// The release host's base URL (`DEN_PROVIDER_RELEASES_URL`).
    pub releases: &'a str,
}

/// The source a provider was added from, kept beside its manifest.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SourceRecord {
    /// As [`Source`] prints it: what `update` reads again.
    source: String,
    /// The file or URL the manifest was read from.
    from: String,
}

fn source_file(den: &Den, name: &str) -> PathBuf {
    den.home.provider_dir(&den.context, name).join("source.json")
}

fn added_manifest(den: &Den, name: &str) -> PathBuf {
    den.home.provider_dir(&den.context, name).join("provider.yaml")
}

/// The provider's folder of installed binaries.
pub(crate) fn binaries_dir(den: &Den, provider: &str) -> PathBuf {
    den.home.provider_dir(&den.context, provider).join("binaries")
}

fn options_file(den: &Den, name: &str) -> PathBuf {
    den.home.provider_dir(&den.context, name).join("options.json")
}

/// Built-in providers, then added ones (an added provider of the same name
/// as a built-in replaces it).
pub fn list(den: &Den) -> Result<Vec<ProviderEntry>> {
    let mut out: Vec<ProviderEntry> = Vec::new();
    for name in den_provider::builtin_names() {
        out.push(get(den, name)?);
    }
    let dir = den.home.providers_dir(&den.context);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("provider.yaml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let entry = get(den, &name)?;
            out.retain(|e| e.name != name);
            out.push(entry);
        }
    }
    Ok(out)
}

pub fn get(den: &Den, name: &str) -> Result<ProviderEntry> {
    let file = added_manifest(den, name);
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(WorkspaceError::io(format!("reading {}", file.display())))?;
        let mut manifest = Manifest::parse(&text, &file.display().to_string())?;
        // Its folder's name, which `--name` may have chosen.
        manifest.name = name.into();
        let source = den_state::read_json::<SourceRecord>(&source_file(den, name))?
            .map_or_else(|| file.display().to_string(), |r| r.source);
        return Ok(ProviderEntry { name: name.into(), manifest, builtin: false, source });
    }
    let text = den_provider::builtin(name).ok_or_else(|| WorkspaceError::UnknownProvider(name.into()))?;
    let manifest = Manifest::parse(text, name)?;
    Ok(ProviderEntry { name: name.into(), manifest, builtin: true, source: "built-in".into() })
}

/// Adds (or replaces) a provider from its source, with its binaries and
/// the option values given. One named like a built-in provider would hide
/// it for every workspace of the context: only with `force`. A built-in's
/// own name (without `force` or another `name`) adds nothing: the values
/// are saved for the built-in.
pub fn add(den: &Den, req: &AddRequest<'_>) -> Result<ProviderEntry> {
    let mut source = Source::parse(req.source, req.cwd)?;
    if req.force {
        source = source.not_builtin();
    }
    if let Source::Builtin(b) = &source {
        if req.name.is_none_or(|n| n == b) {
            if !req.options.is_empty() {
                set_options(den, b, req.options)?;
            }
            return get(den, b);
        }
    }
    let http = den_provider::Http::new();
    let fetched = source.fetch(req.releases, &http)?;
    let mut manifest = Manifest::parse(&fetched.text, &fetched.origin)?;
    if let Some(n) = req.name {
        if !den_provider::is_provider_name(n) {
            return Err(WorkspaceError::BadInput(format!(
                "--name `{n}`: a provider's name may only hold letters, digits, - and _"
            )));
        }
        manifest.name = n.into();
    }
    if den_provider::builtin(&manifest.name).is_some() && !req.force {
        return Err(WorkspaceError::Conflict(format!(
            "{} is named `{}`, like den's built-in provider; adding it would replace that one for this context (use --force to do so, or rename it)",
            fetched.origin, manifest.name
        )));
    }
    install(den, &http, manifest, (&source, &fetched), req.options).map(|(entry, _)| entry)
}

/// The result of [`update`]: the provider, its version before, and the
/// saved options its new manifest no longer has (dropped).
pub struct Updated {
    pub entry: ProviderEntry,
    pub old_version: String,
    pub dropped: Vec<String>,
}

/// Reads an added provider's manifest again from the source it was added
/// from (or `source`, which is then recorded), installs its binaries, and
/// keeps the option values saved for it.
pub fn update(den: &Den, name: &str, source: Option<&str>, cwd: &Path, releases: &str) -> Result<Updated> {
    let old = get(den, name)?;
    if old.builtin {
        return Err(WorkspaceError::Conflict(format!("`{name}` is built into den: it changes with den itself")));
    }
    let recorded = den_state::read_json::<SourceRecord>(&source_file(den, name))?.map(|r| r.source);
    let Some(given) = source.map(String::from).or(recorded) else {
        return Err(WorkspaceError::Missing(format!(
            "provider `{name}` has no recorded source (it was added by an older den); name one: den provider update {name} SOURCE"
        )));
    };
    let source = Source::parse(&given, cwd)?;
    let http = den_provider::Http::new();
    let fetched = source.fetch(releases, &http)?;
    let mut manifest = Manifest::parse(&fetched.text, &fetched.origin)?;
    manifest.name = name.into();
    let (entry, dropped) = install(den, &http, manifest, (&source, &fetched), &[])?;
    Ok(Updated { entry, old_version: old.manifest.version, dropped })
}

/// Checks the option values (those saved, then those `given`) against the
/// manifest, installs its binaries (beside the old ones, swapped in when all
/// are there), then saves the values, the source and the manifest, the
/// manifest last: a failure leaves the provider as it was. Saved values of
/// options the manifest does not have are dropped and named.
fn install(
    den: &Den,
    http: &den_provider::Http,
    manifest: Manifest,
    (source, fetched): (&Source, &Fetched),
    given: &[(String, String)],
) -> Result<(ProviderEntry, Vec<String>)> {
    let name = manifest.name.clone();
    let mut options = saved_options(den, &name)?;
    let dropped: Vec<String> = options.keys().filter(|k| !manifest.options.contains_key(*k)).cloned().collect();
    options.retain(|k, _| manifest.options.contains_key(k));
    options.extend(given.iter().cloned());
    let entry = ProviderEntry { name: name.clone(), manifest, builtin: false, source: source.to_string() };
    if !options.is_empty() {
        // As `set-options` checks them (a manifest's option commands may
        // need tools this machine lacks: not run when nothing is set).
        den_provider::resolve_options_partial(&entry.manifest, &options, &provider_env(den, &entry))?;
    }
    let dir = den.home.provider_dir(&den.context, &name);
    let existed = added_manifest(den, &name).is_file();
    let staged = dir.join(".binaries.new");
    crate::record::remove_dir(&staged)?;
    if let Err(e) = den_provider::binaries::install(&staged, &entry.manifest, &fetched.base, http) {
        // A provider whose binaries cannot be had is not added.
        crate::record::remove_dir(if existed { &staged } else { &dir })?;
        return Err(e.into());
    }
    swap_in(&staged, &binaries_dir(den, &name))?;
    den_state::write_json(&options_file(den, &name), &options)?;
    let record = SourceRecord { source: source.to_string(), from: fetched.origin.clone() };
    den_state::write_json(&source_file(den, &name), &record)?;
    // A new manifest may init differently: its exec.init runs again.
    remove_file(&dir.join("init.ok"))?;
    den_state::atomic_write(&added_manifest(den, &name), fetched.text.as_bytes())?;
    Ok((entry, dropped))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(WorkspaceError::io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Puts the `staged` binaries folder (if any) in the place of `target`.
fn swap_in(staged: &Path, target: &Path) -> Result<()> {
    let old = target.with_file_name(".binaries.old");
    crate::record::remove_dir(&old)?;
    let io = |what: &str, p: &Path| WorkspaceError::io(format!("{what} {}", p.display()));
    if target.exists() {
        std::fs::rename(target, &old).map_err(io("moving aside", target))?;
    }
    if staged.exists() {
        std::fs::rename(staged, target).map_err(io("installing", staged))?;
    }
    crate::record::remove_dir(&old)
}

/// Removes an added provider and its saved options. Refused while a
/// workspace uses it.
pub fn delete(den: &Den, name: &str) -> Result<()> {
    let entry = get(den, name)?;
    if entry.builtin {
        return Err(WorkspaceError::Conflict(format!("`{name}` is built in and cannot be deleted")));
    }
    let users: Vec<String> =
        crate::WorkspaceRecord::all(den)?.into_iter().filter(|w| w.provider == name).map(|w| w.id).collect();
    if !users.is_empty() {
        return Err(WorkspaceError::Conflict(format!(
            "provider `{name}` is used by workspace(s) {}; delete them first",
            users.join(", ")
        )));
    }
    crate::record::remove_dir(&den.home.provider_dir(&den.context, name))?;
    let mut cfg = DenConfig::load(&den.home)?;
    if cfg.default_provider.get(&den.context).is_some_and(|p| p == name) {
        cfg.default_provider.shift_remove(&den.context);
        cfg.save(&den.home)?;
    }
    Ok(())
}

pub fn default_provider(den: &Den) -> Result<String> {
    Ok(DenConfig::load(&den.home)?
        .default_provider
        .get(&den.context)
        .cloned()
        .unwrap_or_else(|| DEFAULT_PROVIDER.into()))
}

/// Makes `name` the default provider of the context.
pub fn use_provider(den: &Den, name: &str) -> Result<()> {
    get(den, name)?;
    let mut cfg = DenConfig::load(&den.home)?;
    cfg.default_provider.insert(den.context.clone(), name.into());
    cfg.save(&den.home)
}

pub fn saved_options(den: &Den, name: &str) -> Result<IndexMap<String, String>> {
    Ok(den_state::read_json(&options_file(den, name))?.unwrap_or_default())
}

/// Saves the values of `global` options a command was given for the
/// provider (every workspace sees them), once it made something with them.
pub(crate) fn save_globals(den: &Den, entry: &ProviderEntry, globals: &[(String, String)]) -> Result<()> {
    if !globals.is_empty() {
        set_options(den, &entry.name, globals)?;
    }
    Ok(())
}

/// Saves option values for a provider after checking that they resolve
/// (known names, valid values).
pub fn set_options(den: &Den, name: &str, values: &[(String, String)]) -> Result<IndexMap<String, ResolvedOption>> {
    let entry = get(den, name)?;
    let mut saved = saved_options(den, name)?;
    for (k, v) in values {
        saved.insert(k.clone(), v.clone());
    }
    // One at a time is fine: a required option still missing is `up`'s
    // error, not this one's; every value given is checked.
    let resolved = den_provider::resolve_options_partial(&entry.manifest, &saved, &provider_env(den, &entry))?;
    den_state::write_json(&options_file(den, name), &saved)?;
    Ok(resolved)
}

/// Resolves a provider's options for one workspace: its own values first,
/// then the provider's saved values, then commands and defaults.
pub fn resolve(
    den: &Den,
    entry: &ProviderEntry,
    workspace: &IndexMap<String, String>,
    workspace_id: Option<&str>,
) -> Result<IndexMap<String, ResolvedOption>> {
    resolve_given(den, entry, &Given { own: workspace.clone(), globals: vec![] }, workspace_id)
}

/// [`resolve`] with the `global` values given now, not yet saved.
pub(crate) fn resolve_given(
    den: &Den,
    entry: &ProviderEntry,
    given: &Given,
    workspace_id: Option<&str>,
) -> Result<IndexMap<String, ResolvedOption>> {
    let mut env = provider_env(den, entry);
    if let Some(id) = workspace_id {
        env.push(("WORKSPACE_ID".into(), id.into()));
        env.push(("MACHINE_ID".into(), id.into()));
    }
    resolve_with_env(den, entry, &given.own, &given.globals, &env)
}

/// The option values a command works with: the workspace's own (those it
/// was made with, then the ones given now), and the values of `global`
/// options given now, which are the provider's (every workspace sees them)
/// and are saved for it only once the command made something with them
/// ([`save_globals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    pub own: IndexMap<String, String>,
    pub globals: Vec<(String, String)>,
}

/// [`Given`] for a workspace: reads nothing and writes nothing.
pub fn workspace_options(
    entry: &ProviderEntry,
    record: Option<&crate::WorkspaceRecord>,
    given: &[(String, String)],
) -> Given {
    let mut own = record.filter(|r| r.provider == entry.name).map(|r| r.provider_options.clone()).unwrap_or_default();
    let is_global = |k: &str| entry.manifest.options.get(k).is_some_and(|o| o.global);
    let (globals, local): (Vec<_>, Vec<_>) = given.iter().cloned().partition(|(k, _)| is_global(k));
    own.retain(|k, _| !is_global(k));
    own.extend(local);
    Given { own, globals }
}

/// Like [`resolve`], with the environment option commands see: the saved
/// values, then the `globals` given now, then the workspace's own.
pub fn resolve_with_env(
    den: &Den,
    entry: &ProviderEntry,
    workspace: &IndexMap<String, String>,
    globals: &[(String, String)],
    env: &[(String, String)],
) -> Result<IndexMap<String, ResolvedOption>> {
    let mut values = saved_options(den, &entry.name)?;
    values.extend(globals.iter().cloned());
    for (k, v) in workspace {
        if !entry.manifest.options.get(k).is_some_and(|o| o.global) {
            values.insert(k.clone(), v.clone());
        }
    }
    Ok(den_provider::resolve_options(&entry.manifest, &values, env)?)
}

/// The options as `den provider options` shows them: a required option
/// without a value is shown unset rather than failing.
pub fn options_for_display(den: &Den, entry: &ProviderEntry) -> Result<IndexMap<String, ResolvedOption>> {
    let values = saved_options(den, &entry.name)?;
    Ok(den_provider::resolve_options_partial(&entry.manifest, &values, &provider_env(den, entry))?)
}

/// [`base_env`] plus the provider's own variables (DevPod's PROVIDER_ID,
/// PROVIDER_CONTEXT, PROVIDER_FOLDER).
pub fn provider_env(den: &Den, entry: &ProviderEntry) -> Vec<(String, String)> {
    let mut env = base_env();
    env.push(("PROVIDER_ID".into(), entry.name.clone()));
    env.push(("PROVIDER_CONTEXT".into(), den.context.clone()));
    env.push(("PROVIDER_FOLDER".into(), den.home.provider_dir(&den.context, &entry.name).display().to_string()));
    // A den the command starts itself works on the same state: --home and
    // --context reach it as they would have from the environment.
    if den.home.is_chosen() {
        env.push(("DEN_HOME".into(), den.home.root().display().to_string()));
    }
    env.push(("DEN_CONTEXT".into(), den.context.clone()));
    env
}

/// What every provider command sees besides the options and its subject
/// (DevPod's names; `DEN` is the same as `DEVPOD`).
pub fn base_env() -> Vec<(String, String)> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "den".into());
    vec![
        ("DEVPOD".to_string(), exe.clone()),
        ("DEN".to_string(), exe),
        ("DEVPOD_OS".to_string(), std::env::consts::OS.to_string()),
        ("DEVPOD_ARCH".to_string(), den_provider::go_arch().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_file(den: &Den, path: &Path) -> ProviderEntry {
        let req = AddRequest {
            source: path.to_str().unwrap(),
            cwd: Path::new("/"),
            name: None,
            force: false,
            options: &[],
            releases: den_provider::DEFAULT_RELEASES_URL,
        };
        add(den, &req).unwrap()
    }

    /// Per-workspace values stay with their workspace; a `global` option's
    /// value is the provider's, whichever workspace set it.
    #[test]
    fn global_options_belong_to_the_provider() {
        let dir = tempfile::tempdir().unwrap();
        let den = Den { home: den_state::Home::at(dir.path()), context: "default".into() };
        let yaml = "name: p\noptions:\n  ZONE:\n    default: a\n  TOKEN:\n    global: true\n    default: none\n";
        std::fs::write(dir.path().join("p.yaml"), yaml).unwrap();
        let entry = add_file(&den, &dir.path().join("p.yaml"));
        let given =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();

        let one = workspace_options(&entry, None, &given(&[("ZONE", "b"), ("TOKEN", "t1")]));
        assert_eq!(one.own.get("ZONE").map(String::as_str), Some("b"));
        assert!(!one.own.contains_key("TOKEN"), "a global value is not the workspace's");
        assert_eq!(one.globals, given(&[("TOKEN", "t1")]));
        // Reading is pure: nothing is saved until the command made something.
        assert!(saved_options(&den, "p").unwrap().is_empty());
        assert_eq!(resolve_given(&den, &entry, &one, Some("one")).unwrap()["TOKEN"].value, "t1");
        assert_eq!(resolve(&den, &entry, &one.own, Some("one")).unwrap()["TOKEN"].value, "none");
        save_globals(&den, &entry, &one.globals).unwrap();
        let two = workspace_options(&entry, None, &[]);
        let r1 = resolve(&den, &entry, &one.own, Some("one")).unwrap();
        let r2 = resolve(&den, &entry, &two.own, Some("two")).unwrap();
        assert_eq!((r1["ZONE"].value.as_str(), r1["TOKEN"].value.as_str()), ("b", "t1"));
        assert_eq!((r2["ZONE"].value.as_str(), r2["TOKEN"].value.as_str()), ("a", "t1"), "the other workspace sees it");
        // a workspace record holding a global value (older den) does not win
        let mut stale = one.own.clone();
        stale.insert("TOKEN".into(), "old".into());
        assert_eq!(resolve(&den, &entry, &stale, Some("one")).unwrap()["TOKEN"].value, "t1");
        // a bad value is refused
        let e = workspace_options(&entry, None, &given(&[("NOPE", "x")]));
        assert!(resolve(&den, &entry, &e.own, None).unwrap_err().to_string().contains("has no option NOPE"));
    }
}
