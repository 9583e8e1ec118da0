//! The `utk` binary: parse arguments, run the subcommand, print errors once, exit.

mod cli;
mod cmd;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
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
    }
}
