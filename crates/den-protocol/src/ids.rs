//! Names that travel to the far side and must not be taken for anything
//! else there (an option of the program they are handed to).

/// An extension id as the marketplaces write them: `publisher.name`,
/// optionally `@version`; nothing that a server could take for an option.
pub fn is_extension_id(id: &str) -> bool {
    let (name, version) = id.split_once('@').unwrap_or((id, ""));
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 2
        && parts.iter().all(|p| word(p))
        && !name.starts_with('-')
        && version.chars().all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids() {
        assert!(is_extension_id("ms-python.python") && is_extension_id("golang.go@0.41.2"));
        for bad in ["--without-connection-token", "a", "a.b.c", "-a.b", "a.b@1;x", "a b.c", ""] {
            assert!(!is_extension_id(bad), "{bad}");
        }
    }
}
