//! One module per subcommand, each glue: arguments → a validated job → the library's run →
//! the summary printed. [`args`] holds the flags and parsers more than one shares.

pub mod args;
pub mod augment;
pub mod inspect;
pub mod merge;
pub mod parts;
pub mod tokenize;
pub mod verify;
