//! Reading configuration: finding the directory, the template environment, rendering unit files
//! with tera and parsing their YAML documents and imports. Produces a [`loader::RawUnit`].

pub mod arguments;
pub mod catalog;
pub mod command;
pub mod discover;
pub mod environment;
pub mod globals;
pub mod loader;
pub mod modes;
pub mod source;
pub mod template;
