//! `--num-shards N --shard-index I` (shared by `augment` and `tokenize`), the Slurm array
//! variables when they are absent, and what a rerun of a part does (resume).

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use utk::part::{existing, Existing, Part};

#[derive(Args, Debug)]
pub struct PartArgs {
    /// Split the run into N parts, each a complete output in OUT/part-IIIII-of-NNNNN/ (join them
    /// with `utk merge`). Without it, inside a Slurm array job, the part is SLURM_ARRAY_TASK_ID −
    /// SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "N", requires = "shard_index")]
    pub num_shards: Option<u32>,

    /// Which part to do, 0 to N−1 (with --num-shards).
    #[arg(long, value_name = "I", requires = "num_shards")]
    pub shard_index: Option<u32>,
}

impl PartArgs {
    /// The part this process does: the flags, else the Slurm array variables, else none.
    pub fn part(&self) -> Result<Option<Part>> {
        match (self.num_shards, self.shard_index) {
            (Some(n), Some(i)) => Part::new(i, n).map(Some),
            _ => Part::from_slurm(|k| std::env::var(k).ok()),
        }
    }
}

/// What to do about the part's directory `dir`, given the record a run would write: `Ok(true)`
/// to run (with `force` when an unfinished run is to be redone), `Ok(false)` when the part is
/// complete already (said on standard error unless quiet).
pub fn should_run(
    dir: &Path,
    record: &str,
    planned: &serde_json::Value,
    part: &Part,
    force: &mut bool,
    quiet: bool,
) -> Result<bool> {
    if *force {
        return Ok(true);
    }
    match existing(dir, record, planned)? {
        Existing::Nothing => Ok(true),
        Existing::Incomplete => {
            if !quiet {
                eprintln!(
                    "utk: {} in {} did not finish: redoing it",
                    part.describe(),
                    dir.display()
                );
            }
            *force = true;
            Ok(true)
        }
        Existing::Complete => {
            if !quiet {
                println!(
                    "utk: {} is complete already in {} (same inputs, configuration and part): \
                     nothing to do",
                    part.describe(),
                    dir.display()
                );
            }
            Ok(false)
        }
        Existing::Different(d) => bail!(
            "{} holds {} made with another configuration ({d}, existing vs this run); pass \
             --force to redo it, or choose another output",
            dir.display(),
            part.describe()
        ),
    }
}

/// `OUT/part-IIIII-of-NNNNN`.
pub fn part_dir(out: &Path, part: &Part) -> PathBuf {
    out.join(part.dir_name())
}
