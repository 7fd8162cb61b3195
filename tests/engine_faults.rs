//! The fault suite of backups (issue 19), against the real engine: dstart killed with SIGKILL
//! at several points of a backup, a helper backup and a restore (debug-build failpoints,
//! `DSTART_FAILPOINT`); a backup into a small tmpfs; a proxy between dstart and the engine that
//! cuts or cleanly ends the archive stream; three units backing up one name at once; a panic in
//! a test run. Each asserts: previous archives intact (`sha256sum -c`), nothing partial under a
//! final name, the volume untouched or fully restored, and that the next run succeeds.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Sandbox, base_image, docker, docker_output};

/// A data container `<id>-data` (created, never started) with the volume `<id>-vol` on /data
/// holding `a.bin` (3 MiB of random bytes: the failpoints after 1 MiB fall in its middle) and
/// `b.txt` (`v1`); `units/<id>/<command>.yaml` for each of `commands` (name, orders).
fn data_unit(sb: &Sandbox, commands: &[(&str, &str)]) -> String {
    let (id, base) = (&sb.id, base_image());
    let data = format!("{id}-data");
    docker(&["volume", "create", &format!("{id}-vol")]);
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{id}-vol:/data"),
        base,
        "sh",
        "-c",
        "head -c 3145728 /dev/urandom > /data/a.bin && echo v1 > /data/b.txt",
    ]);
    let spec = format!("{data}:\n  image: {base}\n  volumes: ['{id}-vol:/data']\n");
    sb.unit(
        id,
        "start",
        &format!("{spec}---\n- {data}: {{command: create}}\n"),
    );
    for (command, orders) in commands {
        sb.unit(id, command, &format!("import: {id}/start\n---\n{orders}"));
    }
    sb.ok(&["run", &format!("{id}/start")]);
    data
}

/// `md5sum` of every file of the volume `<id>-vol`, sorted: its content.
fn volume_content(sb: &Sandbox) -> String {
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}-vol:/data:ro", sb.id),
        base_image(),
        "sh",
        "-c",
        "cd /data && find . -type f | sort | xargs md5sum",
    ])
}

fn write_volume(sb: &Sandbox, script: &str) {
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}-vol:/data", sb.id),
        base_image(),
        "sh",
        "-c",
        script,
    ]);
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_lock(name: &str) -> bool {
    name.starts_with(".dstart-") && Path::new(name).extension().is_some_and(|e| e == "lock")
}

/// Every archive under a final name in `dir` is whole: it has its `.sha256`, `sha256sum -c`
/// passes, and `tar t` reads it to its end. Returns the archives' names.
fn archives_intact(dir: &Path) -> Vec<String> {
    let mut archives = Vec::new();
    for f in files(dir) {
        if f.starts_with('.') || f.ends_with(".sha256") {
            continue;
        }
        let sum = format!("{f}.sha256");
        assert!(
            dir.join(&sum).exists(),
            "{f} has no checksum file in {}",
            dir.display()
        );
        let out = Command::new("sha256sum")
            .args(["-c", &sum])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "sha256sum -c {sum}: {out:?}");
        let ext = Path::new(&f)
            .extension()
            .map(|e| e.to_string_lossy().into_owned());
        let decompress = if ext.as_deref() == Some("gz") {
            "gzip -dc"
        } else if ext.as_deref() == Some("zst") {
            "zstd -dcq"
        } else {
            "cat"
        };
        let out = Command::new("sh")
            .args(["-c", &format!("{decompress} < '{f}' | tar tf - >/dev/null")])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "tar t {f}: {out:?}");
        archives.push(f);
    }
    archives
}

/// Nothing but archives, checksum files, links and locks in `dir`.
fn no_temporaries(dir: &Path, what: &str) {
    for f in files(dir) {
        assert!(
            !f.starts_with('.') || is_lock(&f),
            "{what}: {f} left in {}: {:?}",
            dir.display(),
            files(dir)
        );
    }
}

/// Spawns `dstart -c CONF ARGS` with `DSTART_FAILPOINT=point`, waits until it reports the
/// point, and kills it with SIGKILL. Returns its stderr up to then.
fn kill_at(sb: &Sandbox, args: &[&str], envs: &[(&str, &str)], point: &str) -> String {
    let mut cmd = sb.command(args);
    cmd.env("DSTART_FAILPOINT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("dstart runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let started = Instant::now();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("dstart ended before failpoint {point}: {seen}");
        }
        seen.push_str(&line);
        if line.contains(&format!("failpoint {point} reached")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{point}: {seen}"
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    seen
}

fn helper_containers(sb: &Sandbox) -> Vec<String> {
    docker(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .filter(|n| n.starts_with(&sb.id) && n.contains("_backup_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn sigkill_at_every_point_of_backups_and_restores_loses_nothing() {
    let sb = Sandbox::new("fkill");
    let id = sb.id.clone();
    let bk = sb.conf().join("bk");
    let data = data_unit(
        &sb,
        &[
            (
                "backup",
                &format!(
                    "- {id}-data: {{command: backup, backup_dir: bk, backup_name: d, timestamp: true, keep: 2}}\n"
                ),
            ),
            (
                "zbackup",
                &format!(
                    "- {id}-data: {{command: backup, backup_dir: bk, backup_name: z, compression: zstd, timestamp: true, keep: 2}}\n"
                ),
            ),
            (
                "restore",
                &format!("- {id}-data: {{command: restore, restore_dir: bk, restore_name: d}}\n"),
            ),
        ],
    );
    let helper_env = sb.write("helper.yaml", &format!("HELPER_IMAGE: {}\n", base_image()));
    let helper_env = helper_env.to_string_lossy().into_owned();
    let backup = format!("{id}/backup");
    sb.ok(&["run", &backup]);
    sb.ok(&["run", "-e", &helper_env, &format!("{id}/zbackup")]);
    // Two archives, and the link to each.
    let first = archives_intact(&bk);
    assert_eq!(first.len(), 4, "{first:?}");

    // Backups through the engine and through a helper's tar (into a FIFO: zstd), killed before
    // the stream, in its middle, between the fsync and the rename, and between the rename and
    // the pruning; then the next run.
    for (command, env) in [
        (&backup, None),
        (&format!("{id}/zbackup"), Some(&helper_env)),
    ] {
        for point in [
            "backup:planned",
            "backup:streaming",
            "backup:written",
            "backup:committed",
        ] {
            let mut args = vec!["run"];
            if let Some(e) = env {
                args.extend(["-e", e.as_str()]);
            }
            args.push(command);
            let before = archives_intact(&bk);
            kill_at(&sb, &args, &[], point);
            let after = archives_intact(&bk);
            for a in &before {
                assert!(
                    after.contains(a),
                    "{command} killed at {point}: {a} is gone"
                );
            }
            // The watchdog removes a helper within a second or so.
            let t = Instant::now();
            while !helper_containers(&sb).is_empty() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(200));
            }
            assert!(helper_containers(&sb).is_empty(), "{point}: a helper stays");
            sb.ok(&args);
            no_temporaries(&bk, &format!("the run after {command} killed at {point}"));
            archives_intact(&bk);
        }
    }

    // Restores: killed after the check (the volume untouched) and in the middle of the upload
    // (the next run restores it whole).
    let archived = volume_content(&sb);
    write_volume(&sb, "echo v2 > /data/b.txt");
    let changed = volume_content(&sb);
    assert_ne!(archived, changed);
    let restore = format!("{id}/restore");
    kill_at(&sb, &["run", &restore], &[], "restore:verified");
    assert_eq!(
        volume_content(&sb),
        changed,
        "killed before the upload: untouched"
    );
    kill_at(&sb, &["run", &restore], &[], "restore:uploading");
    sb.ok(&["run", &restore]);
    assert_eq!(
        volume_content(&sb),
        archived,
        "the next run restores it whole"
    );
    no_temporaries(&bk, "after the restores");
    archives_intact(&bk);
    assert!(sb.exists(&data));
}

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount a tmpfs (the tests run as root): {out:?}"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

#[test]
fn a_full_disk_is_named_as_such_and_loses_nothing() {
    let sb = Sandbox::new("ffull");
    let id = sb.id.clone();
    let full = sb.conf().join("full");
    let _tmpfs = Tmpfs::mount(&full, "2m");
    let order = |c: &str| {
        format!(
            "- {id}-data: {{command: backup, backup_dir: {}, backup_name: d, compression: {c}, timestamp: true}}\n",
            full.display()
        )
    };
    data_unit(
        &sb,
        &[
            ("gzip", &order("gzip")),
            ("zstd", &order("zstd")),
            ("none", &order("none")),
        ],
    );
    // Small first: it fits (random data does not shrink, so first without a.bin).
    write_volume(&sb, "rm /data/a.bin");
    let env = sb.write("helper.yaml", &format!("HELPER_IMAGE: {}\n", base_image()));
    let env = env.to_string_lossy().into_owned();
    sb.ok(&["run", &format!("{id}/gzip")]);
    // The archive and the link to it.
    let before = archives_intact(&full);
    assert_eq!(before.len(), 2, "{before:?}");
    write_volume(&sb, "head -c 3145728 /dev/urandom > /data/a.bin");
    // Through the engine, through a helper into a FIFO (zstd), and a helper's tar writing the
    // file itself (none): each fails naming the full disk, and leaves what was there.
    for (command, helper) in [("gzip", false), ("zstd", true), ("none", true)] {
        let mut args = vec!["run"];
        if helper {
            args.extend(["-e", env.as_str()]);
        }
        let unit_command = format!("{id}/{command}");
        args.push(&unit_command);
        let (_, stderr) = sb.fails(&args, 1);
        assert!(
            stderr.contains("is full (no space left on device)"),
            "{command} (helper: {helper}): {stderr}"
        );
        assert_eq!(archives_intact(&full), before, "{command}");
        no_temporaries(&full, command);
    }
    // Room again: the next run succeeds.
    write_volume(&sb, "rm /data/a.bin");
    sb.ok(&["run", &format!("{id}/gzip")]);
    assert_eq!(archives_intact(&full).len(), 3);
}

/// The proxy of `tests/fixtures/archive_proxy.py` on a socket in `dir`, killed when dropped.
struct Proxy {
    child: Child,
    socket: PathBuf,
}

impl Proxy {
    fn start(dir: &Path, mode: &str, bytes: u64) -> Proxy {
        let socket = dir.join(format!("proxy-{mode}.sock"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/archive_proxy.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&socket)
            .arg("/var/run/docker.sock")
            .arg(mode)
            .arg(bytes.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let t = Instant::now();
        while !socket.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the proxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Proxy { child, socket }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_archive_stream_cut_or_ended_early_fails_the_backup() {
    let sb = Sandbox::new("fproxy");
    let id = sb.id.clone();
    let bk = sb.conf().join("bk");
    // Many members, so that a clean end at a member boundary leaves most of them out.
    data_unit(
        &sb,
        &[(
            "backup",
            &format!(
                "- {id}-data: {{command: backup, backup_dir: bk, backup_name: d, timestamp: true, keep: 1}}\n"
            ),
        )],
    );
    write_volume(
        &sb,
        "for i in 1 2 3 4 5 6 7; do head -c 300000 /dev/urandom > /data/m$i; done",
    );
    let backup = format!("{id}/backup");
    sb.ok(&["run", &backup]);
    // The archive and the link to it.
    let before = archives_intact(&bk);
    assert_eq!(before.len(), 2, "{before:?}");
    for (mode, expect) in [
        (
            "end",
            "the tar stream ended before its end-of-archive blocks",
        ),
        ("cut", "ended early"),
    ] {
        let proxy = Proxy::start(sb.conf(), mode, 1_000_000);
        let out: Output = sb.dstart(&["-H", &proxy.host(), "run", &backup]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains(expect), "{mode}: {stderr}");
        assert!(!stderr.contains("Successfully"), "{mode}: {stderr}");
        // keep: 1 pruned nothing: the previous archive is there, whole.
        assert_eq!(archives_intact(&bk), before, "{mode}");
        no_temporaries(&bk, mode);
    }
    // Through a proxy that passes the stream on whole, and then straight: both succeed.
    let proxy = Proxy::start(sb.conf(), "pass", 0);
    sb.ok(&["-H", &proxy.host(), "run", &backup]);
    sb.ok(&["run", &backup]);
    let after = archives_intact(&bk);
    assert_eq!(after.len(), 2, "keep: 1 after two good runs: {after:?}");
    assert!(!after.contains(&before[0]), "{before:?} {after:?}");
}

#[test]
fn three_units_backing_up_one_name_at_once_keep_every_archive() {
    let sb = Sandbox::new("fthree");
    let shared = sb.conf().join("shared");
    let base = base_image();
    let units: Vec<String> = (1..=3).map(|i| format!("{}-u{i}", sb.id)).collect();
    for u in &units {
        docker(&["volume", "create", &format!("{u}-vol")]);
        sb.unit(
            u,
            "start",
            &format!("{u}-c:\n  image: {base}\n  volumes: ['{u}-vol:/data']\n---\n- {u}-c: {{command: create}}\n"),
        );
        sb.unit(
            u,
            "backup",
            &format!(
                "import: {u}/start\n---\n- {u}-c: {{command: backup, backup_dir: {}, backup_name: site, timestamp: true}}\n",
                shared.display()
            ),
        );
        sb.ok(&["run", &format!("{u}/start")]);
    }
    let mut reported = Vec::new();
    for _round in 0..2 {
        let children: Vec<Child> = units
            .iter()
            .map(|u| {
                sb.command(&["run", &format!("{u}/backup")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = stdout
                .lines()
                .find(|l| l.contains("Successfully backed up"))
                .unwrap_or_else(|| panic!("{stdout}"));
            let path = line
                .split(" to ")
                .nth(1)
                .unwrap()
                .split(" (")
                .next()
                .unwrap();
            reported.push(path.to_string());
        }
    }
    reported.sort();
    reported.dedup();
    assert_eq!(reported.len(), 6, "six runs, six names: {reported:?}");
    let archives = archives_intact(&shared);
    for r in &reported {
        let file = Path::new(r)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            archives.contains(&file),
            "{file} was reported but is not there: {archives:?}"
        );
    }
    // Six timestamped archives and the link to the newest.
    assert_eq!(archives.len(), 7, "{archives:?}");
    for u in &units {
        let _ = docker_output(&["rm", "-f", &format!("{u}-c")]);
        let _ = docker_output(&["volume", "rm", "-f", &format!("{u}-vol")]);
    }
}

#[test]
fn a_panic_in_a_test_run_tears_the_test_copy_down() {
    let sb = Sandbox::new("fpanic");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            "{id}-app:\n  image: {}\n  command: [sh, -c, 'echo ok']\n  volumes: ['/data']\n  job: {{logs: [ok]}}\n---\n- {id}-app: {{command: start}}\n",
            base_image()
        ),
    );
    let mut cmd = sb.command(&["run", &format!("{id}/test")]);
    cmd.env("DSTART_FAILPOINT", "test:set-up=panic");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("internal error"), "{stderr}");
    // Set up, then torn down: nothing of the test copy is left.
    let left: Vec<String> = docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Label \"dstart.unit\"}}",
    ])
    .lines()
    .filter(|l| l.contains(id.as_str()))
    .map(str::to_string)
    .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
}
