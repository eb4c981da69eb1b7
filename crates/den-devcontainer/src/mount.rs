//! `mounts` entries: docker `--mount` strings or `{type, source, target}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::kind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "Value")]
pub enum Mount {
    /// The docker `--mount` syntax: `type=bind,source=/a,target=/b,readonly`.
    Text(String),
    Object(MountObject),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountObject {
    #[serde(rename = "type")]
    pub kind: MountKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
}

impl Mount {
    /// Parses the docker `--mount` string form, checking it names a target.
    pub fn parse_text(s: &str) -> Result<Mount, String> {
        if mount_field(s, &["target", "dst", "destination"]).is_none() {
            return Err(format!("mount `{s}` has no target (expected e.g. type=bind,source=/a,target=/b)"));
        }
        Ok(Mount::Text(s.to_string()))
    }

    /// Where the mount appears in the container.
    pub fn target(&self) -> String {
        match self {
            Mount::Text(s) => mount_field(s, &["target", "dst", "destination"]).unwrap_or_default(),
            Mount::Object(o) => o.target.clone(),
        }
    }

    /// The value for `docker run --mount`.
    pub fn to_docker_arg(&self) -> String {
        match self {
            Mount::Text(s) => s.clone(),
            Mount::Object(o) => {
                let kind = match o.kind {
                    MountKind::Bind => "bind",
                    MountKind::Volume => "volume",
                };
                let mut fields = vec![format!("type={kind}")];
                if let Some(src) = o.source.as_deref().filter(|s| !s.is_empty()) {
                    fields.push(format!("src={src}"));
                }
                fields.push(format!("dst={}", o.target));
                join_fields(&fields)
            }
        }
    }
}

/// The value of the first of `keys` in a `k=v,k=v` mount string.
pub fn mount_field(s: &str, keys: &[&str]) -> Option<String> {
    split_fields(s).into_iter().find_map(|part| {
        let (k, v) = part.split_once('=')?;
        keys.contains(&k.trim()).then(|| v.trim().to_string())
    })
}

/// The fields of a docker `--mount` value as docker reads them: one CSV
/// record, where a field in double quotes may hold commas and newlines and
/// `""` stands for one quote. Lenient where docker would refuse (a stray
/// quote stays a character), since docker checks the result again.
pub fn split_fields(s: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let (mut quoted, mut at_start) = (false, true);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(String::new());
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    fields
}

/// One `--mount` field, in double quotes when it holds anything CSV gives a
/// meaning to, so that no value can end its field and start another.
pub fn quote_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A docker `--mount` value from its fields (`type=bind`, `source=…`).
pub fn join_fields<S: AsRef<str>>(fields: &[S]) -> String {
    fields.iter().map(|f| quote_field(f.as_ref())).collect::<Vec<_>>().join(",")
}

/// Rewrites each field of a mount string with `f` and quotes the result:
/// how variables are substituted in mounts, so that a value (a folder named
/// `x,source=/etc`) stays inside the field it was written in.
pub fn map_fields(s: &str, f: impl Fn(&str) -> String) -> String {
    join_fields(&split_fields(s).iter().map(|x| f(x)).collect::<Vec<_>>())
}

// A visitor rather than `try_from = "Value"`, so that an error inside the
// object form keeps its path (`mounts[1].type`) and position.
impl<'de> Deserialize<'de> for Mount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Mount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mount string (type=…,source=…,target=…) or an object {\"type\", \"source\", \"target\"}")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mount, E> {
                Mount::parse_text(s).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Mount, A::Error> {
                MountObject::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Mount::Object)
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<Value> for Mount {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        let k = kind(&v);
        Mount::deserialize(v).map_err(|e| format!("{e} (found {k})"))
    }
}

impl From<Mount> for Value {
    fn from(m: Mount) -> Value {
        match m {
            Mount::Text(s) => Value::String(s),
            Mount::Object(o) => {
                let mut map = Map::new();
                map.insert("type".into(), serde_json::to_value(o.kind).unwrap_or(Value::Null));
                if let Some(s) = o.source {
                    map.insert("source".into(), Value::String(s));
                }
                map.insert("target".into(), Value::String(o.target));
                Value::Object(map)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_form() {
        let m = Mount::try_from(json!("source=/a,target=/b,type=bind,consistency=cached")).unwrap();
        assert_eq!(m.target(), "/b");
        assert_eq!(m.to_docker_arg(), "source=/a,target=/b,type=bind,consistency=cached");
        assert_eq!(Mount::try_from(json!("type=volume,src=v,dst=/data")).unwrap().target(), "/data");
    }

    #[test]
    fn object_form() {
        let m = Mount::try_from(json!({"type": "volume", "source": "cache", "target": "/cache"})).unwrap();
        assert_eq!(m.target(), "/cache");
        assert_eq!(m.to_docker_arg(), "type=volume,src=cache,dst=/cache");
        let anon = Mount::try_from(json!({"type": "volume", "target": "/t"})).unwrap();
        assert_eq!(anon.to_docker_arg(), "type=volume,dst=/t");
        assert_eq!(Value::from(m), json!({"type": "volume", "source": "cache", "target": "/cache"}));
    }

    #[test]
    fn fields_round_trip_through_csv_quoting() {
        for hostile in ["/tmp/m/y,source=/etc", "q\"uote", "x,readonly", "a=b", "new\nline", " lead", "plain"] {
            let arg = join_fields(&["type=bind".to_string(), format!("source={hostile}"), "target=/w".to_string()]);
            assert_eq!(
                split_fields(&arg),
                vec!["type=bind".to_string(), format!("source={hostile}"), "target=/w".to_string()],
                "{arg}"
            );
            assert_eq!(mount_field(&arg, &["source"]).as_deref(), Some(hostile.trim()));
            assert_eq!(mount_field(&arg, &["target"]).as_deref(), Some("/w"));
        }
        assert_eq!(join_fields(&["source=/a,b", "target=/t"]), "\"source=/a,b\",target=/t");
        assert_eq!(join_fields(&["source=q\"x"]), "\"source=q\"\"x\"");
        assert_eq!(split_fields("a,,b,"), vec!["a", "", "b", ""]);
    }

    #[test]
    fn substituted_values_cannot_add_fields() {
        let out = map_fields("type=bind,source=${F}/cache,target=/c", |f| f.replace("${F}", "/p,source=/etc"));
        assert_eq!(out, "type=bind,\"source=/p,source=/etc/cache\",target=/c");
        assert_eq!(mount_field(&out, &["source"]).as_deref(), Some("/p,source=/etc/cache"));
        // Fields the user quoted stay one field.
        assert_eq!(
            split_fields(&map_fields("\"source=/a,b\",target=/t", str::to_string)),
            vec!["source=/a,b", "target=/t"]
        );
    }

    #[test]
    fn object_form_quotes_hostile_paths() {
        let m = Mount::try_from(json!({"type": "bind", "source": "/x,readonly", "target": "/t"})).unwrap();
        assert_eq!(m.to_docker_arg(), "type=bind,\"src=/x,readonly\",dst=/t");
    }

    #[test]
    fn bad_mounts() {
        assert!(Mount::try_from(json!("source=/a")).unwrap_err().contains("no target"));
        assert!(Mount::try_from(json!({"type": "tmpfs", "target": "/x"})).is_err());
        assert!(Mount::try_from(json!({"type": "bind"})).is_err());
        assert!(Mount::try_from(json!(5)).is_err());
    }
}
