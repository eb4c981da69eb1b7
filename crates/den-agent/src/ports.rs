//! `den agent ports-watch` (the `den-ports` SSH subsystem): reports the TCP
//! ports processes in the workspace listen on, once at the start and then
//! on every change, so that den's forwarder follows them without asking.
//! The kernel offers no event for a new listening socket, so the agent
//! asks it once a second for the listening TCP sockets (sock_diag netlink,
//! the listening table only; /proc/net/tcp{,6} where that is refused), and
//! looks for the processes behind them only when a new socket listens.
//!
//! The connection that asks for this subsystem is den's port forwarder: it
//! is not a session for the inactivity timeout (see
//! [`mark_forwarder`]), but connections through its ports are activity.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use den_protocol::ListeningPort;

mod diag;

/// Listening sockets in a /proc/net/tcp or tcp6 table: (port, address,
/// socket inode).
pub fn parse_table(text: &str, v6: bool) -> Vec<(u16, String, u64)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else { continue };
        let Ok(port) = u16::from_str_radix(port, 16) else { continue };
        let Some(address) = (if v6 { ipv6(addr) } else { ipv4(addr) }) else { continue };
        let inode = f[9].parse().unwrap_or(0);
        out.push((port, address, inode));
    }
    out
}

/// The kernel writes addresses as native-endian 32-bit words in hex.
fn ipv4(hex: &str) -> Option<String> {
    let n = u32::from_str_radix(hex, 16).ok()?;
    Some(std::net::Ipv4Addr::from(n.to_ne_bytes()).to_string())
}

fn ipv6(hex: &str) -> Option<String> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for word in 0..4 {
        let n = u32::from_str_radix(&hex[word * 8..word * 8 + 8], 16).ok()?;
        bytes[word * 4..word * 4 + 4].copy_from_slice(&n.to_ne_bytes());
    }
    Some(std::net::Ipv6Addr::from(bytes).to_string())
}

/// Docker's embedded DNS server listens in every container of a user
/// network: never a port of the workspace's own.
fn is_engine_port(address: &str) -> bool {
    address == "127.0.0.11"
}

/// Listening sockets by (port, address): their inodes.
type Found = BTreeMap<(u16, String), u64>;

/// The listening sockets now, from sock_diag when the kernel answers it,
/// else from /proc/net/tcp{,6}. Docker's DNS port is left out.
fn listening(diag: &mut Option<diag::Diag>) -> Found {
    let sockets = match diag.as_mut().map(diag::Diag::listening) {
        Some(Ok(s)) => s,
        _ => {
            *diag = None;
            proc_tables()
        }
    };
    sockets.into_iter().filter(|(_, a, _)| !is_engine_port(a)).map(|(p, a, i)| ((p, a), i)).collect()
}

/// /proc/net/tcp and tcp6: the fallback where sock_diag is refused. The
/// kernel walks every bucket of its established-connection table to write
/// them (a few milliseconds each, whatever the container holds).
fn proc_tables() -> Vec<(u16, String, u64)> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        out.extend(parse_table(&std::fs::read_to_string(file).unwrap_or_default(), v6));
    }
    out
}

/// What the watcher knows between rounds: the command line behind each
/// listening socket, and the ports it reported last.
#[derive(Default)]
struct Watch {
    owners: HashMap<u64, String>,
    last: Option<Vec<ListeningPort>>,
}

impl Watch {
    /// The ports to report when they changed since the last round. The
    /// owners of sockets are looked for (`find_owners`, a walk of every
    /// process's fds) only when a socket not seen before listens.
    fn round(
        &mut self,
        found: Found,
        find_owners: impl FnOnce() -> HashMap<u64, String>,
    ) -> Option<Vec<ListeningPort>> {
        if found.values().any(|i| !self.owners.contains_key(i)) {
            let owners = find_owners();
            for inode in found.values() {
                // A socket of a process this user may not look into is
                // named "" once, not looked for every round.
                self.owners.entry(*inode).or_insert_with(|| owners.get(inode).cloned().unwrap_or_default());
            }
        }
        // Only the sockets listening now are remembered.
        self.owners.retain(|inode, _| found.values().any(|i| i == inode));
        let mut ports: Vec<ListeningPort> = Vec::new();
        for ((port, address), inode) in found {
            // One entry per port: a dual listener (0.0.0.0 and ::) is one port.
            if ports.iter().any(|p| p.port == port) {
                continue;
            }
            ports.push(ListeningPort { port, address, process: self.owners.get(&inode).cloned().unwrap_or_default() });
        }
        if self.last.as_ref() == Some(&ports) {
            return None;
        }
        self.last = Some(ports.clone());
        Some(ports)
    }
}

/// Socket inode → the command line of a process holding it (the ones this
/// user may look into).
fn socket_owners() -> HashMap<u64, String> {
    let mut owners = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let mut cmd = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let t = target.to_string_lossy();
            let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) else { continue };
            let Ok(inode) = inode.parse::<u64>() else { continue };
            let cmd = cmd.get_or_insert_with(|| {
                std::fs::read(entry.path().join("cmdline"))
                    .map(|c| {
                        c.split(|b| *b == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            });
            owners.entry(inode).or_insert_with(|| cmd.clone());
        }
    }
    owners
}

/// How often the watcher looks: the kernel has no event for a new
/// listening socket. Once a second, a new port is forwarded within about
/// a second, and an idle workspace's watcher costs next to nothing.
const EVERY: Duration = Duration::from_secs(1);

/// `den agent ports-watch`: JSON lines until den goes away.
pub fn watch_main() -> i32 {
    watch(std::io::stdin(), std::io::stdout());
    0
}

/// The `den-ports` subsystem: a JSON line on `out` at the start and on
/// every change, until `input` ends (the channel closed) or `out` fails.
/// The line server runs it on a thread; `den agent ports-watch` on its
/// stdio.
pub fn watch(mut input: impl std::io::Read + Send + 'static, mut out: impl Write) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ended = std::sync::Arc::new(AtomicBool::new(false));
    {
        let ended = ended.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut std::io::sink());
            ended.store(true, Ordering::SeqCst);
        });
    }
    let mut diag = diag::Diag::open().ok();
    let mut watch = Watch::default();
    while !ended.load(Ordering::SeqCst) {
        if let Some(now) = watch.round(listening(&mut diag), socket_owners) {
            let line = serde_json::to_string(&now).expect("serialises");
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return;
            }
        }
        std::thread::sleep(EVERY);
    }
}

fn forwarders_dir(data: &Path) -> PathBuf {
    data.join("forwarders")
}

/// When a process started (clock ticks since boot): with its pid, it names
/// the process, not a later one that got the same pid.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Marks this process (an SSH server) as serving den's port forwarder.
pub fn mark_forwarder(data: &Path) {
    let dir = forwarders_dir(data);
    let _ = std::fs::create_dir_all(&dir);
    let pid = std::process::id();
    if let Some(t) = start_time(pid) {
        let _ = std::fs::write(dir.join(pid.to_string()), t);
    }
}

/// True when `pid` is an SSH server marked as den's port forwarder (marks
/// of processes that are gone are removed).
pub fn is_forwarder(data: &Path, pid: u32) -> bool {
    let mark = forwarders_dir(data).join(pid.to_string());
    match std::fs::read_to_string(&mark) {
        Ok(t) if Some(t.trim().to_string()) == start_time(pid) => true,
        Ok(_) => {
            let _ = std::fs::remove_file(&mark);
            false
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_of_proc_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3717231 1 0 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 42 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0
   3: 0B00007F:A1B2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0
";
        assert_eq!(
            parse_table(v4, false),
            vec![(8080, "127.0.0.1".into(), 3717231), (3000, "0.0.0.0".into(), 42), (41394, "127.0.0.11".into(), 7)]
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0 100 0 0 10 0
";
        assert_eq!(parse_table(v6, true), vec![(8000, "::".into(), 99), (80, "::1".into(), 98)]);
        assert!(is_engine_port("127.0.0.11"));
    }

    fn found(sockets: &[(u16, &str, u64)]) -> Found {
        sockets.iter().map(|(p, a, i)| ((*p, a.to_string()), *i)).collect()
    }

    #[test]
    fn processes_are_looked_for_only_when_a_new_socket_listens() {
        let mut w = Watch::default();
        let walks = std::cell::Cell::new(0);
        let owners = |pairs: &[(u64, &str)]| {
            walks.set(walks.get() + 1);
            pairs.iter().map(|(i, c)| (*i, c.to_string())).collect::<HashMap<_, _>>()
        };
        // The first round reports even no ports at all, without a walk.
        assert_eq!(w.round(found(&[]), || owners(&[])), Some(vec![]));
        assert_eq!(walks.get(), 0);
        let web = found(&[(8080, "0.0.0.0", 7), (8080, "::", 8)]);
        let reported = w.round(web.clone(), || owners(&[(7, "python3 -m http.server 8080")])).unwrap();
        let port = |p: u16, a: &str, c: &str| ListeningPort { port: p, address: a.into(), process: c.into() };
        assert_eq!(reported, [port(8080, "0.0.0.0", "python3 -m http.server 8080")]);
        assert_eq!(walks.get(), 1);
        // The same sockets: nothing to say and no walk, even for the one
        // whose owner could not be seen (inode 8).
        assert_eq!(w.round(web.clone(), || owners(&[])), None);
        assert_eq!(walks.get(), 1);
        // A port closes: reported without a walk.
        assert_eq!(w.round(found(&[(8080, "0.0.0.0", 7)]), || owners(&[])), None);
        assert_eq!(w.round(found(&[]), || owners(&[])), Some(vec![]));
        assert_eq!(walks.get(), 1);
        // The same port by a new process (a new socket): a walk, and its name.
        let again = w.round(found(&[(8080, "0.0.0.0", 9)]), || owners(&[(9, "node server.js")])).unwrap();
        assert_eq!(again, [port(8080, "0.0.0.0", "node server.js")]);
        assert_eq!(walks.get(), 2);
        assert_eq!(w.owners.keys().collect::<Vec<_>>(), [&9]);
    }

    #[test]
    fn sock_diag_and_the_proc_tables_agree() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let key = (l.local_addr().unwrap().port(), "127.0.0.1".to_string());
        let mut diag = Some(diag::Diag::open().unwrap());
        let from_diag = listening(&mut diag);
        assert!(diag.is_some(), "sock_diag answered");
        let from_proc = listening(&mut None);
        assert!(from_diag.get(&key).is_some_and(|i| *i > 0), "{from_diag:?}");
        assert_eq!(from_diag.get(&key), from_proc.get(&key));
    }

    #[test]
    fn a_process_is_named_by_pid_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_forwarder(dir.path(), std::process::id()));
        mark_forwarder(dir.path());
        assert!(is_forwarder(dir.path(), std::process::id()));
        // A mark whose process is gone (another start time) is dropped.
        std::fs::write(forwarders_dir(dir.path()).join("1"), "0").unwrap();
        assert!(!is_forwarder(dir.path(), 1));
        assert!(!forwarders_dir(dir.path()).join("1").exists());
    }
}
