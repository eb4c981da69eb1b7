//! How `up` shows what it is doing: a spinner with the phase and elapsed
//! time on a terminal, plain lines otherwise (CI logs, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    start: Instant,
    phase: Option<(String, Instant)>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        Progress { start: Instant::now(), phase: None, bar }
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
