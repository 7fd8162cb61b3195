//! A one-node Docker Swarm on the test engine, for the tests of issue 20.
//!
//! The engine is shared by every test binary (and, while developing, by several checkouts), so
//! a [`Swarm`] holds an exclusive file lock for its whole life: one swarm test at a time on the
//! machine. It initializes the swarm only when the engine is not in one already, and then
//! leaves it again when dropped, also when the test panics. Services, secrets, configs and
//! networks under the test's prefix are removed in any case.

use std::fs::{File, OpenOptions};

use super::{docker, docker_output};

/// Holds the engine in swarm mode for one test; see the module's documentation.
pub struct Swarm {
    /// The names this test owns start with it (its sandbox id).
    prefix: String,
    /// Whether this guard ran `docker swarm init` (and so must leave).
    initialized: bool,
    _lock: nix::fcntl::Flock<File>,
}

/// The engine's swarm state: `inactive`, `active`, `pending`, `error` or `locked`.
pub fn swarm_state() -> String {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
}

impl Swarm {
    /// Waits for the machine's swarm lock, then makes the engine a one-node swarm manager.
    /// `prefix` names what the test creates (use the sandbox's `id`).
    pub fn join(prefix: &str) -> Swarm {
        let lock = Self::lock();
        let initialized = swarm_state() != "active";
        if initialized {
            // A swarm half-left by a killed test would make init fail: leave it first.
            let _ = docker_output(&["swarm", "leave", "--force"]);
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }
        let swarm = Swarm {
            prefix: prefix.to_string(),
            initialized,
            _lock: lock,
        };
        swarm.clean();
        swarm
    }

    /// Holds the machine's swarm lock and changes nothing: for a test that publishes ports or
    /// reaches containers and must not overlap with another test's `swarm init` or
    /// `swarm leave --force` (which rebuild the engine's networking).
    pub fn hold(prefix: &str) -> Swarm {
        Swarm {
            prefix: prefix.to_string(),
            initialized: false,
            _lock: Self::lock(),
        }
    }

    /// Holds the machine's swarm lock with the engine outside any swarm, for a test of what
    /// dstart says there. Panics when the engine is in a swarm (left behind by someone else).
    pub fn outside(prefix: &str) -> Swarm {
        let lock = Self::lock();
        let state = swarm_state();
        assert_eq!(state, "inactive", "the engine is in a swarm: {state}");
        Swarm {
            prefix: prefix.to_string(),
            initialized: false,
            _lock: lock,
        }
    }

    /// Waits for the machine's swarm lock.
    fn lock() -> nix::fcntl::Flock<File> {
        let path = std::env::temp_dir().join("dstart-test-swarm.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .expect("swarm lock file");
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("swarm lock")
    }

    /// Removes the stacks' services, secrets, configs and networks under the prefix.
    pub fn clean(&self) {
        for (kind, format) in [
            ("service", "{{.Name}}"),
            ("secret", "{{.Name}}"),
            ("config", "{{.Name}}"),
            ("network", "{{.Name}}"),
        ] {
            let out = docker_output(&[kind, "ls", "--format", format]);
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|n| n.contains(&self.prefix))
                .map(str::to_string)
                .collect();
            if !names.is_empty() {
                let mut args = vec![kind, "rm"];
                args.extend(names.iter().map(String::as_str));
                let _ = docker_output(&args);
            }
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.clean();
        if self.initialized {
            let out = docker_output(&["swarm", "leave", "--force"]);
            if !out.status.success() {
                eprintln!(
                    "docker swarm leave --force failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
