//! `utk merge`: the parts of a run (`OUT/part-IIIII-of-NNNNN/`) joined into one output, or
//! (`--data-path`) Megatron's `--data-path` list naming them.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use utk::merge::{data_path, run as run_job, MergeJob};

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The directory holding part-00000-of-NNNNN/ … (the -o of the runs with --num-shards).
    #[arg(value_name = "OUT")]
    pub parts: PathBuf,

    /// The merged output directory (created; refused if not empty unless --force).
    #[arg(short, long, value_name = "DIR", required_unless_present = "data_path")]
    pub output: Option<PathBuf>,

    /// Print Megatron's --data-path list instead (each part's tokens prefix, weighted by its
    /// token count), copying nothing.
    #[arg(long, conflicts_with = "output")]
    pub data_path: bool,

    /// Overwrite an existing output directory.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: MergeArgs, quiet: bool) -> Result<()> {
    if args.data_path {
        let list = data_path(&args.parts)?;
        let shown: Vec<String> = list
            .iter()
            .map(|(tokens, prefix)| format!("{tokens} {}", prefix.display()))
            .collect();
        println!("{}", shown.join(" "));
        return Ok(());
    }
    let Some(output) = args.output else {
        bail!("give --output DIR, or --data-path");
    };
    let job = MergeJob {
        parts: args.parts,
        output,
        force: args.force,
        command: std::env::args().collect(),
    };
    let s = run_job(&job).with_context(|| format!("merge into {} failed", job.output.display()))?;
    if !quiet {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        println!(
            "utk merge: {} parts, {} windows, {} documents in {}",
            s.parts,
            s.windows,
            s.documents,
            job.output.display()
        );
        println!(
            "  throughput     {:.2} s, {:.1} MB/s written",
            secs,
            s.bytes as f64 / secs / 1e6
        );
    }
    Ok(())
}
