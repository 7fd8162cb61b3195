//! An sshd for `ssh://` engines: Debian's openssh-server on a free loopback port, key auth
//! only, with a host key and a client key made for this fixture in a temp dir. It logs in as
//! the current user, whose sessions can run `docker system dial-stdio` against this engine.
//!
//! OpenSSH reads `~/.ssh` from the passwd home, not `$HOME`, so the client side is a
//! directory holding an `ssh` wrapper (`exec /usr/bin/ssh -F <config> "$@"`) to put first on
//! `PATH` ([`Sshd::path`]): dstart and the docker CLI then run it exactly as a user's ssh.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::registry::{free_port, wait_for_port};

/// A running sshd; it and its connections are ended on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    user: String,
    dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("id_ed25519"));
        let client_key = std::fs::read_to_string(d.join("id_ed25519.pub")).expect("client key");
        std::fs::write(d.join("authorized_keys"), client_key).expect("authorized_keys");
        let port = free_port();
        // StrictModes off: the temp dir lies under /tmp, which is world-writable.
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\n\
                 AuthorizedKeysFile {keys}\nAuthenticationMethods publickey\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 UsePAM no\nStrictModes no\nLogLevel ERROR\n",
                host_key = d.join("host_key").display(),
                keys = d.join("authorized_keys").display(),
            ),
        )
        .expect("sshd_config");

        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let mut fields = host_key.split_whitespace();
        let (kind, key) = (
            fields.next().expect("key type"),
            fields.next().expect("key"),
        );
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .expect("known_hosts");
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n\
                 \x20 BatchMode yes\n  LogLevel ERROR\n",
                id = d.join("id_ed25519").display(),
                known = d.join("known_hosts").display(),
            ),
        )
        .expect("ssh_config");
        let bin = d.join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F '{}' \"$@\"\n",
                d.join("ssh_config").display()
            ),
        )
        .expect("ssh wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        // sshd refuses to start without its privilege separation directory, which Debian
        // creates only when the service starts.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd (run the tests as root)");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/sbin/sshd on the host (Debian: apt-get install openssh-server)");
        let sshd = Sshd {
            child,
            port,
            user: current_user(),
            dir,
        };
        wait_for_port(port, "sshd");
        sshd
    }

    /// The user sessions log in as: the current one.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `ssh://USER@127.0.0.1:PORT`, the engine address for `-H` or `DOCKER_HOST`.
    pub fn url(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The directory holding the `ssh` wrapper.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `PATH` with [`Sshd::bin_dir`] first: set it on a command that should reach this sshd.
    pub fn path(&self) -> OsString {
        let mut dirs = vec![self.bin_dir()];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).expect("PATH")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // sshd forks a process per connection, which calls setsid: end those too, then the
        // listener, so nothing of the fixture outlives it.
        let listener = self.child.id();
        for pid in children_of(listener) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if let Ok(pid) = i32::try_from(listener) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after its `)`.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dstart-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen on the host (Debian: apt-get install openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user is in passwd")
}
