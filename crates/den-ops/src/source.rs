//! What `den up SOURCE` and its flags name, as a [`Source`]: a local
//! folder, a git repository (with a branch, commit or subpath), or an
//! image. Every front end reads SOURCE here (the CLI's flags, the
//! dashboard's form), so both say the same about a bad one.

use std::path::PathBuf;

use den_workspace::{RemoteSource, Source};

use crate::{OpsError, Result};

/// SOURCE and the flags that go with it (`den up`'s and `den build`'s).
#[derive(Debug, Clone, Default)]
pub struct SourceRequest {
    /// SOURCE, or `--source KIND:VALUE`.
    pub given: String,
    pub id: Option<String>,
    pub devcontainer_path: Option<PathBuf>,
    pub provider: Option<String>,
    pub provider_options: Vec<(String, String)>,
    pub fallback_image: Option<String>,
    pub devcontainer_image: Option<String>,
    pub git_branch: Option<String>,
    pub git_commit: Option<String>,
    pub git_subpath: Option<String>,
    pub git_clone_strategy: den_source::Strategy,
    pub git_clone_recursive_submodules: bool,
    pub workspace_env: Vec<(String, String)>,
}

/// The workspace `req` names; a SOURCE that is not a local folder becomes
/// a git or image source.
pub fn source(req: SourceRequest) -> Result<Source> {
    let given = req.given.clone();
    let spec = den_source::parse(&given, &|p| p.exists()).map_err(OpsError::BadInput)?;
    let mut src = Source {
        id: req.id,
        devcontainer_path: req.devcontainer_path,
        provider: req.provider,
        provider_options: req.provider_options,
        fallback_image: req.fallback_image,
        devcontainer_image: req.devcontainer_image,
        workspace_env: req.workspace_env,
        ..Default::default()
    };
    let git_flags = req.git_branch.is_some() || req.git_commit.is_some() || req.git_subpath.is_some();
    let not_git = |what: &str| {
        OpsError::BadInput(format!(
            "--git-branch, --git-commit and --git-subpath are for git sources; `{given}` is {what}"
        ))
    };
    match spec {
        den_source::Spec::Local(_) | den_source::Spec::Image(_) if git_flags => {
            let what = if matches!(spec, den_source::Spec::Local(_)) { "a folder" } else { "an image" };
            return Err(not_git(what));
        }
        den_source::Spec::Local(p) => src.source = p,
        den_source::Spec::Git(mut g) => {
            if let Some(b) = req.git_branch {
                g.reference = den_source::GitRef::Branch(b);
            }
            if let Some(c) = req.git_commit {
                den_source::check_commit(&c).map_err(|e| OpsError::BadInput(format!("--git-commit: {e}")))?;
                g.reference = den_source::GitRef::Commit(c.to_ascii_lowercase());
            }
            if let Some(d) = req.git_subpath {
                g.subpath =
                    Some(den_source::check_subpath(&d).map_err(|e| OpsError::BadInput(format!("--git-subpath: {e}")))?);
            }
            src.remote = Some(RemoteSource {
                spec: den_source::Spec::Git(g),
                strategy: req.git_clone_strategy,
                recursive_submodules: req.git_clone_recursive_submodules,
            });
        }
        spec @ den_source::Spec::Image(_) => {
            src.remote = Some(RemoteSource { spec, strategy: Default::default(), recursive_submodules: false });
        }
    }
    Ok(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_git_urls_and_images() {
        let d = tempfile::tempdir().unwrap();
        let folder = source(SourceRequest { given: d.path().display().to_string(), ..Default::default() }).unwrap();
        assert_eq!(folder.source, d.path());
        assert!(folder.remote.is_none());
        let git = SourceRequest {
            given: "https://example.com/org/repo.git".into(),
            git_branch: Some("dev".into()),
            ..Default::default()
        };
        match source(git).unwrap().remote.unwrap().spec {
            den_source::Spec::Git(g) => assert_eq!(g.reference, den_source::GitRef::Branch("dev".into())),
            other => panic!("{other:?}"),
        }
        let image = source(SourceRequest { given: "image:alpine:3".into(), ..Default::default() }).unwrap();
        assert!(matches!(image.remote.unwrap().spec, den_source::Spec::Image(_)));
    }

    #[test]
    fn git_flags_on_a_folder_or_a_bad_commit_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let req =
            SourceRequest { given: d.path().display().to_string(), git_branch: Some("x".into()), ..Default::default() };
        assert!(source(req).unwrap_err().to_string().contains("is a folder"));
        let req = SourceRequest {
            given: "https://example.com/r.git".into(),
            git_commit: Some("zz".into()),
            ..Default::default()
        };
        assert!(source(req).unwrap_err().to_string().starts_with("--git-commit: "));
    }
}
