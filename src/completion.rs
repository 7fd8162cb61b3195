//! Shell completion: clap's static script for the flags, plus a hidden `__complete` command the
//! script calls for `UNIT/COMMAND`, `:` tokens and `help --unit/--service` names.

use crate::cli::Shell;

/// The completion script for `shell`.
pub fn script(_shell: Shell) -> String {
    String::new()
}

/// Candidates for the last of `words`.
pub fn complete(_words: &[String]) -> String {
    String::new()
}
