//! Per-unit `globals.yaml` (ORIGINAL §1.7): the unit's argument parser, its modes and groups,
//! extra template variables and the template search path.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml_ng::Value;

/// The contents of `units/<unit>/globals.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Globals {
    /// `global` and per-command lists of arguments.
    #[serde(default)]
    pub parser: IndexMap<String, Vec<ArgumentEntry>>,
    /// `global` and per-command lists of mode atoms.
    #[serde(default)]
    pub modes: IndexMap<String, Vec<String>>,
    /// `global` and per-command named sets of atoms.
    #[serde(default)]
    pub groups: IndexMap<String, IndexMap<String, Vec<String>>>,
    /// Template variables of the highest precedence.
    #[serde(default)]
    pub environment: serde_yaml_ng::Mapping,
    #[serde(default)]
    pub jinja: Option<Jinja>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jinja {
    /// A second directory for `{% include %}` / `{% import %}`, tried after `units/`.
    pub macroloader_path: Option<String>,
}

/// One entry of a parser list: `- argument: {...}` (or the older `- add_argument: {...}`).
#[derive(Debug, Clone)]
pub struct ArgumentEntry(ArgumentSpec);

impl ArgumentEntry {
    pub fn spec(&self) -> &ArgumentSpec {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ArgumentEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            argument: Option<ArgumentSpec>,
            add_argument: Option<ArgumentSpec>,
        }
        let e = Entry::deserialize(deserializer)?;
        match (e.argument, e.add_argument) {
            (Some(s), None) | (None, Some(s)) => Ok(ArgumentEntry(s)),
            _ => Err(serde::de::Error::custom(
                "each parser entry is one mapping `argument: {name: ...}`",
            )),
        }
    }
}

/// An argparse-style argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgumentSpec {
    /// `--long`, `-s` or a positional name.
    pub name: String,
    /// An additional short flag, `-s`.
    pub short: Option<String>,
    pub default: Option<Value>,
    pub choices: Option<Vec<Value>>,
    pub help: Option<String>,
    pub metavar: Option<String>,
    /// `store` (default), `store_true`, `store_false`, `store_const`, `append`, `count`.
    pub action: Option<String>,
    /// `?`, `*`, `+`, a number, or `argparse.REMAINDER` / `...`.
    pub nargs: Option<Value>,
    /// `str` (default), `int` or `float`.
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    pub dest: Option<String>,
    pub required: Option<bool>,
    #[serde(rename = "const")]
    pub constant: Option<Value>,
}

impl Globals {
    /// The arguments for `commands` (in order, `global` first), deduplicated by section.
    pub fn arguments(&self, commands: &[&str]) -> Vec<ArgumentSpec> {
        let mut sections = vec!["global"];
        for c in commands {
            if !sections.contains(c) {
                sections.push(c);
            }
        }
        sections
            .iter()
            .filter_map(|s| self.parser.get(*s))
            .flat_map(|list| list.iter().map(|e| e.spec().clone()))
            .collect()
    }
}
