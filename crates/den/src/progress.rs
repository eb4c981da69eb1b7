//! How `up` shows what it is doing: a spinner with the phase and elapsed
//! time on a terminal, plain lines otherwise (CI logs, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The spinner shows from the first phase until [`Progress::finish`], so
/// one `Progress` can go with a command that may or may not report (a
/// session that starts its workspace first).
pub struct Progress {
    start: Instant,
    phase: Option<(String, Instant)>,
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        Progress { start: Instant::now(), phase: None, terminal: std::io::stderr().is_terminal(), bar: None }
    }

    fn show(&mut self) {
        if self.terminal && self.bar.is_none() {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(100));
            self.bar = Some(b);
        }
    }

    fn print(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn close_phase(&mut self) {
        if let (Some((name, since)), Some(_)) = (&self.phase, &self.bar) {
            self.print(&format!("✓ {name} ({:.2}s)", since.elapsed().as_secs_f64()));
        }
    }

    /// Ends the display (success or not).
    pub fn finish(&mut self) {
        self.close_phase();
        self.phase = None;
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl den_workspace::Reporter for Progress {
    fn phase(&mut self, name: &str, detail: &str) {
        self.show();
        let same = self.phase.as_ref().is_some_and(|(n, _)| n == name);
        if !same {
            self.close_phase();
            self.phase = Some((name.to_string(), Instant::now()));
        }
        let text = if detail.is_empty() { name.to_string() } else { format!("{name}: {detail}") };
        let text = den_process::text::one_line(&text).into_owned();
        match &self.bar {
            Some(b) => b.set_message(text),
            None => {
                if !same || !detail.is_empty() {
                    eprintln!("[{:6.2}s] {text}", self.start.elapsed().as_secs_f64());
                }
            }
        }
    }

    fn line(&mut self, text: &str) {
        self.print(&format!("  {text}"));
    }
}

impl den_ops::Progress for Progress {
    fn finish(&mut self) {
        Progress::finish(self);
    }

    fn output(&mut self, tag: &str, line: &str) {
        self.print(&format!("[{tag}] {line}"));
    }

    fn say(&mut self, text: &str) {
        self.print(&format!("den: {}", den_process::text::lines(text)));
    }
}
