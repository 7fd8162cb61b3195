//! Modes and groups (ORIGINAL §5 \[C\]): the tokens after `UNIT/COMMAND:` are group names
//! (expanding to atoms), mode atoms, or `variants` tags of orders, which only the unit file
//! knows; those stay pending until `generate::variants` checks them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::config::globals::Globals;
use crate::error::ConfigError;

/// The mode atoms and groups that apply to a command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModeConfig {
    pub atoms: BTreeSet<String>,
    pub groups: IndexMap<String, Vec<String>>,
    /// The file that defines them (the unit's globals.yaml).
    pub file: Option<PathBuf>,
}

/// Atoms and groups of `sections` (`global` first, later sections win on a group name clash).
pub fn mode_config(
    globals: Option<&Globals>,
    sections: &[&str],
) -> Result<ModeConfig, ConfigError> {
    let Some(g) = globals else {
        return Ok(ModeConfig::default());
    };
    let mut cfg = ModeConfig::default();
    let mut names = vec!["global"];
    for s in sections {
        if !names.contains(s) {
            names.push(s);
        }
    }
    for s in &names {
        if let Some(atoms) = g.modes.get(*s) {
            cfg.atoms.extend(atoms.iter().cloned());
        }
    }
    for s in &names {
        if let Some(groups) = g.groups.get(*s) {
            for (name, atoms) in groups {
                cfg.groups.insert(name.clone(), atoms.clone());
            }
        }
    }
    let mut undefined: Vec<String> = cfg
        .groups
        .values()
        .flatten()
        .filter(|a| !cfg.atoms.contains(*a))
        .cloned()
        .collect();
    undefined.sort();
    undefined.dedup();
    if !undefined.is_empty() {
        return Err(ConfigError::UndefinedAtoms {
            context: "globals.yaml".into(),
            atoms: undefined,
        });
    }
    Ok(cfg)
}

/// The result of expanding the requested tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expanded {
    /// Active atoms and tags.
    pub active: BTreeSet<String>,
    /// Tokens that are neither atoms nor groups: they must turn out to be variant tags (or test
    /// variants), which are only known once the unit file is read.
    pub pending: Vec<String>,
}

/// Expands groups into atoms; keeps unknown tokens pending.
pub fn expand(tokens: &[String], cfg: &ModeConfig) -> Expanded {
    let mut out = Expanded::default();
    for t in tokens {
        if let Some(atoms) = cfg.groups.get(t) {
            out.active.extend(atoms.iter().cloned());
        } else if cfg.atoms.contains(t) {
            out.active.insert(t.clone());
        } else {
            out.active.insert(t.clone());
            if !out.pending.contains(t) {
                out.pending.push(t.clone());
            }
        }
    }
    out
}
