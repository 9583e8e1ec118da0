//! The ids of the tokens UtK inserts, and the rules that keep them unforgeable.
//!
//! Every role (`<CL>`, `</CL>`, `<S>`, `<s>`, `</S>`, knots `T_b`/`H_b`, pad, EOD) must be an id
//! that tokenizing text can never produce. By default roles get new ids after the *highest id the
//! tokenizer knows* (added tokens included — not its reported vocabulary size, which can have gaps).
//! A user may map a role to an existing token only if the tokenizer marks it special (models often
//! have spare embedding rows there); ordinary tokens, even ones that look special, are refused.

use super::{Encoder, EodChoice, EOD_CANDIDATES};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The EOD when no token of [`EOD_CANDIDATES`] is special in the tokenizer: the `eos_token` of the
/// `tokenizer_config.json` beside the `tokenizer.json`, if the tokenizer marks it special (a
/// model with its own separator, e.g. `<EOT>`, names it there). It comes last because chat models
/// name the end of a *turn* there (Qwen's `<|im_end|>`), which must not end documents; their
/// document separator is a candidate and is found first. `Err` says why it is not used.
pub fn eod_from_config(enc: &Encoder) -> Result<EodChoice, String> {
    let config = enc.path().with_file_name("tokenizer_config.json");
    let token = config_eos_token(&config)?;
    let id = enc.token_to_id(&token).ok_or_else(|| {
        format!(
            "the eos_token {token:?} of {} is not a token of it",
            config.display()
        )
    })?;
    if !enc.is_special(id) {
        return Err(format!(
            "the eos_token {token:?} of {} is not marked special in the tokenizer",
            config.display()
        ));
    }
    Ok(EodChoice {
        id,
        token: Some(token),
        rule: format!(
            "eos_token of tokenizer_config.json beside the tokenizer (no special token of {} found)",
            EOD_CANDIDATES.join(" ")
        ),
    })
}

/// The `eos_token` of a `tokenizer_config.json`: a string, or an added-token object with a
/// `content` string (older files).
fn config_eos_token(config: &Path) -> Result<String, String> {
    let shown = config.display();
    let text = match std::fs::read_to_string(config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("there is no {shown} naming an eos_token"))
        }
        Err(e) => return Err(format!("{shown} cannot be read ({e})")),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{shown} is not JSON ({e})"))?;
    let eos = &json["eos_token"];
    eos.as_str()
        .or_else(|| eos["content"].as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("{shown} names no eos_token"))
}

/// A structural role in an augmented window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Eod,
    Pad,
    /// `<CL>`: opens a chunk label.
    Cl,
    /// `</CL>`: closes a chunk label.
    ClEnd,
    /// `<S>`: opens a backtrace list.
    Bt,
    /// `<s>`: separates labels in a backtrace list.
    BtSep,
    /// `</S>`: closes a backtrace list.
    BtEnd,
    /// `T_b`: ends chunk `b` of a piece.
    Tail(u32),
    /// `H_b`: starts chunk `b + 1` of a piece.
    Head(u32),
}

impl Role {
    /// The name used on the command line and in the manifest (`cl`, `tail2`, …).
    pub fn key(self) -> String {
        match self {
            Role::Eod => "eod".into(),
            Role::Pad => "pad".into(),
            Role::Cl => "cl".into(),
            Role::ClEnd => "cl_end".into(),
            Role::Bt => "bt".into(),
            Role::BtSep => "bt_sep".into(),
            Role::BtEnd => "bt_end".into(),
            Role::Tail(b) => format!("tail{b}"),
            Role::Head(b) => format!("head{b}"),
        }
    }

    /// The name shown to people (`<CL>`, `<T2>`, …).
    pub fn display(self) -> String {
        match self {
            Role::Eod => "<EOD>".into(),
            Role::Pad => "<PAD>".into(),
            Role::Cl => "<CL>".into(),
            Role::ClEnd => "</CL>".into(),
            Role::Bt => "<S>".into(),
            Role::BtSep => "<s>".into(),
            Role::BtEnd => "</S>".into(),
            Role::Tail(b) => format!("<T{b}>"),
            Role::Head(b) => format!("<H{b}>"),
        }
    }

    pub fn parse(key: &str) -> Option<Role> {
        Some(match key {
            "eod" => Role::Eod,
            "pad" => Role::Pad,
            "cl" => Role::Cl,
            "cl_end" => Role::ClEnd,
            "bt" => Role::Bt,
            "bt_sep" => Role::BtSep,
            "bt_end" => Role::BtEnd,
            _ => {
                if let Some(b) = key.strip_prefix("tail") {
                    Role::Tail(b.parse().ok().filter(|b| *b > 0)?)
                } else if let Some(b) = key.strip_prefix("head") {
                    Role::Head(b.parse().ok().filter(|b| *b > 0)?)
                } else {
                    return None;
                }
            }
        })
    }
}

/// The resolved id of every role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialTokens {
    pub eod: u32,
    pub pad: u32,
    pub cl: u32,
    pub cl_end: u32,
    pub bt: u32,
    pub bt_sep: u32,
    pub bt_end: u32,
    /// `tails[b - 1]` is `T_b`.
    pub tails: Vec<u32>,
    /// `heads[b - 1]` is `H_b`.
    pub heads: Vec<u32>,
}

impl SpecialTokens {
    /// Every role with its id, EOD first, then in allocation order.
    pub fn roles(&self) -> Vec<(Role, u32)> {
        let mut v = vec![
            (Role::Eod, self.eod),
            (Role::Pad, self.pad),
            (Role::Cl, self.cl),
            (Role::ClEnd, self.cl_end),
            (Role::Bt, self.bt),
            (Role::BtSep, self.bt_sep),
            (Role::BtEnd, self.bt_end),
        ];
        for (i, (&t, &h)) in self.tails.iter().zip(&self.heads).enumerate() {
            let b = i as u32 + 1;
            v.push((Role::Tail(b), t));
            v.push((Role::Head(b), h));
        }
        v
    }

    /// The role of an id, if it has one.
    pub fn role_of(&self, id: u32) -> Option<Role> {
        self.roles()
            .into_iter()
            .find(|&(_, i)| i == id)
            .map(|(r, _)| r)
    }

    /// The largest id any role uses.
    pub fn max_id(&self) -> u32 {
        self.roles().into_iter().map(|(_, i)| i).max().unwrap_or(0)
    }

    /// `role key → id`, for the manifest.
    pub fn to_map(&self) -> BTreeMap<String, u32> {
        self.roles()
            .into_iter()
            .map(|(r, i)| (r.key(), i))
            .collect()
    }

    /// Rebuilds the ids from a manifest's `special_tokens` map.
    pub fn from_map(map: &BTreeMap<String, u32>) -> Result<SpecialTokens> {
        let get = |k: &str| {
            map.get(k)
                .copied()
                .with_context(|| format!("the manifest has no id for special token `{k}`"))
        };
        let mut tails = Vec::new();
        let mut heads = Vec::new();
        for b in 1.. {
            match (map.get(&format!("tail{b}")), map.get(&format!("head{b}"))) {
                (Some(&t), Some(&h)) => {
                    tails.push(t);
                    heads.push(h);
                }
                _ => break,
            }
        }
        Ok(SpecialTokens {
            eod: get("eod")?,
            pad: get("pad")?,
            cl: get("cl")?,
            cl_end: get("cl_end")?,
            bt: get("bt")?,
            bt_sep: get("bt_sep")?,
            bt_end: get("bt_end")?,
            tails,
            heads,
        })
    }

    /// Resolves every role for windows whose pieces have at most `max_chunks` chunks.
    ///
    /// `overrides` are `ROLE=TOKEN` or `ROLE=ID` (from `--special-token`); `base` is where new ids
    /// start (`--special-base`, default: one past the highest id the tokenizer knows or EOD).
    pub fn resolve(
        enc: &Encoder,
        max_chunks: u32,
        overrides: &[String],
        base: Option<u32>,
    ) -> Result<SpecialTokens> {
        let eod = enc.eod.id;
        let max_known = enc.max_known_id();
        let mut mapped: HashMap<Role, u32> = HashMap::new();
        let mut used: HashMap<u32, Role> = HashMap::from([(eod, Role::Eod)]);
        for spec in overrides {
            let (key, value) = spec.split_once('=').with_context(|| {
                format!(
                    "--special-token {spec:?}: expected ROLE=TOKEN or ROLE=ID, e.g. cl=<|fim_pad|>"
                )
            })?;
            let role = Role::parse(key.trim()).with_context(|| {
                format!("--special-token {spec:?}: unknown role {key:?} (roles: pad, cl, cl_end, bt, bt_sep, bt_end, tail1.., head1..)")
            })?;
            if role == Role::Eod {
                bail!("--special-token {spec:?}: choose the end-of-document token with --eod-token or --eod-id");
            }
            if let Role::Tail(b) | Role::Head(b) = role {
                if b >= max_chunks {
                    bail!("--special-token {spec:?}: boundary {b} does not exist when pieces have at most {max_chunks} chunks");
                }
            }
            let id = match value.trim().parse::<u32>() {
                Ok(id) => id,
                Err(_) => enc.token_to_id(value).with_context(|| {
                    format!(
                        "--special-token {spec:?}: {value:?} is not a token of {}",
                        enc.path().display()
                    )
                })?,
            };
            if id <= max_known && !enc.is_special(id) {
                bail!(
                    "--special-token {spec:?}: id {id} ({:?}) is an ordinary token that text can produce; \
                     map roles only to tokens the tokenizer marks special, or to ids above {max_known}",
                    enc.id_to_token(id).unwrap_or_default()
                );
            }
            if let Some(other) = used.insert(id, role) {
                bail!(
                    "--special-token {spec:?}: id {id} is already used for {}",
                    other.key()
                );
            }
            if mapped.insert(role, id).is_some() {
                bail!("--special-token: role {} is mapped twice", role.key());
            }
        }
        let floor = max_known.max(eod) + 1;
        let mut next = base.unwrap_or(floor);
        if next <= max_known {
            bail!("--special-base {next} must be above {max_known}, the highest id the tokenizer knows");
        }
        let taken: HashSet<u32> = used.keys().copied().collect();
        let mut take = |role: Role| -> Result<u32> {
            if let Some(&id) = mapped.get(&role) {
                return Ok(id);
            }
            while taken.contains(&next) {
                next += 1;
            }
            let id = next;
            next = next
                .checked_add(1)
                .context("special-token ids overflow u32")?;
            Ok(id)
        };
        let pad = take(Role::Pad)?;
        let cl = take(Role::Cl)?;
        let cl_end = take(Role::ClEnd)?;
        let bt = take(Role::Bt)?;
        let bt_sep = take(Role::BtSep)?;
        let bt_end = take(Role::BtEnd)?;
        let mut tails = Vec::new();
        let mut heads = Vec::new();
        for b in 1..max_chunks {
            tails.push(take(Role::Tail(b))?);
            heads.push(take(Role::Head(b))?);
        }
        Ok(SpecialTokens {
            eod,
            pad,
            cl,
            cl_end,
            bt,
            bt_sep,
            bt_end,
            tails,
            heads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn role_keys_round_trip() {
        for r in [
            Role::Eod,
            Role::Pad,
            Role::Cl,
            Role::ClEnd,
            Role::Bt,
            Role::BtSep,
            Role::BtEnd,
            Role::Tail(3),
            Role::Head(12),
        ] {
            assert_eq!(Role::parse(&r.key()), Some(r));
        }
        assert_eq!(Role::parse("tail0"), None);
        assert_eq!(Role::parse("knot"), None);
    }
}
