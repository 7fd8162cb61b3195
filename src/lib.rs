//! dstart starts, stops, backs up, restores and tests groups of Docker containers ("units")
//! described in YAML files kept in a configuration directory.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! cli       → the command line (clap)
//! config    → configuration directory, environment, templates, YAML, imports   (RawUnit)
//! unit      → typed, validated containers and orders                           (TypedUnit)
//! generate  → variant filtering, generated commands and test plans, pure        (Unit)
//! plan      → decisions from what the engine reports and what the unit says, pure
//! execute   → orders against the engine
//! export    → a unit command as a Compose file (no engine)
//! testing   → test runs: cases, reports, kept files
//! app       → dispatch of the subcommands
//! ```
//!
//! A stage imports only the stages above it; `text`, `secrets`, `output` and `error` serve them all.

pub mod apidoc;
pub mod app;
pub mod backup;
pub mod checks;
pub mod cli;
pub mod completion;
pub mod config;
pub mod error;
pub mod faults;
pub mod generate;
pub mod output;
pub mod plan;
pub mod secrets;
pub mod testing;
pub mod text;
pub mod unit;

pub use app::run;
pub mod engine;
pub mod execute;
pub mod export;
