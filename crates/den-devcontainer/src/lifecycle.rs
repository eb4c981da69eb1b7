//! Lifecycle commands (`onCreateCommand` and friends) in the spec's three
//! forms: a string (run by `/bin/sh -c`), an array (run directly, no shell),
//! and an object of named commands that run in parallel.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::error::kind;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "Value")]
pub enum LifecycleCommand {
    /// Run with `/bin/sh -c`.
    Shell(String),
    /// Run as it is, without a shell: program and arguments.
    Exec(Vec<String>),
    /// Named commands, each a string or an array, run in parallel.
    Parallel(IndexMap<String, Step>),
}

/// One command that runs: in a shell or directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Shell(String),
    Exec(Vec<String>),
}

impl Step {
    /// The argv to run: `["/bin/sh", "-c", s]` for the shell form.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Step::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            Step::Exec(v) => v.clone(),
        }
    }

    /// Nothing to run: an empty string or array.
    pub fn is_empty(&self) -> bool {
        match self {
            Step::Shell(s) => s.trim().is_empty(),
            Step::Exec(v) => v.is_empty(),
        }
    }
}

impl From<Step> for Value {
    fn from(s: Step) -> Value {
        match s {
            Step::Shell(s) => Value::String(s),
            Step::Exec(v) => Value::from(v),
        }
    }
}

impl LifecycleCommand {
    /// The commands to run, with their names for the parallel form. They all
    /// start together; the hook is done when every one is.
    pub fn steps(&self) -> Vec<(Option<&str>, Step)> {
        match self {
            LifecycleCommand::Shell(s) => vec![(None, Step::Shell(s.clone()))],
            LifecycleCommand::Exec(v) => vec![(None, Step::Exec(v.clone()))],
            LifecycleCommand::Parallel(m) => {
                m.iter().filter(|(_, s)| !s.is_empty()).map(|(k, s)| (Some(k.as_str()), s.clone())).collect()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.steps().iter().all(|(_, s)| s.is_empty())
    }
}

// A visitor, so an error in one named command keeps its path
// (`postStartCommand.server`) and position.
impl<'de> Deserialize<'de> for LifecycleCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = LifecycleCommand;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, an array of strings, or an object of named commands")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(LifecycleCommand::Shell(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(LifecycleCommand::Exec(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = IndexMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    // null means "no command" (a later config may switch one off)
                    if let Some(StepDe(step)) = map.next_value::<Option<StepDe>>()? {
                        out.insert(name, step);
                    }
                }
                Ok(LifecycleCommand::Parallel(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One named command of the object form: a string or an array of strings.
struct StepDe(Step);

impl<'de> Deserialize<'de> for StepDe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StepDe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command: a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StepDe, E> {
                Ok(StepDe(Step::Shell(s.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StepDe, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(StepDe(Step::Exec(v)))
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<Value> for LifecycleCommand {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        let k = kind(&v);
        LifecycleCommand::deserialize(v).map_err(|e| format!("{e} (found {k})"))
    }
}

impl From<LifecycleCommand> for Value {
    fn from(c: LifecycleCommand) -> Value {
        match c {
            LifecycleCommand::Shell(s) => Value::String(s),
            LifecycleCommand::Exec(v) => Value::from(v),
            LifecycleCommand::Parallel(m) => Value::Object(m.into_iter().map(|(k, s)| (k, Value::from(s))).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<LifecycleCommand, String> {
        LifecycleCommand::try_from(v)
    }

    #[test]
    fn string_form_runs_in_sh() {
        let c = parse(json!("echo hi && true")).unwrap();
        assert_eq!(c.steps(), vec![(None, Step::Shell("echo hi && true".into()))]);
        assert_eq!(c.steps()[0].1.argv(), vec!["/bin/sh", "-c", "echo hi && true"]);
    }

    #[test]
    fn array_form_runs_without_shell() {
        let c = parse(json!(["echo", "a b", "$HOME"])).unwrap();
        assert_eq!(c.steps()[0].1.argv(), vec!["echo", "a b", "$HOME"]);
    }

    #[test]
    fn object_form_is_parallel_and_ordered() {
        let c = parse(json!({"server": "npm start", "db": ["pg_ctl", "start"], "off": null, "empty": ""})).unwrap();
        let steps = c.steps();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0], (Some("server"), Step::Shell("npm start".into())));
        assert_eq!(steps[1], (Some("db"), Step::Exec(vec!["pg_ctl".into(), "start".into()])));
        // round trip keeps the form
        assert_eq!(Value::from(c), json!({"server": "npm start", "db": ["pg_ctl", "start"], "empty": ""}));
    }

    #[test]
    fn empty_commands() {
        assert!(parse(json!("")).unwrap().is_empty());
        assert!(parse(json!([])).unwrap().is_empty());
        assert!(parse(json!({})).unwrap().is_empty());
        assert!(!parse(json!("x")).unwrap().is_empty());
    }

    #[test]
    fn wrong_shapes() {
        assert!(parse(json!(3)).unwrap_err().contains("found a number"));
        assert!(parse(json!(["ok", 1])).unwrap_err().contains("expected a string"));
        assert!(parse(json!({"a": {"b": 1}})).unwrap_err().contains("a command: a string or an array"));
    }
}
