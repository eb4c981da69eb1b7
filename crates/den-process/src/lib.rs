//! Running external commands, in one place.

pub mod text;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A command to run: program, arguments, extra environment.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    dir: Option<std::path::PathBuf>,
    user_umask: bool,
}

/// The umask the process started with, once [`private_files`] replaced it.
static USER_UMASK: AtomicU32 = AtomicU32::new(u32::MAX);

/// From now on every file this process (and what it runs) creates is the
/// user's alone: umask 077, whatever the user's is. The user's umask is
/// kept for the commands that make the user's own files
/// ([`Cmd::user_umask`], e.g. a clone of the user's repository).
pub fn private_files() {
    // SAFETY: umask(2) has no preconditions and cannot fail.
    let old = unsafe { libc::umask(0o077) };
    if USER_UMASK.load(Ordering::Relaxed) == u32::MAX {
        USER_UMASK.store(old as u32, Ordering::Relaxed);
    }
}

/// A command that failed: what ran, how it ended, what it said.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` {status}{}", stderr_tail(.stderr))]
    Failed { command: String, status: String, code: Option<i32>, stderr: String },
}

impl ProcessError {
    /// The stderr of a failed command (empty for spawn errors).
    pub fn stderr(&self) -> &str {
        match self {
            ProcessError::Failed { stderr, .. } => stderr,
            ProcessError::Spawn { .. } => "",
        }
    }

    pub fn code(&self) -> Option<i32> {
        match self {
            ProcessError::Failed { code, .. } => *code,
            ProcessError::Spawn { .. } => None,
        }
    }

    /// True when the program itself was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The last `n` lines of a command's output (what an error shows of it).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn stderr_tail(stderr: &str) -> String {
    let tail = last_lines(stderr, 20);
    if tail.is_empty() {
        return String::new();
    }
    format!(":\n{}", tail.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"))
}

/// Output of a command that succeeded.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().into(),
            args: vec![],
            env: vec![],
            env_remove: vec![],
            dir: None,
            user_umask: false,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().into()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env.push((k.as_ref().into(), v.as_ref().into()));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(k.as_ref().into());
        self
    }

    pub fn current_dir(mut self, d: impl Into<std::path::PathBuf>) -> Self {
        self.dir = Some(d.into());
        self
    }

    /// Runs with the umask the user started den with (not den's private
    /// one): for files that are the user's, not den's.
    pub fn user_umask(mut self) -> Self {
        self.user_umask = true;
        self
    }

    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The command line as a user could paste it into a shell.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A `std::process::Command` for this, with nothing about stdio decided.
    pub fn to_command(&self) -> Command {
        tracing::debug!(target: "den::exec", "run: {}", self.display());
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for k in &self.env_remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        let mask = USER_UMASK.load(Ordering::Relaxed);
        if self.user_umask && mask != u32::MAX {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask(2) is async-signal-safe and touches no memory.
            unsafe {
                c.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        c
    }

    /// Runs to completion, capturing stdout and stderr; non-zero is an error.
    pub fn output(&self) -> Result<Output, ProcessError> {
        self.output_with_stdin(None)
    }

    /// Like [`Cmd::output`], writing `stdin` to the command first.
    pub fn output_with_stdin(&self, stdin: Option<&[u8]>) -> Result<Output, ProcessError> {
        let mut c = self.to_command();
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|source| self.spawn_error(source))?;
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().expect("piped");
            let bytes = bytes.to_vec();
            // Write from a thread so a command that talks before reading
            // all its input cannot dead-lock with us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let out = child.wait_with_output().map_err(|source| self.spawn_error(source))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(self.failed(out.status, stderr))
        }
    }

    /// Runs with stdout and stderr going to ours; non-zero is an error.
    pub fn status(&self) -> Result<(), ProcessError> {
        let status = self.to_command().stdin(Stdio::null()).status().map_err(|source| self.spawn_error(source))?;
        if status.success() {
            Ok(())
        } else {
            Err(self.failed(status, String::new()))
        }
    }

    /// Starts with the given stdio, for streaming use.
    pub fn spawn(&self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Result<Child, ProcessError> {
        self.to_command().stdin(stdin).stdout(stdout).stderr(stderr).spawn().map_err(|source| self.spawn_error(source))
    }

    pub fn spawn_error(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Spawn { command: self.display(), source }
    }

    pub fn failed(&self, status: ExitStatus, stderr: String) -> ProcessError {
        ProcessError::Failed { command: self.display(), status: describe(status), code: status.code(), stderr }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".into(),
    }
}

/// Quotes one word for a POSIX shell, only when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc-1.2"), "abc-1.2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn failure_carries_command_and_stderr() {
        let e = Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]).output().unwrap_err();
        assert_eq!(e.code(), Some(3));
        let text = e.to_string();
        assert!(text.starts_with("`sh -c 'echo oops >&2; exit 3'` exited with code 3"), "{text}");
        assert!(text.contains("  oops"), "{text}");
    }

    #[test]
    fn missing_program() {
        let e = Cmd::new("/nonexistent/prog").output().unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("/nonexistent/prog"));
    }

    #[test]
    fn stdin_env_and_output() {
        let out =
            Cmd::new("sh").args(["-c", "cat; echo \"$X\""]).env("X", "y").output_with_stdin(Some(b"in\n")).unwrap();
        assert_eq!(out.stdout, "in\ny\n");
    }
}
