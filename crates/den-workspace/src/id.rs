use std::path::Path;

/// The workspace id for a folder: its basename, lowercased, with every
/// character other than `[a-z0-9-]` replaced by `-`.
pub fn workspace_id_for(folder: &Path) -> String {
    let base = folder.file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
    normalize(&base)
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
        assert_eq!(workspace_id_for(Path::new("/src/Ünï")), "-n-");
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
