//! `registry/repository[:tag][@sha256:…]` references.

use std::fmt;

use crate::OciError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// `devcontainers/features/node`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

fn valid_component(c: &str) -> bool {
    // The distribution spec's path component: lowercase alphanumerics
    // joined by `.`, `_`, `__` or runs of `-`.
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl Reference {
    /// Parses a reference whose first component is a registry host (it
    /// holds a `.` or a `:`, or is `localhost`).
    pub fn parse(s: &str) -> Result<Reference, OciError> {
        let bad = |why: &str| OciError::BadReference(s.to_string(), why.to_string());
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(bad("a digest is `sha256:` and 64 lowercase hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (registry, path) =
            rest.split_once('/').ok_or_else(|| bad("it names no registry (`REGISTRY/NAME[:TAG]`)"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("its first part is not a registry host (`ghcr.io/…`, `localhost:5000/…`)"));
        }
        if registry.chars().any(|c| c.is_whitespace() || c == '@' || c == '?' || c == '#') {
            return Err(bad("the registry host is not valid"));
        }
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repository, tag) = match last.rfind(':') {
            Some(i) => {
                let tag = &last[i + 1..];
                if !valid_tag(tag) {
                    return Err(bad("a tag is letters, digits, `.`, `_` and `-`"));
                }
                (&path[..path.len() - tag.len() - 1], Some(tag.to_string()))
            }
            None => (path, None),
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad("a repository name is lowercase letters, digits and `.`, `_`, `-` between them"));
        }
        Ok(Reference { registry: registry.to_ascii_lowercase(), repository: repository.to_string(), tag, digest })
    }

    /// The tag or digest to fetch: the digest when there is one, else the
    /// tag, else `latest`.
    pub fn target(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// Loopback registries are spoken to in plain http.
    pub fn is_loopback(&self) -> bool {
        let host = self.registry.rsplit_once(':').map_or(self.registry.as_str(), |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                &self.registry
            }
        });
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }

    /// `https://registry` (`http://` for loopback).
    pub fn origin(&self) -> String {
        let host = if self.registry == "docker.io" { "registry-1.docker.io" } else { &self.registry };
        format!("{}://{host}", if self.is_loopback() { "http" } else { "https" })
    }

    pub(crate) fn api_base(&self) -> String {
        format!("{}/v2/{}", self.origin(), self.repository)
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository at a digest.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference { tag: None, digest: Some(digest.to_string()), ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_references_parse() {
        let r = Reference::parse("ghcr.io/devcontainers/features/node:1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("ghcr.io", "devcontainers/features/node", Some("1"))
        );
        assert_eq!(r.target(), "1");
        assert_eq!(r.origin(), "https://ghcr.io");
        let r = Reference::parse("localhost:5000/team/features/hello").unwrap();
        assert_eq!((r.tag.as_deref(), r.target()), (None, "latest"));
        assert_eq!(r.origin(), "http://localhost:5000");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/x/y@{d}")).unwrap();
        assert_eq!(r.target(), d);
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/x/y@{d}"));
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "node",
            "devcontainers/features/node",
            "ghcr.io/Dev/Node:1",
            "ghcr.io/x/y:",
            "ghcr.io/x/y@sha256:12",
            "ghcr.io/x//y",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(!Reference::parse("localhost.evil.com/x/y").unwrap().is_loopback());
    }
}
