//! A Feature's option values: what the user wrote, checked against what
//! the Feature declares, and turned into its install script's environment.

use indexmap::IndexMap;
use serde_json::Value;

use crate::feature::OptionSpec;

/// What a Feature's value in `features` asks for: `true` or `{}` (the
/// defaults), a string (the `version` option), an object of options.
/// `None`: `false`, the Feature is not installed.
pub fn given(v: &Value) -> Result<Option<IndexMap<String, Value>>, String> {
    match v {
        Value::Bool(true) => Ok(Some(IndexMap::new())),
        Value::Bool(false) => Ok(None),
        Value::String(s) => Ok(Some(IndexMap::from([("version".to_string(), Value::String(s.clone()))]))),
        Value::Object(m) => Ok(Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())),
        other => Err(format!(
            "expected true, a version string or an object of options, found {}",
            match other {
                Value::Null => "null",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                _ => "a value",
            }
        )),
    }
}

/// A problem with one option value: the option's name and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionProblem {
    pub option: String,
    pub message: String,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value of every option, as the install script sees it (strings):
/// each declared option in the Feature's order, the user's value or the
/// default; then options the Feature does not declare, passed on as the
/// reference CLI does. Wrong types are problems; undeclared names are
/// returned as the second part (worth a note).
pub fn resolve(
    declared: &IndexMap<String, OptionSpec>,
    given: &IndexMap<String, Value>,
) -> Result<(IndexMap<String, String>, Vec<String>), OptionProblem> {
    let mut out = IndexMap::new();
    for (name, spec) in declared {
        let value = match given.get(name) {
            Some(v) => check(name, spec, v)?,
            None => spec.default.as_ref().and_then(text).unwrap_or_default(),
        };
        out.insert(name.clone(), value);
    }
    let mut unknown = Vec::new();
    for (name, v) in given {
        if declared.contains_key(name) {
            continue;
        }
        let value = text(v).ok_or_else(|| OptionProblem {
            option: name.clone(),
            message: "an option's value is a string or a boolean".into(),
        })?;
        unknown.push(name.clone());
        out.insert(name.clone(), value);
    }
    Ok((out, unknown))
}

fn check(name: &str, spec: &OptionSpec, v: &Value) -> Result<String, OptionProblem> {
    let problem = |message: String| OptionProblem { option: name.to_string(), message };
    match spec.kind.as_deref() {
        Some("boolean") => match v {
            Value::Bool(b) => Ok(b.to_string()),
            Value::String(s) if s == "true" || s == "false" => Ok(s.clone()),
            other => Err(problem(format!("expected true or false, found {other}"))),
        },
        _ => {
            let value = text(v).ok_or_else(|| problem(format!("expected a string, found {v}")))?;
            if let Some(allowed) = &spec.allowed {
                let allowed: Vec<String> = allowed.iter().filter_map(text).collect();
                if !allowed.contains(&value) {
                    return Err(problem(format!(
                        "`{value}` is not one of the allowed values: {}",
                        allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
            Ok(value)
        }
    }
}

/// The environment variable an option is given as: characters other than
/// letters, digits and `_` become `_`, leading digits and underscores
/// become one `_`, and all is upper case (the specification's rule).
pub fn env_name(option: &str) -> String {
    let replaced: String =
        option.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let trimmed = replaced.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let lead = if trimmed.len() < replaced.len() { "_" } else { "" };
    format!("{lead}{trimmed}").to_ascii_uppercase()
}

/// Quotes a value for a POSIX shell (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The lines of a file the install wrapper sources with `set -a`.
pub fn env_file(values: &IndexMap<String, String>) -> String {
    values.iter().map(|(k, v)| format!("{}={}\n", env_name(k), sh_quote(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> IndexMap<String, OptionSpec> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn values_given_as_true_a_string_or_an_object() {
        assert_eq!(given(&json!(true)).unwrap(), Some(IndexMap::new()));
        assert_eq!(given(&json!(false)).unwrap(), None);
        assert_eq!(given(&json!("18")).unwrap().unwrap()["version"], json!("18"));
        assert_eq!(given(&json!({"a": 1})).unwrap().unwrap()["a"], json!(1));
        assert!(given(&json!(3)).unwrap_err().contains("a number"));
    }

    #[test]
    fn defaults_types_and_allowed_values() {
        let declared = spec(json!({
            "version": {"type": "string", "proposals": ["lts", "18"], "default": "lts"},
            "install": {"type": "boolean", "default": true},
            "flavor": {"type": "string", "enum": ["a", "b"], "default": "a"},
        }));
        let (v, unknown) = resolve(&declared, &IndexMap::new()).unwrap();
        let want: IndexMap<String, String> = [("version", "lts"), ("install", "true"), ("flavor", "a")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(v, want);
        assert!(unknown.is_empty());
        let given: IndexMap<String, Value> =
            serde_json::from_value(json!({"version": "20.1", "install": "false", "flavor": "b", "extra": 5})).unwrap();
        let (v, unknown) = resolve(&declared, &given).unwrap();
        assert_eq!(
            (v["version"].as_str(), v["install"].as_str(), v["flavor"].as_str(), v["extra"].as_str()),
            ("20.1", "false", "b", "5")
        );
        assert_eq!(unknown, vec!["extra".to_string()]);

        let bad = |v: Value| resolve(&declared, &serde_json::from_value(v).unwrap()).unwrap_err();
        let p = bad(json!({"flavor": "c"}));
        assert_eq!(p.option, "flavor");
        assert!(p.message.contains("`a`, `b`"), "{}", p.message);
        assert!(bad(json!({"install": "yes"})).message.contains("true or false"));
        assert!(bad(json!({"version": ["1"]})).message.contains("expected a string"));
    }

    #[test]
    fn option_names_become_environment_names() {
        assert_eq!(env_name("version"), "VERSION");
        assert_eq!(env_name("installZsh"), "INSTALLZSH");
        assert_eq!(env_name("node-gyp.deps"), "NODE_GYP_DEPS");
        assert_eq!(env_name("3d_thing"), "_D_THING");
        assert_eq!(env_name("__x"), "_X");
    }

    #[test]
    fn env_file_values_are_single_quoted() {
        let v = IndexMap::from([("a".to_string(), "it's $HOME".to_string())]);
        assert_eq!(env_file(&v), "A='it'\\''s $HOME'\n");
    }
}
