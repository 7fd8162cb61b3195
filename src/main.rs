//! The `dstart` binary: parse the command line, run, report the error, exit with its status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match dstart::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match dstart::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            dstart::app::report_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
