//! The `utk` binary: parse arguments, run the subcommand, print errors once, exit.

mod cli;
mod cmd;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    ignore_file_size_signal();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `utk … | head` closing the pipe is not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("utk: error: {}", cmd::args::render_error(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Augment(args) => cmd::augment::run(*args, cli.quiet),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Verify(args) => cmd::verify::run(args, cli.quiet),
        Command::Tokenize(args) => cmd::tokenize::run(*args, cli.quiet),
        Command::Merge(args) => cmd::merge::run(args, cli.quiet),
    }
}

/// A file-size limit (`ulimit -f`, quotas) kills a process with SIGXFSZ by default, with no
/// message and its temporary files left behind. Ignored, the write fails with EFBIG instead, and
/// the run reports it, naming the file, and cleans up like after any other write error.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; it is done
    // once, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
