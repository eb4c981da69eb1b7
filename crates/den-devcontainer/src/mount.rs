//! `mounts` entries: docker `--mount` strings or `{type, source, target}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::kind;

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
                match &o.source {
                    Some(src) if !src.is_empty() => {
                        format!("type={kind},src={src},dst={}", o.target)
                    }
                    _ => format!("type={kind},dst={}", o.target),
                }
            }
        }
    }
}

/// The value of the first of `keys` in a `k=v,k=v` mount string.
pub fn mount_field(s: &str, keys: &[&str]) -> Option<String> {
    s.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        keys.contains(&k.trim()).then(|| v.trim().to_string())
    })
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
    fn bad_mounts() {
        assert!(Mount::try_from(json!("source=/a")).unwrap_err().contains("no target"));
        assert!(Mount::try_from(json!({"type": "tmpfs", "target": "/x"})).is_err());
        assert!(Mount::try_from(json!({"type": "bind"})).is_err());
        assert!(Mount::try_from(json!(5)).is_err());
    }
}
