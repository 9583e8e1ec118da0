//! Parts of a run (`--num-shards N --shard-index I`, or a Slurm array task): which part this
//! process does, what a part's manifest records about it, the seed its random streams are drawn
//! from, and whether an existing part is complete, incomplete or made differently (resume).
//!
//! The split itself is a step on the resolved input ([`crate::input::Input::select_part`]);
//! joining the parts is [`crate::merge`].

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The highest part count: the directory name has five digits.
pub const MAX_PARTS: u32 = 99_999;

/// Part `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub index: u32,
    pub count: u32,
    /// Taken from `SLURM_ARRAY_TASK_*` rather than given.
    pub from_slurm: bool,
}

impl Part {
    /// Part `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Part> {
        if count == 0 || count > MAX_PARTS {
            bail!("the number of parts must be between 1 and {MAX_PARTS}, not {count}");
        }
        if index >= count {
            bail!(
                "part index {index} is not below the number of parts {count} (indexes start at 0)"
            );
        }
        Ok(Part {
            index,
            count,
            from_slurm: false,
        })
    }

    /// The part of a Slurm array task: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`, or `None` outside an array job. `var` reads the environment.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Part>> {
        let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT"))
        else {
            return Ok(None);
        };
        let number = |name: &str, v: &str| -> Result<u32> {
            v.trim()
                .parse::<u32>()
                .with_context(|| format!("{name}={v:?} is not a task number"))
        };
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        let count = number("SLURM_ARRAY_TASK_COUNT", &count)?;
        let min = match var("SLURM_ARRAY_TASK_MIN") {
            Some(v) => number("SLURM_ARRAY_TASK_MIN", &v)?,
            None => 0,
        };
        let index = id.checked_sub(min).unwrap_or(u32::MAX);
        if index >= count {
            bail!(
                "SLURM_ARRAY_TASK_ID {id} − SLURM_ARRAY_TASK_MIN {min} is not below \
                 SLURM_ARRAY_TASK_COUNT {count}: submit a contiguous array without a step \
                 (--array=0-{}), or pass --num-shards and --shard-index",
                count.saturating_sub(1)
            );
        }
        let mut part = Part::new(index, count)?;
        part.from_slurm = true;
        Ok(Some(part))
    }

    /// `part-IIIII-of-NNNNN`.
    pub fn dir_name(&self) -> String {
        dir_name(self.index, self.count)
    }

    /// The seed of this part's random streams: the run's seed for part 0 (so one part is a
    /// plain run), a different stream for every other part.
    pub fn stream_seed(&self, seed: u64) -> u64 {
        if self.index == 0 {
            return seed;
        }
        // splitmix64 of the seed and the index: streams of different parts share nothing.
        let mut z = seed ^ (self.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// "part 3 of 8", with where it came from.
    pub fn describe(&self) -> String {
        let from = match self.from_slurm {
            true => " (from SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)",
            false => "",
        };
        format!("part {} of {}{from}", self.index, self.count)
    }
}

/// `part-IIIII-of-NNNNN`.
pub fn dir_name(index: u32, count: u32) -> String {
    format!("part-{index:05}-of-{count:05}")
}

/// `(index, count)` of a directory named `part-IIIII-of-NNNNN`.
pub fn parse_dir_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("part-")?;
    let (i, n) = rest.split_once("-of-")?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(i) && digits(n)) {
        return None;
    }
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// What a part's manifest records about the part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub index: u32,
    pub count: u32,
    /// The seed of this part's random streams (the run's `seed` for part 0).
    pub stream_seed: u64,
    /// `flags` (`--num-shards`/`--shard-index`) or `slurm` (the array variables).
    pub chosen_by: String,
    /// How many inputs the whole run has (every part), so sources number the same in a merge.
    pub inputs: u32,
    /// What of the inputs this part read, in order.
    pub sources: Vec<PartSource>,
}

/// One input, or a range of one, that a part read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSource {
    /// The input's index in the whole run's input list.
    pub input: u32,
    /// The input's path as given.
    pub path: String,
    /// `[start, end)`: bytes of a plain JSONL file or documents of a token shard; absent when
    /// the part read the whole input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
    /// Lines read from a JSONL byte range (its provenance lines count from the range's start;
    /// a merge adds the lines of the earlier ranges of the same file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
}

impl PartRecord {
    pub fn new(part: &Part, seed: u64, inputs: u32, sources: Vec<PartSource>) -> PartRecord {
        PartRecord {
            index: part.index,
            count: part.count,
            stream_seed: part.stream_seed(seed),
            chosen_by: if part.from_slurm { "slurm" } else { "flags" }.into(),
            inputs,
            sources,
        }
    }

    /// Records the lines read from each text source (in source order).
    pub fn set_lines(&mut self, lines: &[u64]) {
        for (s, &n) in self.sources.iter_mut().zip(lines) {
            if s.range.is_some() {
                s.lines = Some(n);
            }
        }
    }
}

/// What an output directory of a part holds already.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: a fresh run.
    Nothing,
    /// A run that did not finish (no manifest, or files that disagree with it): redo it.
    Incomplete,
    /// Complete, with the same inputs, configuration and part: nothing to do.
    Complete,
    /// Complete, but made differently: the first difference.
    Different(String),
}

/// Manifest keys that describe what a run found or how it went, not what it was asked to do:
/// left out when two runs are compared.
pub const OUTCOME_KEYS: &[&str] = &[
    "command",
    "chosen_by",
    "windows",
    "files",
    "counts",
    "cpu_seconds",
    "tool_version",
    "path",
    "backend_detail",
    "lines",
    "documents",
    "tokens",
    "input_bytes",
    "blank_lines",
    "bad_lines",
];

/// Outcome entries named by their path from the top, where the key alone would also name what
/// a run was asked to do elsewhere (`input.sources` lists the inputs).
pub const OUTCOME_PATHS: &[&str] = &["upsample.sources", "upsample.documents_without_field"];

/// `value` without the [`OUTCOME_KEYS`] at any depth and the [`OUTCOME_PATHS`]: what a run was
/// asked to do.
pub fn identity(value: &Value) -> Value {
    identity_at("", value)
}

fn identity_at(path: &str, value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k, join_path(path, k), v))
                .filter(|(k, p, _)| {
                    !OUTCOME_KEYS.contains(&k.as_str()) && !OUTCOME_PATHS.contains(&p.as_str())
                })
                .map(|(k, p, v)| (k.clone(), identity_at(&p, v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| identity_at(path, v)).collect()),
        v => v.clone(),
    }
}

/// `path.key`, or `key` at the top.
fn join_path(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    }
}

/// The first place where `a` and `b` differ, as `path: A vs B`, or `None` when equal.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    difference_at("", a, b)
}

fn difference_at(path: &str, a: &Value, b: &Value) -> Option<String> {
    let join = |k: &str| join_path(path, k);
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                difference_at(
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference_at(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some(format!("{path}: {} vs {}", short(a), short(b))),
    }
}

/// A value in a message, cut short when long.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// What `dir` holds, given the record a run would write as `record_name` (`manifest.json`, or
/// `utk tokenize`'s `PREFIX.json`): a record naming files (`files[].path`, `bytes`) is complete
/// when each is there at its size.
pub fn existing(dir: &Path, record_name: &str, planned: &Value) -> Result<Existing> {
    let path = crate::output::reader::inside(dir, record_name)?;
    if !path.is_file() {
        let any = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        return Ok(if any {
            Existing::Incomplete
        } else {
            Existing::Nothing
        });
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let Ok(found) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Existing::Incomplete);
    };
    if !files_complete(dir, &found)? {
        return Ok(Existing::Incomplete);
    }
    Ok(
        match first_difference(&identity(&found), &identity(planned)) {
            None => Existing::Complete,
            Some(d) => Existing::Different(d),
        },
    )
}

/// Every file the record lists is there at the listed size.
fn files_complete(dir: &Path, record: &Value) -> Result<bool> {
    let Some(files) = record["files"].as_array() else {
        return Ok(true);
    };
    for f in files {
        let (Some(name), Some(bytes)) = (f["path"].as_str(), f["bytes"].as_u64()) else {
            return Ok(false);
        };
        let path = crate::output::reader::inside(dir, name)?;
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(bytes) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slurm_variables_give_the_part() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Part::from_slurm(env(&[])).unwrap(), None);
        let p = Part::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((p.index, p.count, p.from_slurm), (2, 4, true));
        let stepped = Part::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]));
        assert!(stepped.unwrap_err().to_string().contains("contiguous"));
    }

    #[test]
    fn names_round_trip_and_seeds_differ() {
        assert_eq!(dir_name(3, 12), "part-00003-of-00012");
        assert_eq!(parse_dir_name("part-00003-of-00012"), Some((3, 12)));
        assert_eq!(parse_dir_name("part-3-of-12"), None);
        let p = |i| Part::new(i, 4).unwrap();
        assert_eq!(p(0).stream_seed(9), 9);
        assert_ne!(p(1).stream_seed(9), p(2).stream_seed(9));
        assert_ne!(p(1).stream_seed(9), 9);
        assert!(Part::new(4, 4).is_err());
    }

    #[test]
    fn differences_name_the_key() {
        let a = json!({"config": {"seed": 1, "split_prob": 0.8}, "counts": {"documents": 3}});
        let b = json!({"config": {"seed": 1, "split_prob": 0.5}, "counts": {"documents": 4}});
        let d = first_difference(&identity(&a), &identity(&b)).unwrap();
        assert_eq!(d, "config.split_prob: 0.8 vs 0.5");
        let c = json!({"config": {"seed": 1, "split_prob": 0.8}, "counts": {"documents": 9}});
        assert_eq!(first_difference(&identity(&a), &identity(&c)), None);
    }
}
