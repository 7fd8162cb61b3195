//! Shell completion: clap's static script for the flags, plus a hidden `__complete` command the
//! script calls for `UNIT/COMMAND`, `:` tokens and `help --unit/--service` names.
//!
//! `dstart __complete -- WORDS...` gets the words typed after `dstart`, the last one being the
//! word under the cursor (empty after a space), and prints the candidates for that word, one per
//! line, each a whole word (`web/start:minimal`, not `minimal`). It prints nothing for words it
//! does not complete (flags, subcommands, file arguments): the script then falls back to clap's
//! static completion. It never prints an error: a broken configuration directory completes
//! nothing.

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::config::discover::{self, ConfigDir};
use crate::config::environment::Environment;
use crate::config::loader::{Loaded, Loader, TEST_VARIANTS, UnitCommand};
use crate::generate::variants;
use crate::unit::TypedUnit;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = visible_command();
    let mut out = Vec::new();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut cmd, "dstart", &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    match shell {
        Shell::Bash => format!("{generated}\n{BASH_DYNAMIC}"),
        Shell::Zsh => zsh_script(&generated),
        Shell::Fish => format!("{generated}\n{FISH_DYNAMIC}"),
    }
}

/// The command line without the hidden `__complete` (clap's scripts would offer it).
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("dstart")
        .version(full.get_version().unwrap_or_default().to_string())
        .disable_help_subcommand(true);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

/// Bash: the words up to the cursor are taken from `COMP_LINE`, so `:` and `=` (which bash
/// treats as word breaks) stay inside the word; the candidates lose the part of the word bash
/// will not replace.
const BASH_DYNAMIC: &str = r#"# dstart: UNIT/COMMAND, :tokens and unit/service names from the configuration directory.
_dstart_dynamic() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local -a words
    read -r -a words <<< "$line"
    if [[ "$line" =~ [[:space:]]$ ]]; then
        words+=("")
    fi
    if (( ${#words[@]} >= 2 )); then
        local cur="${words[${#words[@]}-1]}"
        local -a candidates
        local IFS=$'\n'
        candidates=($("${words[0]}" __complete -- "${words[@]:1}" 2>/dev/null))
        unset IFS
        if (( ${#candidates[@]} )); then
            local prefix="" brk part item
            for brk in : =; do
                if [[ "$COMP_WORDBREAKS" == *"$brk"* && "$cur" == *"$brk"* ]]; then
                    part="${cur%"${cur##*"$brk"}"}"
                    if (( ${#part} > ${#prefix} )); then
                        prefix="$part"
                    fi
                fi
            done
            COMPREPLY=()
            for item in "${candidates[@]}"; do
                COMPREPLY+=("${item#"$prefix"}")
            done
            return 0
        fi
    fi
    _dstart "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _dstart_dynamic -o nosort -o bashdefault -o default dstart
else
    complete -F _dstart_dynamic -o bashdefault -o default dstart
fi
"#;

/// Zsh: clap's `_dstart` becomes `_dstart_static`; the new `_dstart` asks `__complete` first.
const ZSH_DYNAMIC: &str = r#"# dstart: UNIT/COMMAND, :tokens and unit/service names from the configuration directory.
_dstart() {
    local -a candidates
    candidates=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if (( ${#candidates} )) && [[ -n "${candidates[1]}" ]]; then
        compadd -- "${candidates[@]}"
        return 0
    fi
    _dstart_static "$@"
}

if [ "$funcstack[1]" = "_dstart" ]; then
    _dstart "$@"
else
    compdef _dstart dstart
fi
"#;

const ZSH_TAIL: &str = "if [ \"$funcstack[1]\" = \"_dstart\" ]; then";

fn zsh_script(generated: &str) -> String {
    // Without clap's tail (it would register the static function) and with its main function
    // renamed, so that the dynamic `_dstart` can fall back to it.
    let body = match generated.rfind(ZSH_TAIL) {
        Some(i) => &generated[..i],
        None => generated,
    };
    let body = body.replacen("\n_dstart() {", "\n_dstart_static() {", 1);
    format!("{body}\n{ZSH_DYNAMIC}")
}

/// Fish: candidates are added to clap's static ones where `__complete` has any.
const FISH_DYNAMIC: &str = r#"# dstart: UNIT/COMMAND, :tokens and unit/service names from the configuration directory.
function __fish_dstart_dynamic
    set -l words (commandline -opc)
    set -e words[1]
    dstart __complete -- $words (commandline -ct) 2>/dev/null
end

function __fish_dstart_has_dynamic
    set -l candidates (__fish_dstart_dynamic)
    test (count $candidates) -gt 0
end

complete -c dstart -n "__fish_dstart_has_dynamic" -f -a "(__fish_dstart_dynamic)"
"#;

/// Candidates for the last of `words` (see the module documentation), one per line.
pub fn complete(words: &[String]) -> String {
    let candidates = candidates(words);
    let mut out = String::new();
    for c in candidates {
        out.push_str(&c);
        out.push('\n');
    }
    out
}

/// What the word under the cursor is.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    UnitCommand,
    UnitName { prefix: String },
    ServiceName { prefix: String },
    Other,
}

/// What the words before the cursor say.
#[derive(Debug, Default)]
struct Typed {
    config_dir: Option<String>,
    environment: Option<String>,
}

fn candidates(words: &[String]) -> Vec<String> {
    let Some((cur, before)) = words.split_last() else {
        return Vec::new();
    };
    let (typed, slot) = analyze(before, cur);
    if slot == Slot::Other {
        return Vec::new();
    }
    let Ok(conf) = discover::discover(typed.config_dir.as_deref().map(Path::new)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = match slot {
        Slot::UnitCommand => unit_command_candidates(&conf, typed.environment.as_deref(), cur),
        Slot::UnitName { prefix } => names(&prefix, cur, conf.unit_names()),
        Slot::ServiceName { prefix } => names(&prefix, cur, conf.services()),
        Slot::Other => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

fn names(prefix: &str, cur: &str, all: Vec<String>) -> Vec<String> {
    let partial = cur.strip_prefix(prefix).unwrap_or(cur);
    all.into_iter()
        .filter(|n| n.starts_with(partial))
        .map(|n| format!("{prefix}{n}"))
        .collect()
}

/// Options of the command line: (long, short, id, takes a value), global ones included.
fn options(cmd: &clap::Command) -> Vec<(Option<String>, Option<char>, String, bool)> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| {
            (
                a.get_long().map(str::to_string),
                a.get_short(),
                a.get_id().to_string(),
                a.get_action().takes_values(),
            )
        })
        .collect()
}

fn record(id: &str, value: &str, typed: &mut Typed) {
    match id {
        "config_dir" => typed.config_dir = Some(value.to_string()),
        "environment" => typed.environment = Some(value.to_string()),
        _ => {}
    }
}

/// Walks the words before the cursor like clap would, to find the subcommand, the options
/// given so far and what the word under the cursor is.
fn analyze(before: &[String], cur: &str) -> (Typed, Slot) {
    let mut root = Cli::command();
    root.build();
    let mut scope = options(&root);
    let mut typed = Typed::default();
    let mut sub: Option<String> = None;
    let mut pending: Option<String> = None;
    let mut only_positionals = false;
    let mut positionals = 0usize;

    for word in before {
        if let Some(id) = pending.take() {
            record(&id, word, &mut typed);
            continue;
        }
        if matches!(sub.as_deref(), Some("run" | "export")) && positionals > 0 {
            // Everything after UNIT/COMMAND belongs to the unit's own parser.
            return (typed, Slot::Other);
        }
        if !only_positionals && word == "--" {
            only_positionals = true;
            continue;
        }
        if !only_positionals && word.starts_with("--") && word.len() > 2 {
            let (name, value) = match word[2..].split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (&word[2..], None),
            };
            if let Some((_, _, id, takes)) = scope.iter().find(|(l, ..)| l.as_deref() == Some(name))
            {
                match (takes, value) {
                    (true, Some(v)) => record(id, v, &mut typed),
                    (true, None) => pending = Some(id.clone()),
                    _ => {}
                }
            }
            continue;
        }
        if !only_positionals && word.starts_with('-') && word.len() > 1 {
            let chars: Vec<char> = word[1..].chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if let Some((_, _, id, takes)) = scope.iter().find(|(_, s, ..)| *s == Some(*c)) {
                    if *takes {
                        let rest: String = chars[i + 1..].iter().collect();
                        let rest = rest.strip_prefix('=').unwrap_or(&rest).to_string();
                        if rest.is_empty() {
                            pending = Some(id.clone());
                        } else {
                            record(id, &rest, &mut typed);
                        }
                        break;
                    }
                }
            }
            continue;
        }
        match &sub {
            None => {
                let Some(s) = root.find_subcommand(word) else {
                    return (typed, Slot::Other);
                };
                scope = options(s);
                sub = Some(word.clone());
            }
            Some(_) => positionals += 1,
        }
    }

    let slot = match (pending.as_deref(), sub.as_deref()) {
        (Some("unit"), Some("help")) => Slot::UnitName {
            prefix: String::new(),
        },
        (Some("service"), Some("help")) => Slot::ServiceName {
            prefix: String::new(),
        },
        (None, Some("help")) if cur.starts_with("--unit=") => Slot::UnitName {
            prefix: "--unit=".into(),
        },
        (None, Some("help")) if cur.starts_with("--service=") => Slot::ServiceName {
            prefix: "--service=".into(),
        },
        (None, Some("run" | "export"))
            if positionals == 0 && (only_positionals || !cur.starts_with('-')) =>
        {
            Slot::UnitCommand
        }
        (None, Some("status" | "build")) if only_positionals || !cur.starts_with('-') => {
            Slot::UnitName {
                prefix: String::new(),
            }
        }
        (None, Some("logs")) if positionals == 0 && (only_positionals || !cur.starts_with('-')) => {
            Slot::UnitName {
                prefix: String::new(),
            }
        }
        _ => Slot::Other,
    };
    (typed, slot)
}

/// `UNIT/COMMAND` candidates, or, once the word has a `:`, the tokens of that unit command.
fn unit_command_candidates(conf: &ConfigDir, env_file: Option<&str>, cur: &str) -> Vec<String> {
    let Some((base, rest)) = cur.split_once(':') else {
        return conf
            .unit_commands()
            .into_iter()
            .filter(|c| c.starts_with(cur))
            .collect();
    };
    let Ok(uc) = UnitCommand::parse(base) else {
        return Vec::new();
    };
    if !uc.tokens.is_empty() {
        return Vec::new();
    }
    let mut typed: Vec<&str> = rest.split(':').collect();
    let partial = typed.pop().unwrap_or_default();
    let Ok(env) = Environment::load(conf, env_file.map(Path::new)) else {
        return Vec::new();
    };
    let head = if typed.is_empty() {
        format!("{base}:")
    } else {
        format!("{base}:{}:", typed.join(":"))
    };
    tokens(conf, &env, &uc)
        .into_iter()
        .filter(|t| !typed.contains(&t.as_str()) && t.starts_with(partial))
        .map(|t| format!("{head}{t}"))
        .collect()
}

/// The `:` tokens `uc` accepts: mode atoms, group names, the `variants` tags of its orders and,
/// for `test`, the test variants. What cannot be read is left out.
fn tokens(conf: &ConfigDir, env: &Environment, uc: &UnitCommand) -> BTreeSet<String> {
    let loader = Loader { conf, env };
    let mut out = BTreeSet::new();
    if let Ok(modes) = loader.mode_config(&uc.unit, &uc.command) {
        out.extend(modes.atoms);
        out.extend(modes.groups.into_keys());
    }
    let is_test = uc.command == "test";
    if is_test {
        out.extend(TEST_VARIANTS.iter().map(ToString::to_string));
    }
    // The tags need the rendered file; a unit whose parser requires arguments cannot be
    // rendered without them, and then only offers its modes.
    if let Ok(Loaded::Unit(raw)) = loader.load(uc, &[], false) {
        if let Ok(typed) = TypedUnit::from_raw(*raw) {
            out.extend(variants::variant_tags(&typed.steps));
            if is_test {
                out.extend(typed.custom_test_names());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(words: &[&str]) -> (Option<String>, Slot) {
        let words: Vec<String> = words.iter().map(ToString::to_string).collect();
        let (cur, before) = words.split_last().unwrap();
        let (typed, slot) = analyze(before, cur);
        (typed.config_dir, slot)
    }

    #[test]
    fn finds_the_unit_command_slot() {
        assert_eq!(slot(&["run", ""]).1, Slot::UnitCommand);
        assert_eq!(slot(&["run", "we"]).1, Slot::UnitCommand);
        assert_eq!(
            slot(&["run", "-e", "x.yaml", "--print-unit", "web/st"]).1,
            Slot::UnitCommand
        );
        assert_eq!(slot(&["run", "-"]).1, Slot::Other);
        assert_eq!(
            slot(&["export", "-o", "web.yml", "we"]).1,
            Slot::UnitCommand
        );
        assert_eq!(slot(&["export", "web", ""]).1, Slot::Other);
        assert_eq!(slot(&["run", "web/start", ""]).1, Slot::Other);
        assert_eq!(slot(&["run", "web/start", "-c", ""]).1, Slot::Other);
        assert_eq!(slot(&["run", "-e", ""]).1, Slot::Other);
        assert_eq!(slot(&["list", ""]).1, Slot::Other);
        let unit_name = Slot::UnitName {
            prefix: String::new(),
        };
        assert_eq!(slot(&["status", "a", ""]).1, unit_name);
        assert_eq!(slot(&["build", "--push", "a", ""]).1, unit_name);
        assert_eq!(slot(&["logs", ""]).1, unit_name);
        assert_eq!(slot(&["logs", "--tail", "3", "we"]).1, unit_name);
        assert_eq!(slot(&["logs", "web", ""]).1, Slot::Other);
        assert_eq!(slot(&[""]).1, Slot::Other);
        assert_eq!(slot(&["frob", ""]).1, Slot::Other);
    }

    #[test]
    fn honours_c_in_every_form() {
        assert_eq!(slot(&["-c", "d", "run", ""]).0.as_deref(), Some("d"));
        assert_eq!(slot(&["--configdir=d", "run", ""]).0.as_deref(), Some("d"));
        assert_eq!(slot(&["-vcd", "run", ""]).0.as_deref(), Some("d"));
        assert_eq!(slot(&["run", "-c", "d", ""]).0.as_deref(), Some("d"));
        // After UNIT/COMMAND, `-c` is the unit's.
        assert_eq!(slot(&["run", "u/start", "-c", "d", ""]).0, None);
    }

    #[test]
    fn finds_help_names() {
        assert_eq!(
            slot(&["help", "--unit", ""]).1,
            Slot::UnitName {
                prefix: String::new()
            }
        );
        assert_eq!(
            slot(&["help", "--service", "cg"]).1,
            Slot::ServiceName {
                prefix: String::new()
            }
        );
        assert_eq!(
            slot(&["help", "--unit=w"]).1,
            Slot::UnitName {
                prefix: "--unit=".into()
            }
        );
        assert_eq!(slot(&["help", ""]).1, Slot::Other);
    }

    #[test]
    fn scripts_hook_into_clap_s() {
        let bash = script(Shell::Bash);
        assert!(bash.starts_with("_dstart() {"), "static function kept");
        assert!(bash.contains("complete -F _dstart_dynamic"));
        assert!(!bash.contains("__complete init"), "hidden command offered");
        let zsh = script(Shell::Zsh);
        assert!(zsh.contains("\n_dstart_static() {"), "{zsh}");
        assert_eq!(zsh.matches("compdef _dstart dstart").count(), 1);
        assert_eq!(zsh.matches(ZSH_TAIL).count(), 1);
        let fish = script(Shell::Fish);
        assert!(fish.contains("complete -c dstart -n \"__fish_dstart_has_dynamic\""));
        assert!(!fish.contains("-a \"__complete\""));
    }
}
