//! JSONC (JSON with comments and trailing commas) to `serde_json::Value`,
//! remembering where every value starts so later errors can point at it.

use std::collections::HashMap;
use std::path::Path;

use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use serde_json::{Map, Number, Value};

use crate::error::{ConfigError, Pos};

/// A parsed document: its value and the position of every value in it, keyed
/// by JSON pointer (`/build/args/FOO`, `/forwardPorts/0`).
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub value: Value,
    positions: HashMap<String, Pos>,
}

impl Document {
    /// The position of the value at `pointer`, or of its nearest parent that
    /// has one (the whole document starts at 1:1).
    pub fn position(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }
}

/// Escapes one key for use in a JSON pointer (RFC 6901).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Parses JSONC text. `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        // VS Code's JSONC does not accept bare words as keys; neither do we.
        allow_loose_object_property_names: false,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let collect = jsonc_parser::CollectOptions { tokens: true, ..Default::default() };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &options).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        pos: Pos { line: e.line_display(), column: e.column_display() },
        message: lowercase_first(&e.kind().to_string()),
    })?;
    let Some(root) = parsed.value else {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            pos: Pos { line: 1, column: 1 },
            message: "the file is empty; expected a JSON object".into(),
        });
    };
    // The parser forgives a missing comma between two members; JSONC as VS
    // Code reads it does not, so neither do we.
    let lines = LineIndex::new(text);
    let tokens = parsed.tokens.as_deref().unwrap_or_default();
    // Nor does it accept single-quoted strings (JSON5), which this parser
    // would.
    if let Some(t) = tokens.iter().find(|t| {
        matches!(t.token, jsonc_parser::tokens::Token::String(_)) && text.as_bytes().get(t.range.start) == Some(&b'\'')
    }) {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            pos: lines.pos(t.range.start),
            message: "strings must be in double quotes".into(),
        });
    }
    let commas: Vec<usize> = tokens
        .iter()
        .filter(|t| matches!(t.token, jsonc_parser::tokens::Token::Comma))
        .map(|t| t.range.start)
        .collect();
    let mut positions = HashMap::new();
    let cx = Convert { lines: &lines, commas: &commas, path };
    let value = cx.value(root, String::new(), &mut positions)?;
    Ok(Document { value, positions })
}

struct Convert<'t> {
    lines: &'t LineIndex<'t>,
    commas: &'t [usize],
    path: &'t Path,
}

impl Convert<'_> {
    /// Fails unless a comma stands between two members, from `prev_end` to
    /// `next_start`.
    fn comma_between(&self, prev_end: usize, next_start: usize) -> Result<(), ConfigError> {
        let i = self.commas.partition_point(|&c| c < prev_end);
        if self.commas.get(i).is_some_and(|&c| c < next_start) {
            Ok(())
        } else {
            Err(ConfigError::Syntax {
                path: self.path.to_path_buf(),
                pos: self.lines.pos(next_start),
                message: "expected a comma before this value".into(),
            })
        }
    }

    fn value(
        &self,
        v: ast::Value<'_>,
        pointer: String,
        positions: &mut HashMap<String, Pos>,
    ) -> Result<Value, ConfigError> {
        let (lines, path) = (self.lines, self.path);
        let start = v.range().start;
        let pos = lines.pos(start);
        positions.insert(pointer.clone(), pos);
        Ok(match v {
            ast::Value::StringLit(s) => Value::String(s.value.into_owned()),
            ast::Value::NumberLit(n) => {
                let number: Number = serde_json::from_str(n.value)
                    .or_else(|_| serde_json::from_str(n.value.trim_start_matches('+')))
                    .map_err(|_| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        pos,
                        message: format!("`{}` is not a valid JSON number", n.value),
                    })?;
                Value::Number(number)
            }
            ast::Value::BooleanLit(b) => Value::Bool(b.value),
            ast::Value::NullKeyword(_) => Value::Null,
            ast::Value::Array(a) => {
                let mut out = Vec::with_capacity(a.elements.len());
                let mut prev_end = None;
                for (i, e) in a.elements.into_iter().enumerate() {
                    let r = e.range();
                    if let Some(end) = prev_end {
                        self.comma_between(end, r.start)?;
                    }
                    prev_end = Some(r.end);
                    out.push(self.value(e, format!("{pointer}/{i}"), positions)?);
                }
                Value::Array(out)
            }
            ast::Value::Object(o) => {
                let mut out = Map::new();
                let mut prev_end = None;
                for prop in o.properties {
                    if let Some(end) = prev_end {
                        self.comma_between(end, prop.range.start)?;
                    }
                    prev_end = Some(prop.range.end);
                    let key = prop.name.into_string();
                    let child = format!("{pointer}/{}", pointer_token(&key));
                    let value = self.value(prop.value, child, positions)?;
                    // Like JSON.parse: a repeated key keeps its last value.
                    out.insert(key, value);
                }
                Value::Object(out)
            }
        })
    }
}

/// Byte offset → line and column (columns count characters, not bytes).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let column = self.text[self.starts[line]..offset.min(self.text.len())].chars().count() + 1;
        Pos { line: line + 1, column }
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Result<Document, ConfigError> {
        parse(text, Path::new("dc.json"))
    }

    #[test]
    fn comments_and_trailing_commas() {
        let d = p("// top\n{\n  /* block */ \"a\": [1, 2,], // end\n  \"b\": {\"c\": true,},\n}\n").unwrap();
        assert_eq!(d.value, json!({"a": [1, 2], "b": {"c": true}}));
    }

    #[test]
    fn positions_by_pointer() {
        let d = p("{\n  \"a\": [1,\n    \"x\"],\n  \"b/c\": {\"d\": null}\n}").unwrap();
        assert_eq!(d.position("/a"), Pos { line: 2, column: 8 });
        assert_eq!(d.position("/a/1"), Pos { line: 3, column: 5 });
        assert_eq!(d.position("/b~1c/d"), Pos { line: 4, column: 16 });
        // unknown pointer falls back to the nearest parent
        assert_eq!(d.position("/a/1/zz"), Pos { line: 3, column: 5 });
        assert_eq!(d.position("/nope"), Pos { line: 1, column: 1 });
    }

    #[test]
    fn columns_count_characters() {
        let d = p("{\"é\": \"ü\", \"k\": 1}").unwrap();
        assert_eq!(d.position("/k"), Pos { line: 1, column: 17 });
    }

    #[test]
    fn syntax_error_is_located() {
        let e = p("{\n  \"a\": 1\n  \"b\": 2\n}").unwrap_err();
        let (_, pos) = e.location().unwrap();
        assert_eq!(pos.line, 3, "{e}");
        assert_eq!(e.to_string(), "dc.json:3:3: expected a comma before this value");
        let e = p("[1 2]").unwrap_err();
        assert_eq!(e.to_string(), "dc.json:1:4: expected a comma before this value");
    }

    #[test]
    fn unterminated_and_empty() {
        let e = p("{\"a\": \"x").unwrap_err();
        assert!(e.to_string().starts_with("dc.json:1:"), "{e}");
        let e = p("  // only a comment\n").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn single_quotes_are_errors() {
        let e = p("{\n  \"image\": 'x'\n}").unwrap_err();
        assert_eq!(e.to_string(), "dc.json:2:12: strings must be in double quotes");
        assert!(p("{'image': \"x\"}").is_err());
        // an apostrophe inside a string is fine
        assert!(p("{\"a\": \"it's\"}").is_ok());
    }

    #[test]
    fn bare_word_keys_are_errors() {
        let e = p("{ a: 1 }").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    }

    #[test]
    fn last_duplicate_key_wins() {
        assert_eq!(p("{\"a\": 1, \"a\": 2}").unwrap().value, json!({"a": 2}));
    }

    #[test]
    fn bom_is_ignored() {
        assert_eq!(p("\u{feff}{}").unwrap().value, json!({}));
    }
}
