//! Resolving a provider's options.
//!
//! Order, first that gives a value wins: a value the user set
//! (`--provider-option K=V`, or saved with `den provider set-options`), the
//! output of the option's `command`, its `default`. Defaults and commands may
//! refer to other options (`${OTHER}`); those are resolved first. Commands run
//! in `sh -c` with the options as environment variables, never spliced into
//! the script text, so a value with quotes or `$(…)` stays inert.

use indexmap::IndexMap;
use serde::Serialize;

use crate::{Manifest, ProviderError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionSource {
    User,
    Command,
    Default,
    Unset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedOption {
    pub value: String,
    pub source: OptionSource,
}

/// Resolves every option of `manifest`. `user` holds the values the user set;
/// `base_env` is the environment commands get besides the options (DEVPOD,
/// MACHINE_ID …).
pub fn resolve_options(
    manifest: &Manifest,
    user: &IndexMap<String, String>,
    base_env: &[(String, String)],
) -> Result<IndexMap<String, ResolvedOption>, ProviderError> {
    resolve(manifest, user, base_env, false)
}

/// Like [`resolve_options`], leaving a required option without a value
/// unset instead of failing (for showing options, and for setting them one
/// at a time). Everything else is checked as strictly.
pub fn resolve_options_partial(
    manifest: &Manifest,
    user: &IndexMap<String, String>,
    base_env: &[(String, String)],
) -> Result<IndexMap<String, ResolvedOption>, ProviderError> {
    resolve(manifest, user, base_env, true)
}

fn resolve(
    manifest: &Manifest,
    user: &IndexMap<String, String>,
    base_env: &[(String, String)],
    partial: bool,
) -> Result<IndexMap<String, ResolvedOption>, ProviderError> {
    for name in user.keys() {
        if !manifest.options.contains_key(name) {
            return Err(ProviderError::Unknown { provider: manifest.name.clone(), name: name.clone() });
        }
    }
    let mut done: IndexMap<String, ResolvedOption> = IndexMap::new();
    let mut visiting = Vec::new();
    for name in manifest.options.keys() {
        resolve_one(manifest, name, user, base_env, partial, &mut done, &mut visiting)?;
    }
    // Keep the manifest's order.
    let mut ordered = IndexMap::new();
    for name in manifest.options.keys() {
        ordered.insert(name.clone(), done[name].clone());
    }
    Ok(ordered)
}

fn resolve_one(
    manifest: &Manifest,
    name: &str,
    user: &IndexMap<String, String>,
    base_env: &[(String, String)],
    partial: bool,
    done: &mut IndexMap<String, ResolvedOption>,
    visiting: &mut Vec<String>,
) -> Result<(), ProviderError> {
    if done.contains_key(name) {
        return Ok(());
    }
    if visiting.iter().any(|v| v == name) {
        return Err(ProviderError::Cycle(name.to_string()));
    }
    visiting.push(name.to_string());
    let opt = &manifest.options[name];
    let resolved = if let Some(v) = user.get(name) {
        ResolvedOption { value: v.clone(), source: OptionSource::User }
    } else {
        let mut missing_dep = false;
        for dep in references(manifest, &opt.command).chain(references(manifest, &opt.default)) {
            if dep != name {
                resolve_one(manifest, &dep, user, base_env, partial, done, visiting)?;
                missing_dep |= manifest.options[&dep].required && done[&dep].value.is_empty();
            }
        }
        if partial && missing_dep {
            // It needs a required option nobody set yet: unknown for now.
            ResolvedOption { value: String::new(), source: OptionSource::Unset }
        } else if !opt.command.trim().is_empty() {
            let mut cmd = den_process::Cmd::new("sh").arg("-c").arg(&opt.command);
            for (k, v) in base_env {
                cmd = cmd.env(k, v);
            }
            for (k, v) in done.iter() {
                cmd = cmd.env(k, &v.value);
            }
            let out = cmd.output().map_err(|source| ProviderError::Command { name: name.to_string(), source })?;
            ResolvedOption {
                value: out.stdout.trim_end_matches(['\n', '\r']).to_string(),
                source: OptionSource::Command,
            }
        } else if !opt.default.is_empty() {
            // Defaults may name other options and DevPod's variables
            // (`${PROVIDER_FOLDER}/config.json`), in one pass.
            let value = expand_once(&opt.default, |k| {
                done.get(k)
                    .map(|v| v.value.as_str())
                    .or_else(|| base_env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()))
            });
            ResolvedOption { value, source: OptionSource::Default }
        } else {
            ResolvedOption { value: String::new(), source: OptionSource::Unset }
        }
    };
    visiting.pop();
    match validate(manifest, name, &resolved.value) {
        Err(ProviderError::RequiredMissing { .. }) if partial => {}
        other => other?,
    }
    done.insert(name.to_string(), resolved);
    Ok(())
}

fn validate(manifest: &Manifest, name: &str, value: &str) -> Result<(), ProviderError> {
    let opt = &manifest.options[name];
    if value.is_empty() {
        return if opt.required {
            Err(ProviderError::RequiredMissing { provider: manifest.name.clone(), name: name.to_string() })
        } else {
            Ok(())
        };
    }
    if !opt.validation_pattern.is_empty() {
        let re = crate::manifest::validation_regex(&opt.validation_pattern)
            .map_err(|message| ProviderError::Invalid { name: name.into(), value: value.into(), message })?;
        if !re.is_match(value) {
            let message = if opt.validation_message.is_empty() {
                format!("it must match {}", opt.validation_pattern)
            } else {
                opt.validation_message.clone()
            };
            return Err(ProviderError::Invalid { name: name.into(), value: value.into(), message });
        }
    }
    if !opt.enum_values.is_empty() && !opt.enum_values.iter().any(|e| e.value == value) {
        let allowed: Vec<_> = opt.enum_values.iter().map(|e| e.value.as_str()).collect();
        return Err(ProviderError::Invalid {
            name: name.into(),
            value: value.into(),
            message: format!("it must be one of {}", allowed.join(", ")),
        });
    }
    Ok(())
}

/// The option names that `text` refers to as `${NAME}` or `$NAME`.
fn references<'a>(manifest: &'a Manifest, text: &'a str) -> impl Iterator<Item = String> + 'a {
    manifest.options.keys().filter(move |k| text.contains(&format!("${{{k}}}")) || contains_bare(text, k)).cloned()
}

fn contains_bare(text: &str, name: &str) -> bool {
    let pat = format!("${name}");
    text.match_indices(&pat).any(|(i, _)| {
        let next = text[i + pat.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Replaces each `${NAME}` that `lookup` knows, in one left-to-right pass:
/// what a value brings in is data and is never expanded again (an option
/// value holding `${OTHER}` stays exactly that). Unknown names stay, and
/// set `unknown`.
fn expand_pass<'v>(text: &str, lookup: impl Fn(&str) -> Option<&'v str>, unknown: &mut bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..start]);
        match lookup(&after[..end]) {
            Some(v) => out.push_str(v),
            None => {
                *unknown = true;
                out.push_str(&rest[start..start + end + 3]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn expand_once<'v>(text: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
    expand_pass(text, lookup, &mut false)
}

/// Like [`expand_options`] with any lookup, in one pass; `None` when the
/// text refers to a name `lookup` does not know (a field half-expanded is
/// worse than none).
pub fn expand_known<'v>(text: &str, lookup: impl Fn(&str) -> Option<&'v str>) -> Option<String> {
    let mut unknown = false;
    let out = expand_pass(text, lookup, &mut unknown);
    (!unknown).then_some(out)
}

/// Replaces `${NAME}` of resolved options in a manifest field (e.g.
/// `agent.docker.path: ${DOCKER_PATH}`). Unknown references stay.
pub fn expand_options(text: &str, resolved: &IndexMap<String, ResolvedOption>) -> String {
    expand_once(text, |k| resolved.get(k).map(|v| v.value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Manifest {
        Manifest::parse(&format!("name: t\n{yaml}"), "t").unwrap()
    }

    fn user(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn user_value_beats_command_beats_default() {
        let m = manifest("options:\n  A:\n    default: d\n    command: echo from-cmd\n  B:\n    default: d\n  C: {}\n");
        let r = resolve_options(&m, &user(&[]), &[]).unwrap();
        assert_eq!(r["A"], ResolvedOption { value: "from-cmd".into(), source: OptionSource::Command });
        assert_eq!(r["B"], ResolvedOption { value: "d".into(), source: OptionSource::Default });
        assert_eq!(r["C"].source, OptionSource::Unset);
        let r = resolve_options(&m, &user(&[("A", "mine")]), &[]).unwrap();
        assert_eq!(r["A"], ResolvedOption { value: "mine".into(), source: OptionSource::User });
    }

    #[test]
    fn defaults_and_commands_see_other_options() {
        let m = manifest(
            "options:\n  FULL:\n    command: echo \"$HOST:${PORT}\"\n  URL:\n    default: http://${HOST}\n  HOST:\n    default: h\n  PORT:\n    default: \"22\"\n",
        );
        let r = resolve_options(&m, &user(&[]), &[]).unwrap();
        assert_eq!(r["FULL"].value, "h:22");
        assert_eq!(r["URL"].value, "http://h");
        // order of the manifest is kept
        assert_eq!(r.keys().collect::<Vec<_>>(), vec!["FULL", "URL", "HOST", "PORT"]);
    }

    #[test]
    fn base_env_reaches_commands() {
        let m = manifest("options:\n  A:\n    command: echo \"$MACHINE_ID\"\n");
        let r = resolve_options(&m, &user(&[]), &[("MACHINE_ID".into(), "m1".into())]).unwrap();
        assert_eq!(r["A"].value, "m1");
    }

    #[test]
    fn required_missing_names_the_option() {
        let m = manifest("options:\n  HOST:\n    required: true\n");
        let e = resolve_options(&m, &user(&[]), &[]).unwrap_err().to_string();
        assert!(e.contains("provider option HOST is required"), "{e}");
        assert!(e.contains("--provider-option HOST=VALUE"), "{e}");
    }

    /// Partial resolution (showing options, setting them one at a time)
    /// leaves a missing required option unset, and still checks values.
    #[test]
    fn partial_leaves_required_unset_but_checks_values() {
        let m =
            manifest("options:\n  A:\n    required: true\n  B:\n    required: true\n    validationPattern: ^[a-z]+$\n");
        let r = resolve_options_partial(&m, &user(&[("B", "ok")]), &[]).unwrap();
        assert_eq!(r["A"].source, OptionSource::Unset);
        assert_eq!(r["B"].value, "ok");
        let e = resolve_options_partial(&m, &user(&[("B", "NO")]), &[]).unwrap_err().to_string();
        assert!(e.contains("provider option B=\"NO\" is not valid"), "{e}");
        assert!(resolve_options(&m, &user(&[("B", "ok")]), &[]).is_err(), "the full resolution still needs A");
        // an option computed from a missing required one is not computed
        let m = manifest(
            "options:\n  REGION:\n    required: true\n  AMI:\n    command: test -n \"$REGION\" && echo ami-1\n",
        );
        let r = resolve_options_partial(&m, &user(&[]), &[]).unwrap();
        assert_eq!(r["AMI"].source, OptionSource::Unset);
        let r = resolve_options_partial(&m, &user(&[("REGION", "eu")]), &[]).unwrap();
        assert_eq!(r["AMI"].value, "ami-1");
    }

    /// Defaults may name DevPod's variables, as `${PROVIDER_FOLDER}/x`.
    #[test]
    fn defaults_see_devpod_variables() {
        let m = manifest("options:\n  CFG:\n    default: ${PROVIDER_FOLDER}/config.json\n");
        let env = vec![("PROVIDER_FOLDER".to_string(), "/state/p".to_string())];
        assert_eq!(resolve_options(&m, &user(&[]), &env).unwrap()["CFG"].value, "/state/p/config.json");
    }

    #[test]
    fn validation_pattern_and_enum() {
        let m = manifest(
            "options:\n  N:\n    validationPattern: ^[0-9]+$\n    validationMessage: a number\n  E:\n    enum: [a, b]\n",
        );
        let e = resolve_options(&m, &user(&[("N", "x1")]), &[]).unwrap_err().to_string();
        assert_eq!(e, "provider option N=\"x1\" is not valid: a number");
        let e = resolve_options(&m, &user(&[("E", "c")]), &[]).unwrap_err().to_string();
        assert!(e.contains("one of a, b"), "{e}");
        assert!(resolve_options(&m, &user(&[("N", "12"), ("E", "b")]), &[]).is_ok());
    }

    #[test]
    fn unknown_user_option_is_an_error() {
        let m = manifest("options:\n  A: {}\n");
        let e = resolve_options(&m, &user(&[("B", "1")]), &[]).unwrap_err().to_string();
        assert_eq!(e, "provider t has no option B");
    }

    #[test]
    fn failing_command_is_reported() {
        let m = manifest("options:\n  A:\n    command: echo nope >&2; exit 4\n");
        let e = resolve_options(&m, &user(&[]), &[]).unwrap_err().to_string();
        assert!(e.contains("provider option A: its command failed"), "{e}");
        assert!(e.contains("exited with code 4"), "{e}");
    }

    #[test]
    fn cycles_are_errors() {
        let m = manifest("options:\n  A:\n    default: ${B}\n  B:\n    default: ${A}\n");
        assert!(matches!(resolve_options(&m, &user(&[]), &[]), Err(ProviderError::Cycle(_))));
    }

    /// A value with quotes, `$(…)`, `;` and newlines reaches a command as
    /// data: it is never spliced into the script.
    #[test]
    fn hostile_values_stay_inert() {
        let evil = "a'b\"c $(touch /tmp/den-pwned) ; `id` \n rm -rf /";
        let m = manifest("options:\n  EVIL: {}\n  ECHO:\n    command: printf %s \"$EVIL\"\n");
        let r = resolve_options(&m, &user(&[("EVIL", evil)]), &[]).unwrap();
        assert_eq!(r["ECHO"].value, evil.trim_end_matches('\n'));
        assert!(!std::path::Path::new("/tmp/den-pwned").exists());
    }

    #[test]
    fn a_value_is_expanded_once() {
        // A user value that holds `${…}` is data: neither another option's
        // default nor a manifest field expands it again.
        let m = manifest(
            "options:\n  ROOT:\n    default: /r\n  DATA:\n    default: ${ROOT}/data\n  PATH_OPT:\n    default: ${DATA}/x\n",
        );
        let r = resolve_options(
            &m,
            &user(&[("DATA", "${ROOT}-literal"), ("ROOT", "${PROVIDER_FOLDER}")]),
            &[("PROVIDER_FOLDER".into(), "/pf".into())],
        )
        .unwrap();
        assert_eq!(r["PATH_OPT"].value, "${ROOT}-literal/x");
        assert_eq!(expand_options("${ROOT}:${DATA}", &r), "${PROVIDER_FOLDER}:${ROOT}-literal");
        let m = manifest("options:\n  A:\n    default: ${DEVPOD_X}/${B}\n  B:\n    default: b\n");
        let r = resolve_options(&m, &user(&[("B", "${DEVPOD_X}")]), &[("DEVPOD_X".into(), "dx".into())]).unwrap();
        assert_eq!(r["A"].value, "dx/${DEVPOD_X}");
    }

    #[test]
    fn expand_in_manifest_fields() {
        let m = manifest("options:\n  P:\n    default: podman\n");
        let r = resolve_options(&m, &user(&[]), &[]).unwrap();
        assert_eq!(expand_options("${P} --x ${UNKNOWN}", &r), "podman --x ${UNKNOWN}");
    }
}
