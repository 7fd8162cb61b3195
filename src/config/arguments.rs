//! The unit's own argument parser (ORIGINAL §1.7): argparse-style `argument` entries from
//! `globals.yaml`, applied to everything after `UNIT/COMMAND`, with clap doing the parsing.
//! The result is the `args` template variable.

use clap::builder::PossibleValuesParser;
use clap::error::ErrorKind;
use std::path::Path;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};

use crate::config::globals::ArgumentSpec;
use crate::config::source::yaml_to_json;
use crate::error::{ConfigError, Location};

/// The outcome of parsing the unit arguments.
#[derive(Debug)]
pub enum ParsedArgs {
    /// dest → value.
    Values(Map<String, Value>),
    /// `-h` was given: print this and stop.
    Help(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nargs {
    One,
    Optional,
    Any,
    AtLeastOne,
    Exactly(usize),
    Remainder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Store,
    StoreTrue,
    StoreFalse,
    StoreConst,
    Append,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
}

struct Prepared<'a> {
    spec: &'a ArgumentSpec,
    dest: String,
    long: Option<String>,
    short: Option<char>,
    nargs: Nargs,
    action: Action,
    kind: Kind,
}

/// An error of the declaration of `spec` in `file`, at the line that names it (the parsed
/// globals keep no positions, so the file is read again).
fn spec_error(file: &Path, spec: &ArgumentSpec, message: &str) -> ConfigError {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    ConfigError::ArgumentSpec {
        location: Location {
            file: file.to_path_buf(),
            line: crate::config::source::line_naming(&text, &spec.name),
            column: None,
        },
        message: crate::config::source::clip_message(&format!(
            "argument `{}`: {message}",
            spec.name
        )),
    }
}

fn prepare<'a>(file: &Path, spec: &'a ArgumentSpec) -> Result<Prepared<'a>, ConfigError> {
    let mut long = None;
    let mut short = None;
    let mut positional = None;
    for name in std::iter::once(spec.name.as_str()).chain(spec.short.as_deref()) {
        if let Some(l) = name.strip_prefix("--") {
            if l.is_empty() {
                return Err(spec_error(file, spec, "`--` is not a valid name"));
            }
            if l.starts_with('-') || l.contains(|c: char| c.is_whitespace() || c == '=') {
                return Err(spec_error(
                    file,
                    spec,
                    &format!("`{name}` is not a valid option name"),
                ));
            }
            long = Some(l.to_string());
        } else if let Some(s) = name.strip_prefix('-') {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => short = Some(c),
                _ => {
                    return Err(spec_error(
                        file,
                        spec,
                        &format!("`{name}`: a short flag is one character, like `-f`"),
                    ));
                }
            }
        } else {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(spec_error(
                    file,
                    spec,
                    "a positional argument needs a name without spaces",
                ));
            }
            positional = Some(name.to_string());
        }
    }
    if positional.is_some() && (long.is_some() || short.is_some()) {
        return Err(spec_error(
            file,
            spec,
            "an argument is either positional or a flag, not both",
        ));
    }
    let dest = match (&spec.dest, &positional, &long, short) {
        (Some(d), ..) => d.clone(),
        (None, Some(p), ..) => p.clone(),
        (None, None, Some(l), _) => l.replace('-', "_"),
        (None, None, None, Some(c)) => c.to_string(),
        _ => return Err(spec_error(file, spec, "no name")),
    };
    let nargs = match &spec.nargs {
        None => Nargs::One,
        Some(serde_yaml_ng::Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err(spec_error(file, spec, "`nargs` must be at least 1")),
            Some(k) => Nargs::Exactly(usize::try_from(k).unwrap_or(usize::MAX)),
            None => return Err(spec_error(file, spec, "`nargs` must be a positive number")),
        },
        Some(serde_yaml_ng::Value::String(s)) => match s.as_str() {
            "?" => Nargs::Optional,
            "*" => Nargs::Any,
            "+" => Nargs::AtLeastOne,
            "argparse.REMAINDER" | "..." | "REMAINDER" => Nargs::Remainder,
            other => match other.parse::<usize>() {
                Ok(0) => return Err(spec_error(file, spec, "`nargs` must be at least 1")),
                Ok(k) => Nargs::Exactly(k),
                Err(_) => {
                    return Err(spec_error(
                        file,
                        spec,
                        &format!(
                            "unknown `nargs: {other}` (accepted: ?, *, +, a number, argparse.REMAINDER)"
                        ),
                    ));
                }
            },
        },
        Some(_) => {
            return Err(spec_error(
                file,
                spec,
                "`nargs` must be a string or a number",
            ));
        }
    };
    let action = match spec.action.as_deref() {
        None | Some("store") => Action::Store,
        Some("store_true") => Action::StoreTrue,
        Some("store_false") => Action::StoreFalse,
        Some("store_const") => Action::StoreConst,
        Some("append") => Action::Append,
        Some("count") => Action::Count,
        Some(other) => {
            return Err(spec_error(
                file,
                spec,
                &format!(
                    "unknown `action: {other}` (accepted: store, store_true, store_false, store_const, append, count)"
                ),
            ));
        }
    };
    if positional.is_some() && !matches!(action, Action::Store) {
        return Err(spec_error(
            file,
            spec,
            "a positional argument only takes `action: store`",
        ));
    }
    if action == Action::StoreConst && spec.constant.is_none() {
        return Err(spec_error(
            file,
            spec,
            "`action: store_const` needs `const`",
        ));
    }
    let kind = match spec.value_type.as_deref() {
        None | Some("str") => Kind::Str,
        Some("int") => Kind::Int,
        Some("float") => Kind::Float,
        Some(other) => {
            return Err(spec_error(
                file,
                spec,
                &format!("unknown `type: {other}` (accepted: str, int, float)"),
            ));
        }
    };
    // A default must be of the argument's type and one of its choices (a list default: each
    // item).
    let defaults: Vec<&serde_yaml_ng::Value> = match &spec.default {
        Some(serde_yaml_ng::Value::Sequence(items)) => items.iter().collect(),
        Some(serde_yaml_ng::Value::Null) | None => Vec::new(),
        Some(v) => vec![v],
    };
    for d in defaults {
        let text = scalar_string(d);
        if kind != Kind::Str {
            if let Err(e) = convert(kind, &text) {
                return Err(spec_error(file, spec, &format!("`default`: {e}")));
            }
        }
        if let Some(choices) = &spec.choices {
            if !choices.iter().any(|c| scalar_string(c) == text) {
                return Err(spec_error(
                    file,
                    spec,
                    &format!("`default`: `{text}` is not one of its `choices`"),
                ));
            }
        }
    }
    Ok(Prepared {
        spec,
        dest,
        long,
        short,
        nargs,
        action,
        kind,
    })
}

fn scalar_string(v: &serde_yaml_ng::Value) -> String {
    match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn build_arg(p: &Prepared<'_>) -> Arg {
    let mut arg = Arg::new(p.dest.clone());
    if let Some(l) = &p.long {
        arg = arg.long(l.clone());
    }
    if let Some(s) = p.short {
        arg = arg.short(s);
    }
    let is_flag = p.long.is_some() || p.short.is_some();
    arg = match p.action {
        Action::StoreTrue | Action::StoreConst => arg.action(ArgAction::SetTrue),
        Action::StoreFalse => arg.action(ArgAction::SetFalse),
        Action::Count => arg.action(ArgAction::Count),
        Action::Append => arg.action(ArgAction::Append),
        Action::Store => {
            if matches!(p.nargs, Nargs::One | Nargs::Optional) {
                arg.action(ArgAction::Set)
            } else {
                arg.action(ArgAction::Append)
            }
        }
    };
    if matches!(p.action, Action::Store | Action::Append) {
        arg = match p.nargs {
            Nargs::One => arg.num_args(1),
            Nargs::Optional => arg.num_args(0..=1),
            Nargs::Any => arg.num_args(0..),
            Nargs::AtLeastOne => arg.num_args(1..),
            Nargs::Exactly(k) => arg.num_args(k),
            Nargs::Remainder => arg
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true),
        };
        if let Some(choices) = &p.spec.choices {
            let values: Vec<String> = choices.iter().map(scalar_string).collect();
            arg = arg.value_parser(PossibleValuesParser::new(values));
        }
        if let Some(m) = &p.spec.metavar {
            arg = arg.value_name(m.clone());
        }
        if let Some(d) = &p.spec.default {
            if !d.is_null() && !d.is_sequence() {
                arg = arg.default_value(scalar_string(d));
            }
        }
        let required = if is_flag {
            p.spec.required.unwrap_or(false)
        } else {
            matches!(p.nargs, Nargs::One | Nargs::AtLeastOne | Nargs::Exactly(_))
        };
        arg = arg.required(required && p.spec.default.is_none());
    }
    if let Some(h) = &p.spec.help {
        arg = arg.help(h.clone());
    }
    arg
}

fn convert(kind: Kind, raw: &str) -> Result<Value, String> {
    match kind {
        Kind::Str => Ok(Value::String(raw.to_string())),
        Kind::Int => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("invalid int value: `{raw}`")),
        Kind::Float => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("invalid float value: `{raw}`")),
    }
}

fn value_of(p: &Prepared<'_>, m: &ArgMatches) -> Result<Value, String> {
    let from_default = matches!(
        m.value_source(&p.dest),
        None | Some(clap::parser::ValueSource::DefaultValue)
    );
    match p.action {
        Action::StoreTrue | Action::StoreFalse => {
            if from_default {
                if let Some(d) = &p.spec.default {
                    return Ok(yaml_to_json(d));
                }
            }
            Ok(Value::Bool(m.get_flag(&p.dest)))
        }
        Action::StoreConst => {
            if m.get_flag(&p.dest) {
                Ok(p.spec.constant.as_ref().map_or(Value::Null, yaml_to_json))
            } else {
                Ok(p.spec.default.as_ref().map_or(Value::Null, yaml_to_json))
            }
        }
        Action::Count => Ok(Value::from(m.get_count(&p.dest))),
        Action::Store | Action::Append => {
            if from_default {
                return Ok(match &p.spec.default {
                    Some(serde_yaml_ng::Value::Sequence(items)) if p.kind != Kind::Str => {
                        Value::Array(
                            items
                                .iter()
                                .map(|i| convert(p.kind, &scalar_string(i)))
                                .collect::<Result<_, _>>()?,
                        )
                    }
                    Some(d) if p.kind != Kind::Str && !d.is_null() => {
                        convert(p.kind, &scalar_string(d))?
                    }
                    Some(d) => yaml_to_json(d),
                    None if p.action == Action::Append
                        || matches!(p.nargs, Nargs::Any | Nargs::Remainder) =>
                    {
                        Value::Array(Vec::new())
                    }
                    None => Value::Null,
                });
            }
            let raw: Vec<String> = m
                .get_many::<String>(&p.dest)
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            let single =
                p.action == Action::Store && matches!(p.nargs, Nargs::One | Nargs::Optional);
            if single {
                match raw.first() {
                    Some(r) => convert(p.kind, r),
                    // `--opt` with nargs `?` and no value gives `const` (argparse).
                    None => Ok(p.spec.constant.as_ref().map_or(Value::Null, yaml_to_json)),
                }
            } else {
                raw.iter()
                    .map(|r| convert(p.kind, r))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
        }
    }
}

/// Checks what argparse would reject or what clap cannot represent, so that a bad `parser`
/// section is a configuration error naming the file, never a failed assertion inside clap.
fn check_consistent(file: &Path, prepared: &[Prepared<'_>]) -> Result<(), ConfigError> {
    let mut dests = std::collections::HashSet::new();
    let mut longs = std::collections::HashSet::new();
    let mut shorts = std::collections::HashSet::new();
    for p in prepared {
        if p.dest == "help" || p.long.as_deref() == Some("help") || p.short == Some('h') {
            return Err(spec_error(
                file,
                p.spec,
                "`-h`, `--help` and the name `help` are reserved for the unit's help",
            ));
        }
        if !dests.insert(p.dest.as_str()) {
            return Err(spec_error(
                file,
                p.spec,
                &format!("`{}` is defined twice", p.dest),
            ));
        }
        if let Some(l) = &p.long {
            if !longs.insert(l.as_str()) {
                return Err(spec_error(
                    file,
                    p.spec,
                    &format!("`--{l}` is defined twice"),
                ));
            }
        }
        if let Some(c) = p.short {
            if !shorts.insert(c) {
                return Err(spec_error(
                    file,
                    p.spec,
                    &format!("`-{c}` is defined twice"),
                ));
            }
        }
    }
    // Positionals are filled in order: only the last one may be optional or take a variable
    // number of values, or the ones after it could never be given.
    let positionals: Vec<&Prepared<'_>> = prepared
        .iter()
        .filter(|p| p.long.is_none() && p.short.is_none())
        .collect();
    if let Some((_, init)) = positionals.split_last() {
        for p in init {
            if p.nargs != Nargs::One || p.spec.default.is_some() {
                return Err(spec_error(
                    file,
                    p.spec,
                    "only the last positional argument may have a `default` or an `nargs` (arguments of `global` come before those of the command)",
                ));
            }
        }
    }
    Ok(())
}

/// A parse error of clap as a configuration error: it names the file that declares the
/// arguments, and points to the unit's own help rather than clap's `--help`.
fn usage_error(program: &str, file: &Path, err: &clap::Error) -> ConfigError {
    let text = err.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = text
        .lines()
        .filter(|l| !l.starts_with("For more information, try"))
        .collect::<Vec<_>>()
        .join("\n");
    ConfigError::UnitArguments {
        file: Some(file.to_path_buf()),
        message: text.trim_end().to_string(),
        hint: Some(format!("`{program} -h` shows the unit's arguments")),
    }
}

/// Parses `argv` for the unit command `program` (e.g. `dstart run web/start`) with the
/// arguments `specs` read from `file`.
pub fn parse(
    program: &str,
    file: &Path,
    specs: &[ArgumentSpec],
    argv: &[String],
) -> Result<ParsedArgs, ConfigError> {
    let prepared: Vec<Prepared<'_>> = specs
        .iter()
        .map(|s| prepare(file, s))
        .collect::<Result<_, _>>()?;
    check_consistent(file, &prepared)?;
    let mut cmd = Command::new(program.to_string())
        .no_binary_name(true)
        .disable_version_flag(true)
        .disable_colored_help(true)
        .color(clap::ColorChoice::Never);
    for p in &prepared {
        cmd = cmd.arg(build_arg(p));
    }
    let matches = match cmd.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp) => {
            return Ok(ParsedArgs::Help(e.to_string()));
        }
        Err(e) => return Err(usage_error(program, file, &e)),
    };
    let mut out = Map::new();
    for p in &prepared {
        match value_of(p, &matches) {
            Ok(v) => {
                out.insert(p.dest.clone(), v);
            }
            Err(msg) => {
                let flag = p.long.as_ref().map_or_else(
                    || p.short.map_or_else(|| p.dest.clone(), |c| format!("-{c}")),
                    |l| format!("--{l}"),
                );
                let e = cmd.error(
                    ErrorKind::ValueValidation,
                    format!("argument `{flag}`: {msg}"),
                );
                return Err(usage_error(program, file, &e));
            }
        }
    }
    Ok(ParsedArgs::Values(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs(yaml: &str) -> Vec<ArgumentSpec> {
        let entries: Vec<crate::config::globals::ArgumentEntry> =
            serde_yaml_ng::from_str(yaml).unwrap();
        entries.iter().map(|e| e.spec().clone()).collect()
    }

    fn run(yaml: &str, argv: &[&str]) -> Result<ParsedArgs, ConfigError> {
        let argv: Vec<String> = argv.iter().map(ToString::to_string).collect();
        parse(
            "dstart run v/start",
            Path::new("globals.yaml"),
            &specs(yaml),
            &argv,
        )
    }

    fn values(yaml: &str, argv: &[&str]) -> Map<String, Value> {
        match run(yaml, argv).unwrap() {
            ParsedArgs::Values(v) => v,
            ParsedArgs::Help(h) => panic!("help: {h}"),
        }
    }

    const FLAVOUR: &str = "
- argument: {name: '--flavour', short: '-f', default: plain, choices: [plain, fancy], help: flavour}
- argument: {name: '--debug-mode', action: store_true}
- argument: {name: '--count', type: int, default: 1}
- argument: {name: rest, nargs: argparse.REMAINDER}
";

    #[test]
    fn defaults_and_dest_names() {
        let v = values(FLAVOUR, &[]);
        assert_eq!(v["flavour"], json!("plain"));
        assert_eq!(v["debug_mode"], json!(false));
        assert_eq!(v["count"], json!(1));
        assert_eq!(v["rest"], json!([]));
    }

    #[test]
    fn short_long_types_and_remainder() {
        let v = values(
            FLAVOUR,
            &[
                "-f",
                "fancy",
                "--debug-mode",
                "--count",
                "3",
                "x",
                "-y",
                "--z",
            ],
        );
        assert_eq!(v["flavour"], json!("fancy"));
        assert_eq!(v["debug_mode"], json!(true));
        assert_eq!(v["count"], json!(3));
        assert_eq!(v["rest"], json!(["x", "-y", "--z"]));
    }

    #[test]
    fn invalid_choice_is_an_error_with_usage() {
        let err = run(FLAVOUR, &["-f", "wrong"]).unwrap_err().to_string();
        assert!(err.contains("invalid value 'wrong'"), "{err}");
        assert!(err.contains("plain"), "{err}");
    }

    #[test]
    fn bad_int_is_an_error() {
        let err = run(FLAVOUR, &["--count", "x"]).unwrap_err().to_string();
        assert!(err.contains("invalid int value"), "{err}");
    }

    #[test]
    fn help_is_returned() {
        match run(FLAVOUR, &["-h"]).unwrap() {
            ParsedArgs::Help(h) => {
                assert!(h.contains("--flavour"), "{h}");
                assert!(h.contains("flavour"), "{h}");
            }
            ParsedArgs::Values(_) => panic!("expected help"),
        }
    }

    #[test]
    fn positional_required_and_optional() {
        let yaml =
            "- argument: {name: import}\n- argument: {name: args, nargs: argparse.REMAINDER}\n";
        let v = values(yaml, &["test/start", "test/test31"]);
        assert_eq!(v["import"], json!("test/start"));
        assert_eq!(v["args"], json!(["test/test31"]));
        assert!(run(yaml, &[]).is_err());
        let v = values("- argument: {name: x, nargs: '?', default: d}\n", &[]);
        assert_eq!(v["x"], json!("d"));
    }

    #[test]
    fn default_must_match_the_type() {
        let err = run(
            "- argument: {name: '--n', type: int, default: notanint}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`default`: invalid int value: `notanint`"),
            "{err}"
        );
        let v = values("- argument: {name: '--n', type: float, default: 2}\n", &[]);
        assert_eq!(v["n"], json!(2.0));
    }

    #[test]
    fn default_must_be_a_choice() {
        let err = run(
            "- argument: {name: '--f', default: text, choices: [plain, fancy]}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("argument `--f`: `default`: `text` is not one of its `choices`"),
            "{err}"
        );
        let v = values(
            "- argument: {name: '--f', default: fancy, choices: [plain, fancy]}\n",
            &[],
        );
        assert_eq!(v["f"], json!("fancy"));
    }

    #[test]
    fn unknown_action_is_a_spec_error() {
        let err = run("- argument: {name: '--x', action: frob}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown `action: frob`"), "{err}");
    }

    #[test]
    fn unknown_option_is_an_error() {
        let err = run("- argument: {name: '--flavour'}\n", &["--nope"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--nope"), "{err}");
    }

    #[test]
    fn specs_clap_cannot_represent_are_errors() {
        for (yaml, expected) in [
            ("- argument: {name: '--x', short: '-h'}\n", "reserved"),
            ("- argument: {name: '--help'}\n", "reserved"),
            ("- argument: {name: help}\n", "reserved"),
            (
                "- argument: {name: '--x', short: '-x'}\n- argument: {name: '--y', short: '-x'}\n",
                "`-x` is defined twice",
            ),
            (
                "- argument: {name: '--x'}\n- argument: {name: '--x', dest: other}\n",
                "`--x` is defined twice",
            ),
            ("- argument: {name: '---x'}\n", "not a valid option name"),
            ("- argument: {name: '--a b'}\n", "not a valid option name"),
            ("- argument: {name: ''}\n", "needs a name"),
            ("- argument: {name: p, nargs: 0}\n", "at least 1"),
            (
                "- argument: {name: p, nargs: '*'}\n- argument: {name: q}\n",
                "only the last positional",
            ),
            (
                "- argument: {name: p, default: a}\n- argument: {name: q}\n",
                "only the last positional",
            ),
            (
                "- argument: {name: rest, nargs: argparse.REMAINDER}\n- argument: {name: q}\n",
                "only the last positional",
            ),
        ] {
            let err = run(yaml, &[]).unwrap_err().to_string();
            assert!(err.contains(expected), "{yaml}: {err}");
            assert!(err.starts_with("globals.yaml: argument `"), "{yaml}: {err}");
        }
    }
}
