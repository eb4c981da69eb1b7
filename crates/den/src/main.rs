//! `den`: reproducible dev workspaces on any infrastructure.
//!
//! This file owns what the user sees when something fails: every command
//! returns a `Result`, and `main` turns it into a message and an exit code.

mod cli;
mod commands;
mod exit;
mod progress;
mod settings;

use clap::Parser;

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Agent(_)) {
        // DEN_HOME holds keys, tokens, logs of install scripts: whichever
        // command makes a file or folder there first, it is the user's
        // alone. (The agent makes files in the workspace for its users.)
        den_process::private_files();
    }
    init_tracing(cli.debug);
    let settings = settings::Settings::resolve(cli.home.clone(), cli.context.clone());
    let json = cli.output() == cli::Output::Json;
    let code = match commands::run(cli, &settings) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                // `den … | head` closing early is not a failure.
                exit::OK
            } else {
                let code = exit::code_for(&err);
                eprintln!("den: {}", den_process::text::lines(&render(&err)));
                if json {
                    // A script that asked for JSON gets JSON on failure too.
                    let error = serde_json::json!({
                        "error": { "message": render(&err), "exitCode": code, "kind": exit::kind(&err) }
                    });
                    println!("{error}");
                }
                code
            }
        }
    };
    // Exit codes are 0-255 (a hook's own code is passed on only in that range).
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILURE as u8))
}

/// glibc's malloc serves blocks of 128 KiB and more with a fresh mmap and
/// gives them back at free, and trims the heap top eagerly: SSH streaming
/// allocates such buffers per packet, and a profile showed page faults and
/// page zeroing among den's top costs. Larger thresholds keep them in the
/// heap for reuse.
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// The error and its causes, one per line, each saying what was being done.
fn render(err: &anyhow::Error) -> String {
    den_ops::exit::render(err.chain())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}
