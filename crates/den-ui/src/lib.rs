//! `den ui`: the workspaces dashboard, served by den itself on the
//! loopback address. The page (assets/, embedded) lists the workspaces of
//! a context and follows their changes, runs the operations the CLI runs
//! (the same den-ops functions, the same locks and records) and opens
//! terminals through the agent, as `den ssh` does.
//!
//! Who may talk to it is [`guard`]'s: every request, websockets included,
//! passes its checks first. docs/ui.md tells the security model.

mod api;
mod assets;
mod create;
pub mod guard;
pub mod instance;
pub mod ops;
mod server;
mod terminal;
mod watch;

use std::path::PathBuf;

pub use instance::Instance;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl UiError {
    fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> UiError {
        let action = action.into();
        move |source| UiError::Io { action, source }
    }
}

pub type Result<T, E = UiError> = std::result::Result<T, E>;

/// What the server needs: den's state (contexts are chosen per request),
/// den's own binary and the locale for the operations, where to listen.
#[derive(Debug, Clone)]
pub struct Options {
    pub home: den_state::Home,
    /// The context the page starts in (`None`: the one in use).
    pub context: Option<String>,
    pub exe: PathBuf,
    pub env: Vec<(String, String)>,
    /// `None`: a free port.
    pub port: Option<u16>,
    /// The ssh config a new workspace's `Host ID.den` goes to (as for
    /// `den up`).
    pub ssh_config: Option<PathBuf>,
}

/// The dashboard already running for this DEN_HOME, if one does.
pub fn running(home: &den_state::Home) -> Option<Instance> {
    instance::running(home.root())
}

/// Opens the browser on the dashboard at `url` through a page under
/// DEN_HOME (0600) that sends it on: the URL holds the token, which in
/// the browser's command line would show to every user of the machine.
pub fn open_browser(home: &den_state::Home, url: &str) -> Result<()> {
    let page = instance::page(home.root());
    den_state::atomic_write(&page, den_ide::browser::redirect_page(url).as_bytes())
        .map_err(|e| UiError::Failed(e.to_string()))?;
    den_ide::open_url(&den_ide::file_url(&page)).map_err(|e| UiError::Failed(e.to_string()))
}

/// Serves the dashboard until SIGINT or SIGTERM; `ready` gets its URL
/// (with the token) once it listens. Nothing it started runs after it
/// returns: the listener is closed, terminals and streams are ended, and
/// `ui.json` is removed.
pub fn serve(opts: Options, ready: impl FnOnce(&str)) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(UiError::io("starting the server's runtime"))?;
    let result = rt.block_on(server::run(opts, ready));
    // Blocking reads (a terminal's thread) must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}
