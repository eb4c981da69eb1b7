//! `den ports` and `den forward`: what the workspace's port forwarder
//! holds, and changes to it.

use crate::cli::{ForwardArgs, Output, PortsArgs};
use crate::commands::print_json;
use crate::exit;
use crate::settings::Settings;
use den_forward::PortView;
use den_ops::ports::Change;

/// One line for people: `127.0.0.1:8080 → 8080 (web) [auto] python3 …`.
pub fn describe(p: &PortView) -> String {
    let to = if p.host == "localhost" { p.port.to_string() } else { format!("{}:{}", p.host, p.port) };
    let mut line = if p.local.is_empty() { format!("not forwarded → {to}") } else { format!("{} → {to}", p.local) };
    if !p.label.is_empty() {
        line.push_str(&format!(" ({})", p.label));
    }
    line.push_str(&format!(" [{}]", p.origin));
    if !p.process.is_empty() {
        line.push_str(&format!(" {}", p.process));
    }
    if !p.note.is_empty() {
        line.push_str(&format!(" — {}", p.note));
    }
    // The label is the config's and the process the workspace's.
    den_process::text::one_line(&line).into_owned()
}

pub fn list(settings: &Settings, args: PortsArgs) -> anyhow::Result<i32> {
    let report = den_ops::ports::list(&settings.ctx()?, &args.id)?;
    match args.output {
        Output::Json => print_json(&serde_json::json!({
            "id": args.id,
            "forwarder": report.forwarder,
            "connected": report.connected,
            "ports": report.ports,
        }))?,
        Output::Text => {
            if !report.forwarder {
                eprintln!("no port forwarder runs for `{}` (`den up {}` starts one)", args.id, args.id);
            } else if !report.connected {
                eprintln!("the forwarder of `{}` is connecting to the workspace", args.id);
            }
            for p in &report.ports {
                println!("{}", describe(p));
            }
        }
    }
    Ok(exit::OK)
}

/// `[LOCAL:]REMOTE` or `[LOCAL:]HOST:REMOTE`.
fn parse_spec(s: &str) -> anyhow::Result<(Option<u16>, String, u16)> {
    let bad = || anyhow::anyhow!("`{s}` is not [LOCAL:]REMOTE or [LOCAL:]HOST:REMOTE (ports are numbers 1-65535)");
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [r] => Ok((None, "localhost".into(), port(r)?)),
        [l, r] => Ok((Some(port(l)?), "localhost".into(), port(r)?)),
        [l, h, r] if !h.is_empty() => Ok((Some(port(l)?), h.to_string(), port(r)?)),
        _ => Err(bad()),
    }
}

pub fn forward(settings: &Settings, args: ForwardArgs) -> anyhow::Result<i32> {
    let ctx = settings.ctx()?;
    let change = match (&args.spec, args.stop) {
        (_, Some(port)) => Change::Stop { port },
        (Some(spec), None) => {
            let (local_port, host, port) = parse_spec(spec)?;
            Change::Add { host, port, local_port }
        }
        (None, None) => anyhow::bail!("give [LOCAL:]REMOTE or --stop PORT"),
    };
    let stopped = match change {
        Change::Stop { port } => Some(port),
        Change::Add { .. } => None,
    };
    let added = den_ops::ports::forward(&ctx, &args.id, change)?;
    if let Some(p) = added {
        eprintln!("{}", describe(&p));
    } else if let Some(port) = stopped {
        eprintln!("port {port} is no longer forwarded");
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs() {
        assert_eq!(parse_spec("8080").unwrap(), (None, "localhost".into(), 8080));
        assert_eq!(parse_spec("9000:8080").unwrap(), (Some(9000), "localhost".into(), 8080));
        assert_eq!(parse_spec("15432:db:5432").unwrap(), (Some(15432), "db".into(), 5432));
        for bad in ["", "x", "0", "70000", "1:2:3:4", "1::3", "a:80"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
