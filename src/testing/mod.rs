//! Running a test plan (`UNIT/test[:VARIANTS]`, ORIGINAL §6): the cases against the engine,
//! the console and `JUnit` reports, and the files kept in the `test_data` container.

pub mod archive;
pub mod files;
pub mod junit;
pub mod report;
pub mod runner;
