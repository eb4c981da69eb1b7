//! Which ports are forwarded, and how: the configuration's `forwardPorts`
//! and `appPort`, the ports the workspace listens on (with
//! `portsAttributes` / `otherPortsAttributes`), and the ones the user adds.

use den_devcontainer::model::{ForwardPort, OnAutoForward, PortAttributes};
use serde::{Deserialize, Serialize};

/// Why a port is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// `forwardPorts` in the configuration.
    ForwardPorts,
    /// `appPort` (on a machine or in a cluster: the local engine publishes
    /// it by itself).
    AppPort,
    /// A port something in the workspace started listening on.
    Auto,
    /// `den forward`.
    Manual,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::ForwardPorts => "forwardPorts",
            Origin::AppPort => "appPort",
            Origin::Auto => "auto",
            Origin::Manual => "den forward",
        }
    }
}

/// A forward den wants: `host:port` as the workspace sees them, on a local
/// port (the same number unless said otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub host: String,
    pub port: u16,
    pub local_port: u16,
    pub origin: Origin,
}

/// The configuration's forwards: `forwardPorts` (numbers and
/// `"service:port"`), then `appPort` when the engine does not publish it
/// here (`local_engine` false).
pub fn configured(forward: &[ForwardPort], app_port: &[String], local_engine: bool) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    let mut add = |w: Wanted| {
        if !out.iter().any(|o| o.local_port == w.local_port) {
            out.push(w);
        }
    };
    for f in forward {
        match f {
            ForwardPort::Port(p) => {
                add(Wanted { host: "localhost".into(), port: *p, local_port: *p, origin: Origin::ForwardPorts })
            }
            ForwardPort::HostPort { host, port } => {
                add(Wanted { host: host.clone(), port: *port, local_port: *port, origin: Origin::ForwardPorts })
            }
        }
    }
    if !local_engine {
        for a in app_port {
            if let Some((local, port)) = app_port_pair(a) {
                add(Wanted { host: "localhost".into(), port, local_port: local, origin: Origin::AppPort });
            }
        }
    }
    out
}

/// `3000` → (3000, 3000); `8080:80` → (8080, 80); `127.0.0.1:8080:80` →
/// (8080, 80); a `/udp` or a range is not a TCP forward.
fn app_port_pair(s: &str) -> Option<(u16, u16)> {
    let s = s.strip_suffix("/tcp").unwrap_or(s);
    let parts: Vec<&str> = s.split(':').collect();
    let (local, port) = match parts.as_slice() {
        [p] => (*p, *p),
        [l, p] => (*l, *p),
        [_, l, p] => (*l, *p),
        _ => return None,
    };
    Some((local.parse().ok()?, port.parse().ok()?))
}

/// The attributes of `port` (whose listening process has the command line
/// `process`): the first `portsAttributes` key that matches it, as a number,
/// a range `A-B` or a regular expression on the command line; else
/// `otherPortsAttributes`; else none.
pub fn attributes(attrs: &Attributes, other: Option<&PortAttributes>, port: u16, process: &str) -> PortAttributes {
    for (key, a) in attrs {
        if key_matches(key, port, process) {
            return a.clone();
        }
    }
    other.cloned().unwrap_or_default()
}

fn key_matches(key: &str, port: u16, process: &str) -> bool {
    let key = key.trim();
    if let Ok(n) = key.parse::<u16>() {
        return n == port;
    }
    if let Some((a, b)) = key.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            return (a..=b).contains(&port);
        }
    }
    // `host:port` keys name a port of another service.
    if let Some((_, p)) = key.rsplit_once(':') {
        if let Ok(p) = p.parse::<u16>() {
            return p == port;
        }
    }
    !process.is_empty() && regex::Regex::new(key).is_ok_and(|r| r.is_match(process))
}

/// What to do when a port is found listening (`onAutoForward`, default
/// `notify`).
pub fn on_auto_forward(a: &PortAttributes) -> OnAutoForward {
    a.on_auto_forward.unwrap_or(OnAutoForward::Notify)
}

/// The local port for `wanted`: that number when it is free, else (unless
/// `require`) the next free one above it. `Err` names why none.
pub fn pick_local(wanted: u16, require: bool, free: &dyn Fn(u16) -> bool) -> Result<u16, String> {
    if free(wanted) {
        return Ok(wanted);
    }
    if require {
        return Err(format!("local port {wanted} is in use (requireLocalPort)"));
    }
    // Privileged ports are not for den: start above them.
    let start = wanted.max(1024);
    (start.saturating_add(1)..=u16::MAX)
        .take(2000)
        .find(|p| free(*p))
        .ok_or_else(|| format!("no free local port above {wanted}"))
}

/// `portsAttributes` as the record keeps it.
pub type Attributes = indexmap::IndexMap<String, PortAttributes>;

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, label)| (k.to_string(), PortAttributes { label: Some(label.to_string()), ..Default::default() }))
            .collect()
    }

    #[test]
    fn configured_forwards() {
        let f = [ForwardPort::Port(3000), ForwardPort::HostPort { host: "db".into(), port: 5432 }];
        let app = vec!["8080:80".to_string(), "3000".into(), "53/udp".into(), "9000-9010".into()];
        let local = configured(&f, &app, true);
        assert_eq!(local.len(), 2);
        assert_eq!((local[1].host.as_str(), local[1].port, local[1].local_port), ("db", 5432, 5432));
        let remote = configured(&f, &app, false);
        assert_eq!(remote.len(), 3, "{remote:?}");
        assert_eq!((remote[2].port, remote[2].local_port, remote[2].origin), (80, 8080, Origin::AppPort));
    }

    #[test]
    fn attributes_by_number_range_and_process() {
        let a = attrs(&[("3000", "web"), ("9000-9010", "range"), ("db:5432", "db"), ("python3 .*http", "py")]);
        let other = PortAttributes { label: Some("other".into()), ..Default::default() };
        let label = |port, process| attributes(&a, Some(&other), port, process).label.unwrap();
        assert_eq!(label(3000, ""), "web");
        assert_eq!(label(9005, ""), "range");
        assert_eq!(label(5432, ""), "db");
        assert_eq!(label(7777, "/usr/bin/python3 -m http.server 7777"), "py");
        assert_eq!(label(7777, "node server.js"), "other");
        assert_eq!(attributes(&a, None, 1, "").label, None);
        assert_eq!(on_auto_forward(&PortAttributes::default()), OnAutoForward::Notify);
    }

    #[test]
    fn a_busy_port_moves_up_unless_required() {
        let busy = [8080u16, 8081];
        let free = |p: u16| !busy.contains(&p);
        assert_eq!(pick_local(3000, false, &free), Ok(3000));
        assert_eq!(pick_local(8080, false, &free), Ok(8082));
        assert!(pick_local(8080, true, &free).unwrap_err().contains("requireLocalPort"));
        // Below 1024: the next free one is above the privileged range.
        assert_eq!(pick_local(80, false, &|p| p != 80), Ok(1025));
    }
}
