use std::fmt;
use std::path::PathBuf;

/// A place in a file, 1-based, as editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a devcontainer configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSONC at all.
    #[error("{}:{pos}: {message}", path.display())]
    Syntax { path: PathBuf, pos: Pos, message: String },
    /// Well-formed JSONC, but a property has the wrong shape.
    #[error("{}:{pos}: property `{property}`: {message}", path.display())]
    Invalid { path: PathBuf, pos: Pos, property: String, message: String },
    #[error(
        "no devcontainer configuration in {}: looked for .devcontainer/devcontainer.json, .devcontainer.json and .devcontainer/<folder>/devcontainer.json",
        folder.display()
    )]
    NotFound { folder: PathBuf },
    #[error(
        "{} has several devcontainer configurations; choose one with --devcontainer-path:\n{}",
        folder.display(),
        candidates.iter().map(|c| format!("  {}", c.display())).collect::<Vec<_>>().join("\n")
    )]
    Ambiguous { folder: PathBuf, candidates: Vec<PathBuf> },
}

impl ConfigError {
    /// Where in which file the problem is, when it has a place.
    pub fn location(&self) -> Option<(&std::path::Path, Pos)> {
        match self {
            ConfigError::Syntax { path, pos, .. } | ConfigError::Invalid { path, pos, .. } => Some((path, *pos)),
            _ => None,
        }
    }
}

/// A short name for the JSON type of a value, for error messages.
pub(crate) fn kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
