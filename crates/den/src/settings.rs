//! Where den's state is and which context to use: resolved once, here,
//! from the flags and their environment variables, and handed down. No
//! library reads them from the environment again.

use std::path::PathBuf;

use den_state::Home;
use den_workspace::Den;

#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--home`, else `$DEN_HOME` (`None`: the platform's data folder).
    pub home: Option<PathBuf>,
    /// `--context`, else `$DEN_CONTEXT` (`None`: the one in use).
    pub context: Option<String>,
}

impl Settings {
    pub fn resolve(home: Option<PathBuf>, context: Option<String>) -> Settings {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Settings {
            home: home.or_else(|| env("DEN_HOME").map(PathBuf::from)),
            context: context.or_else(|| env("DEN_CONTEXT").map(|c| c.to_string_lossy().into_owned())),
        }
    }

    /// den's state, in a context that exists.
    pub fn den(&self) -> anyhow::Result<Den> {
        Ok(Den::open(Home::resolve(self.home.clone())?, self.context.as_deref())?)
    }

    /// What the operations need: den's state, den's own binary, and the
    /// locale every session passes on.
    pub fn ctx(&self) -> anyhow::Result<den_ops::Ctx> {
        use anyhow::Context;
        let exe = std::env::current_exe().context("finding den's own binary")?;
        let env = ["LANG", "LC_ALL", "LC_CTYPE"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Ok(den_ops::Ctx { den: self.den()?, exe, env })
    }

    /// den's state, in a context that may not exist (the context commands).
    pub fn den_any(&self) -> anyhow::Result<Den> {
        Ok(Den::open_any(Home::resolve(self.home.clone())?, self.context.as_deref())?)
    }
}
