//! One module per subcommand; each turns its arguments into a validated job and runs it.

pub mod augment;
pub mod inspect;
pub mod shared;
pub mod tokenize;
pub mod verify;

use crate::cli::{Cli, Command};
use anyhow::Result;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Augment(args) => augment::run(*args, cli.quiet),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args, cli.quiet),
        Command::Tokenize(args) => tokenize::run(*args, cli.quiet),
    }
}
