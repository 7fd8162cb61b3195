//! dstart starts, stops, backs up, restores and tests groups of Docker containers ("units")
//! described in YAML files kept in a configuration directory.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! cli       → the command line (clap)
//! config    → configuration directory, environment, templates, YAML, imports   (RawUnit)
//! unit      → typed, validated containers and orders                           (TypedUnit)
//! generate  → variant filtering and generated commands, pure                    (Unit)
//! app       → dispatch of the subcommands
//! ```

pub mod apidoc;
pub mod app;
pub mod checks;
pub mod cli;
pub mod completion;
pub mod config;
pub mod error;
pub mod generate;
pub mod output;
pub mod unit;

pub use app::run;
pub mod engine;
pub mod execute;
