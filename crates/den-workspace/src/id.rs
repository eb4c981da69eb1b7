use std::path::Path;

/// The workspace id for a folder, always one that [`validate`] accepts:
/// its basename transliterated to ASCII (`Ünïcødé-名前` → `unicode-ming-qian`),
/// lowercased, every run of other characters made one `-`, trimmed, at most
/// 48 characters; when nothing is left, `ws-` and a hash of the path.
pub fn workspace_id_for(folder: &Path) -> String {
    let base = folder.file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
    let mut id = String::new();
    for c in deunicode::deunicode(&base).to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    id.truncate(48);
    let id = id.trim_end_matches('-').to_string();
    if !id.is_empty() {
        return id;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(folder.as_os_str().as_encoded_bytes());
    format!("ws-{}", hash.iter().take(5).map(|b| format!("{b:02x}")).collect::<String>())
}

pub(crate) fn normalize(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' })
        .collect()
}

/// Checks an id given with `--id`.
pub(crate) fn validate(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 48 {
        return Err(format!("workspace id `{id}` must have 1 to 48 characters"));
    }
    if !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') || id.starts_with('-') {
        return Err(format!("workspace id `{id}` may only hold a-z, 0-9 and - (and not start with -)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_folders() {
        assert_eq!(workspace_id_for(Path::new("/src/My_App.v2")), "my-app-v2");
        assert_eq!(workspace_id_for(Path::new("/src/api")), "api");
        assert_eq!(workspace_id_for(Path::new("/src/Ünïcødé-名前")), "unicode-ming-qian");
        assert_eq!(workspace_id_for(Path::new("/src/--a  b--")), "a-b");
        for odd in ["/src/🚀🚀", "/src/---", "/src/.", "/"] {
            let id = workspace_id_for(Path::new(odd));
            assert!(validate(&id).is_ok(), "{odd}: {id}");
        }
        assert!(workspace_id_for(Path::new("/src/---")).starts_with("ws-"));
        assert_eq!(workspace_id_for(&Path::new("/src").join("x".repeat(80))).len(), 48);
    }

    #[test]
    fn explicit_ids() {
        assert!(validate("ok-1").is_ok());
        assert!(validate("").is_err());
        assert!(validate("Bad").is_err());
        assert!(validate("-x").is_err());
        assert!(validate(&"a".repeat(49)).is_err());
    }
}
