//! Opening the user's IDE on a workspace. Every IDE reaches the workspace
//! as the SSH host `ID.den` that den wrote into the ssh config; this crate
//! only knows how each IDE is told to open a folder on an SSH host, and
//! where its command line tool is. It knows nothing of containers.

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

/// An IDE den can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ide {
    pub name: &'static str,
    pub title: &'static str,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    /// A VS Code family editor: its CLI with `--folder-uri vscode-remote://…`.
    VsCode {
        cli: &'static str,
        app: &'static str,
    },
    /// Zed: `zed ssh://host/folder`.
    Zed,
    /// A JetBrains IDE through JetBrains Gateway (`jetbrains-gateway://` URL).
    JetBrains {
        product: &'static str,
    },
    /// OpenVSCode Server in the workspace, in the browser (see [`browser`]).
    Browser,
}

const IDES: &[Ide] = &[
    Ide { name: "none", title: "no IDE (connect with `ssh ID.den`)", kind: Kind::None },
    Ide { name: "vscode", title: "Visual Studio Code", kind: Kind::VsCode { cli: "code", app: "Visual Studio Code" } },
    Ide {
        name: "vscode-insiders",
        title: "Visual Studio Code - Insiders",
        kind: Kind::VsCode { cli: "code-insiders", app: "Visual Studio Code - Insiders" },
    },
    Ide { name: "cursor", title: "Cursor", kind: Kind::VsCode { cli: "cursor", app: "Cursor" } },
    Ide { name: "windsurf", title: "Windsurf", kind: Kind::VsCode { cli: "windsurf", app: "Windsurf" } },
    Ide { name: "codium", title: "VSCodium", kind: Kind::VsCode { cli: "codium", app: "VSCodium" } },
    Ide { name: "positron", title: "Positron", kind: Kind::VsCode { cli: "positron", app: "Positron" } },
    Ide { name: "zed", title: "Zed", kind: Kind::Zed },
    Ide { name: "openvscode", title: "OpenVSCode Server (in the browser)", kind: Kind::Browser },
    Ide {
        name: "jetbrains",
        title: "the JetBrains IDE the configuration names (customizations.jetbrains.backend; default IntelliJ IDEA), through JetBrains Gateway",
        kind: Kind::JetBrains { product: "IU" },
    },
    Ide { name: "goland", title: "GoLand (JetBrains Gateway)", kind: Kind::JetBrains { product: "GO" } },
    Ide { name: "intellij", title: "IntelliJ IDEA (JetBrains Gateway)", kind: Kind::JetBrains { product: "IU" } },
    Ide { name: "pycharm", title: "PyCharm (JetBrains Gateway)", kind: Kind::JetBrains { product: "PY" } },
    Ide { name: "rustrover", title: "RustRover (JetBrains Gateway)", kind: Kind::JetBrains { product: "RR" } },
    Ide { name: "webstorm", title: "WebStorm (JetBrains Gateway)", kind: Kind::JetBrains { product: "WS" } },
    Ide { name: "clion", title: "CLion (JetBrains Gateway)", kind: Kind::JetBrains { product: "CL" } },
    Ide { name: "phpstorm", title: "PhpStorm (JetBrains Gateway)", kind: Kind::JetBrains { product: "PS" } },
    Ide { name: "rubymine", title: "RubyMine (JetBrains Gateway)", kind: Kind::JetBrains { product: "RM" } },
    Ide { name: "rider", title: "Rider (JetBrains Gateway)", kind: Kind::JetBrains { product: "RD" } },
];

/// Every IDE den can open, `none` first.
pub fn all() -> &'static [Ide] {
    IDES
}

/// The IDE of a name (`den up --ide NAME`).
pub fn by_name(name: &str) -> Result<Ide, IdeError> {
    IDES.iter().copied().find(|i| i.name == name).ok_or_else(|| IdeError::Unknown(name.to_string()))
}

/// What the IDE opens: a folder on the SSH host `host` (`ID.den`).
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub user: String,
    /// The workspace folder in the container (absolute).
    pub folder: String,
}

/// Where programs are looked for: PATH, then the usual install places.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub path: Option<std::ffi::OsString>,
    pub home: Option<PathBuf>,
}

impl Search {
    pub fn from_env() -> Search {
        Search { path: std::env::var_os("PATH"), home: std::env::var_os("HOME").map(PathBuf::from) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdeError {
    #[error("there is no IDE `{0}` (see `den ide list`)")]
    Unknown(String),
    #[error("{title} was not found (looked for {looked}); open the workspace by hand: {by_hand}")]
    Missing { title: String, looked: String, by_hand: String },
    #[error("--ide-option {name}: {why}")]
    Option { name: String, why: String },
    #[error("the browser IDE's server: {0}")]
    Fetch(String),
    #[error("starting {title} (`{command}`) failed: {source}")]
    Start {
        title: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// The program and arguments that open `target` in `ide` (`None` for
/// `none`), with the program found through `search`.
pub fn command(ide: Ide, target: &Target, search: &Search) -> Result<Option<(PathBuf, Vec<String>)>, IdeError> {
    let (candidates, args): (Vec<PathBuf>, Vec<String>) = match ide.kind {
        Kind::None | Kind::Browser => return Ok(None),
        Kind::VsCode { cli, app } => (
            vscode_places(cli, app, search),
            vec![
                "--folder-uri".into(),
                format!("vscode-remote://ssh-remote+{}{}", target.host, encode_path(&target.folder)),
            ],
        ),
        Kind::Zed => (
            places("zed", &["/usr/bin/zed", "/usr/local/bin/zed", "/Applications/Zed.app/Contents/MacOS/cli"], search)
                .into_iter()
                .chain(search.home.iter().map(|h| h.join(".local/bin/zed")))
                .collect(),
            vec![format!("ssh://{}@{}{}", encode(&target.user), target.host, encode_path(&target.folder))],
        ),
        Kind::JetBrains { product } => {
            let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
            (places(opener, &[], search), vec![gateway_url(product, target)])
        }
    };
    let found = candidates.iter().find(|p| is_executable(p));
    match found {
        Some(p) => Ok(Some((p.clone(), args))),
        None => Err(IdeError::Missing {
            title: ide.title.to_string(),
            looked: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            by_hand: by_hand(ide, target, &args),
        }),
    }
}

/// Opens `target` in `ide`: the IDE's program starts detached from den
/// (its output goes nowhere) and den does not wait for it.
pub fn open(ide: Ide, target: &Target, search: &Search) -> Result<(), IdeError> {
    let Some((program, args)) = command(ide, target, search)? else { return Ok(()) };
    Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|source| IdeError::Start {
            title: ide.title.into(),
            command: format!("{} {}", program.display(), args.join(" ")),
            source,
        })
}

/// How to open the workspace without den's help.
fn by_hand(ide: Ide, target: &Target, args: &[String]) -> String {
    match ide.kind {
        Kind::VsCode { .. } => format!("`ssh {}`, or open {} in the editor", target.host, args[1]),
        Kind::JetBrains { .. } => format!("`ssh {}`, or open {} (JetBrains Gateway)", target.host, args[0]),
        Kind::Zed => format!("`ssh {}`, or `zed {}`", target.host, args[0]),
        Kind::None | Kind::Browser => format!("`ssh {}`", target.host),
    }
}

impl Ide {
    /// The browser IDE, which den starts in the workspace itself.
    pub fn is_browser(&self) -> bool {
        self.kind == Kind::Browser
    }

    /// The `--ide-option` names this IDE takes.
    pub fn option_names(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::Browser => browser::OPTIONS.iter().map(|(n, _)| *n).collect(),
            _ => vec![],
        }
    }
}

/// `jetbrains` made definite by the configuration's
/// `customizations.jetbrains.backend` (`IntelliJ`, `PyCharm`, `GoLand`, …);
/// any other IDE, or an unknown backend, stays as it is.
pub fn for_backend(ide: Ide, backend: &str) -> Ide {
    if ide.name != "jetbrains" {
        return ide;
    }
    let name = match backend.to_ascii_lowercase().replace([' ', '-', '_'], "").as_str() {
        "intellij" | "intellijidea" | "idea" => "intellij",
        "pycharm" => "pycharm",
        "goland" => "goland",
        "webstorm" => "webstorm",
        "phpstorm" => "phpstorm",
        "clion" => "clion",
        "rider" => "rider",
        "rubymine" => "rubymine",
        "rustrover" => "rustrover",
        _ => return ide,
    };
    by_name(name).unwrap_or(ide)
}

/// Opens `url` in the user's browser: `$BROWSER` (the first of its
/// `:`-separated commands), else the platform's opener. Not waited for.
pub fn open_url(url: &str) -> Result<(), IdeError> {
    let browser = std::env::var("BROWSER").ok().and_then(|b| b.split(':').next().map(str::to_string));
    let program = browser.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open".into()
        } else {
            "xdg-open".into()
        }
    });
    let mut child = Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|source| IdeError::Start {
            title: "the browser".into(),
            command: format!("{program} {url}"),
            source,
        })?;
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// JetBrains Gateway's link for an SSH host; Gateway installs the IDE's
/// backend in the workspace (`deploy=true`) for the product given.
fn gateway_url(product: &str, t: &Target) -> String {
    format!(
        "jetbrains-gateway://connect#type=ssh&deploy=true&host={}&port=22&user={}&projectPath={}&productCode={product}",
        encode(&t.host),
        encode(&t.user),
        encode(&t.folder)
    )
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes what is not unreserved in a URL component.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// The `file://` URL of an absolute path.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", encode_path(&path.to_string_lossy()))
}

/// A path in a URI: each segment percent-encoded, the `/`s kept.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// `name` on PATH, then the `fixed` places.
fn places(name: &str, fixed: &[&str], search: &Search) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        search.path.as_ref().map(|p| std::env::split_paths(p).map(|d| d.join(name)).collect()).unwrap_or_default();
    out.extend(fixed.iter().map(PathBuf::from));
    out
}

/// A VS Code family editor's CLI: on PATH, then where its packages and
/// installers put it on Linux and macOS.
fn vscode_places(cli: &str, app: &str, search: &Search) -> Vec<PathBuf> {
    let mut out = places(cli, &[], search);
    for dir in ["/usr/bin", "/usr/local/bin", "/snap/bin"] {
        out.push(Path::new(dir).join(cli));
    }
    let share = app.to_lowercase().replace(' ', "-");
    out.push(PathBuf::from(format!("/usr/share/{share}/bin/{cli}")));
    out.push(PathBuf::from(format!("/Applications/{app}.app/Contents/Resources/app/bin/{cli}")));
    if let Some(h) = &search.home {
        out.push(h.join(".local/bin").join(cli));
        out.push(h.join(format!("Applications/{app}.app/Contents/Resources/app/bin/{cli}")));
    }
    out
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target { host: "api.den".into(), user: "dev".into(), folder: "/workspaces/api".into() }
    }

    fn search_with(dir: &Path, names: &[&str]) -> Search {
        use std::os::unix::fs::PermissionsExt;
        for n in names {
            let p = dir.join(n);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Search { path: Some(dir.as_os_str().to_owned()), home: Some(dir.join("home")) }
    }

    #[test]
    fn each_family_gets_its_arguments() {
        let d = tempfile::tempdir().unwrap();
        let s = search_with(d.path(), &["code", "cursor", "zed", "xdg-open"]);
        let (p, args) = command(by_name("vscode").unwrap(), &target(), &s).unwrap().unwrap();
        assert_eq!(p, d.path().join("code"));
        assert_eq!(args, ["--folder-uri", "vscode-remote://ssh-remote+api.den/workspaces/api"]);
        assert_eq!(command(by_name("cursor").unwrap(), &target(), &s).unwrap().unwrap().0, d.path().join("cursor"));
        assert_eq!(
            command(by_name("zed").unwrap(), &target(), &s).unwrap().unwrap().1,
            ["ssh://dev@api.den/workspaces/api"]
        );
        let (_, args) = command(by_name("goland").unwrap(), &target(), &s).unwrap().unwrap();
        assert_eq!(
            args,
            ["jetbrains-gateway://connect#type=ssh&deploy=true&host=api.den&port=22&user=dev&projectPath=%2Fworkspaces%2Fapi&productCode=GO"]
        );
        assert!(command(by_name("none").unwrap(), &target(), &s).unwrap().is_none());
        // `jetbrains`: the configuration's backend, else IntelliJ IDEA.
        let jb = by_name("jetbrains").unwrap();
        assert_eq!(for_backend(jb, "PyCharm").name, "pycharm");
        assert_eq!(for_backend(jb, "").name, "jetbrains");
        assert!(command(jb, &target(), &s).unwrap().unwrap().1[0].ends_with("productCode=IU"));
        assert_eq!(for_backend(by_name("goland").unwrap(), "PyCharm").name, "goland");
        // A folder with a space or a `#` stays one path in the URI.
        let odd = Target { folder: "/workspaces/my app#1".into(), ..target() };
        let (_, args) = command(by_name("vscode").unwrap(), &odd, &s).unwrap().unwrap();
        assert_eq!(args[1], "vscode-remote://ssh-remote+api.den/workspaces/my%20app%231");
    }

    #[test]
    fn a_missing_editor_says_where_it_looked_and_how_to_open_by_hand() {
        let d = tempfile::tempdir().unwrap();
        let s = search_with(d.path(), &[]);
        let e = command(by_name("vscode").unwrap(), &target(), &s).unwrap_err().to_string();
        assert!(e.starts_with("Visual Studio Code was not found (looked for "), "{e}");
        assert!(e.contains(&d.path().join("code").display().to_string()), "{e}");
        assert!(e.contains("ssh api.den") && e.contains("vscode-remote://ssh-remote+api.den/workspaces/api"), "{e}");
        assert!(by_name("notepad").unwrap_err().to_string().contains("den ide list"));
    }
}
