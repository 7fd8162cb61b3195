//! Checks shared by `ready:` and the test runner: HTTP requests from the host.

pub mod http;
