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

/// Every option's value, and what is worth telling about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    /// As the install script sees them (strings).
    pub values: IndexMap<String, String>,
    /// Options the Feature does not declare (passed on as given).
    pub unknown: Vec<String>,
    /// Values outside a declared `enum` or of another type than declared:
    /// passed on as given (as the reference CLI does), with a warning.
    pub warnings: Vec<OptionProblem>,
}

/// The value of every option, as the install script sees it (strings):
/// each declared option in the Feature's order, the user's value or the
/// default; then options the Feature does not declare, passed on as the
/// reference CLI does. A value that is neither a string, a boolean nor a
/// number is a problem; one the declaration does not allow is a warning.
pub fn resolve(
    declared: &IndexMap<String, OptionSpec>,
    given: &IndexMap<String, Value>,
) -> Result<Values, OptionProblem> {
    let mut out = Values::default();
    for (name, spec) in declared {
        let value = match given.get(name) {
            Some(v) => {
                let value = text_of(name, v)?;
                if let Some(message) = disallowed(spec, v, &value) {
                    out.warnings.push(OptionProblem { option: name.clone(), message });
                }
                value
            }
            None => spec.default.as_ref().and_then(text).unwrap_or_default(),
        };
        out.values.insert(name.clone(), value);
    }
    for (name, v) in given {
        if declared.contains_key(name) {
            continue;
        }
        let value = text_of(name, v)?;
        out.unknown.push(name.clone());
        out.values.insert(name.clone(), value);
    }
    Ok(out)
}

/// A value as the install script gets it: the text of a string, a
/// boolean or a number (`0`, `true`), as the reference CLI writes them.
fn text_of(name: &str, v: &Value) -> Result<String, OptionProblem> {
    text(v).ok_or_else(|| OptionProblem {
        option: name.to_string(),
        message: format!("an option's value is a string, a boolean or a number, not {}", kind(v)),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        _ => "this",
    }
}

/// What the declaration says against a value, if anything.
fn disallowed(spec: &OptionSpec, v: &Value, value: &str) -> Option<String> {
    let passed = "; passed to the install script as given";
    match spec.kind.as_deref() {
        Some("boolean") => match v {
            Value::Bool(_) => None,
            Value::String(s) if s == "true" || s == "false" => None,
            other => Some(format!("expected true or false, found {other}{passed}")),
        },
        _ => {
            let allowed: Vec<String> = spec.allowed.as_ref()?.iter().filter_map(text).collect();
            (!allowed.contains(&value.to_string())).then(|| {
                format!(
                    "`{value}` is not one of the allowed values: {}{passed}",
                    allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                )
            })
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
        let v = resolve(&declared, &IndexMap::new()).unwrap();
        let want: IndexMap<String, String> = [("version", "lts"), ("install", "true"), ("flavor", "a")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(v, Values { values: want, ..Values::default() });
        let given: IndexMap<String, Value> =
            serde_json::from_value(json!({"version": "20.1", "install": "false", "flavor": "b", "extra": 5})).unwrap();
        let r = resolve(&declared, &given).unwrap();
        let v = &r.values;
        assert_eq!(
            (v["version"].as_str(), v["install"].as_str(), v["flavor"].as_str(), v["extra"].as_str()),
            ("20.1", "false", "b", "5")
        );
        assert_eq!(r.unknown, vec!["extra".to_string()]);
        assert!(r.warnings.is_empty());
        assert!(resolve(&declared, &serde_json::from_value(json!({"version": ["1"]})).unwrap())
            .unwrap_err()
            .message
            .contains("not an array"));
    }

    /// What works in the reference CLI works here: a value the declaration
    /// does not allow reaches the install script as given, with a warning.
    #[test]
    fn values_the_declaration_does_not_allow_pass_with_a_warning() {
        let declared = spec(json!({
            "gatewayPorts": {"type": "string", "enum": ["no", "yes", "clientspecified"], "default": "no"},
            "installZsh": {"type": "boolean", "default": true},
            "installTools": {"type": "boolean", "default": true},
        }));
        let given: IndexMap<String, Value> =
            serde_json::from_value(json!({"gatewayPorts": "maybe", "installZsh": "yes-please", "installTools": 0}))
                .unwrap();
        let r = resolve(&declared, &given).unwrap();
        assert_eq!(
            (r.values["gatewayPorts"].as_str(), r.values["installZsh"].as_str(), r.values["installTools"].as_str()),
            ("maybe", "yes-please", "0")
        );
        let warned: Vec<&str> = r.warnings.iter().map(|w| w.option.as_str()).collect();
        assert_eq!(warned, ["gatewayPorts", "installZsh", "installTools"]);
        assert!(r.warnings[0].message.contains("`no`, `yes`, `clientspecified`"), "{:?}", r.warnings);
        assert!(r.warnings[1].message.contains("expected true or false"), "{:?}", r.warnings);
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
