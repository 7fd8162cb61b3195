//! `backup` and `restore` orders against the real engine (issue 4, /work/backup-contract.md):
//! round trips in every compression, stopped containers, timestamps and pruning, the generated
//! nightly commands, interrupted and overlapping runs, damaged and unsafe archives, `stop: true`,
//! restores into a fresh container, and cron behaviour (`-q`, `-l FILE`).

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Sandbox, base_image, docker, docker_output};

/// A container that runs until it gets SIGTERM, with the YAML lines `extra` (indented by two).
fn long_running(name: &str, extra: &str) -> String {
    format!(
        "{name}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n{extra}",
        base = base_image()
    )
}

/// A container that ignores SIGTERM, so that stopping it takes the engine's whole stop timeout
/// (10 s for `stop: true`), with the YAML lines `extra`.
fn stubborn(name: &str, extra: &str) -> String {
    format!(
        "{name}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"trap '' TERM; while true; do sleep 1; done\"]\n{extra}",
        base = base_image()
    )
}

/// Starts `<id>/start`: one container `<id>-app` running until SIGTERM, with the volume
/// `<id>-vol` at /data. Returns the container's name.
fn start_app(sb: &Sandbox) -> String {
    let id = &sb.id;
    let app = format!("{id}-app");
    sb.unit(
        id,
        "start",
        &format!(
            "{}---\n- {app}: {{command: start}}\n",
            long_running(&app, &format!("  volumes: ['{id}-vol:/data']\n"))
        ),
    );
    run(sb, "start");
    app
}

/// Writes `units/<id>/<command>.yaml` importing the composition of `<id>/start`.
fn orders(sb: &Sandbox, command: &str, orders: &str) {
    sb.unit(
        &sb.id,
        command,
        &format!("import: {}/start\n---\n{orders}", sb.id),
    );
}

/// `dstart run <id>/<command>`, asserting success; returns stdout.
fn run(sb: &Sandbox, command: &str) -> String {
    sb.ok(&["run", &format!("{}/{command}", sb.id)])
}

/// `dstart run <id>/<command>`, asserting exit code `code`; returns stderr.
fn run_fails(sb: &Sandbox, command: &str, code: i32) -> String {
    sb.fails(&["run", &format!("{}/{command}", sb.id)], code).1
}

/// Runs `sh -c SCRIPT` in a throw-away container that mounts the volumes of `container`
/// (which may be stopped); returns stdout, panics on failure.
fn vol_sh(container: &str, script: &str) -> String {
    docker(&[
        "run",
        "--rm",
        "--volumes-from",
        container,
        base_image(),
        "sh",
        "-c",
        script,
    ])
}

/// Everything about the trees `roots` (relative to `/`) of `container`'s volumes: name, mode,
/// owner, size (not of directories: theirs depends on the order their entries were made in),
/// mtime, type and link count of every entry, checksums of the regular files and targets of
/// the symlinks.
fn listing(container: &str, roots: &str) -> String {
    vol_sh(
        container,
        &format!(
            "set -e; cd /; find {roots} ! -type d -exec stat -c '%n|%a|%u|%g|%s|%Y|%F|%h' {{}} + | sort; \
             find {roots} -type d -exec stat -c '%n|%a|%u|%g|%Y|%F|%h' {{}} + | sort; \
             find {roots} -type f -exec md5sum {{}} + | sort; \
             find {roots} -type l | sort | while read -r l; do echo \"$l -> $(readlink \"$l\")\"; done"
        ),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs a host command in `dir`, asserting success; returns stdout.
fn host(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} in {} failed: {}{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A lock file of dstart (`.dstart-<unit>.lock`), which stays in the backup directory.
fn is_lock(name: &str) -> bool {
    name.starts_with(".dstart-") && Path::new(name).extension().is_some_and(|e| e == "lock")
}

/// The hex sha256 of a file.
fn sha256(path: &Path) -> String {
    let out = host(
        path.parent().unwrap(),
        "sha256sum",
        &[path.file_name().unwrap().to_str().unwrap()],
    );
    out.split_whitespace().next().unwrap().to_string()
}

/// `sha256sum -c FILE` inside `dir` passes.
fn checksum_ok(dir: &Path, sum_file: &str) {
    host(dir, "sha256sum", &["-c", "--strict", sum_file]);
}

/// The member names of an archive (`.tar.gz`, `.tar.zst` or `.tar`), read with the host tools.
fn members(archive: &Path) -> Vec<String> {
    let path = archive.display().to_string();
    let script = if path.ends_with(".tar.gz") {
        format!("tar tzf '{path}'")
    } else if path.ends_with(".tar.zst") {
        format!("zstd -dc '{path}' | tar tf -")
    } else {
        format!("tar tf '{path}'")
    };
    let out = host(
        archive.parent().unwrap(),
        "bash",
        &["-o", "pipefail", "-c", &script],
    );
    out.lines().map(str::to_string).collect()
}

/// Checks the files of a fixed-name archive `dir/file`: modes 0600, the `.sha256` beside it in
/// `sha256sum` format with the right hash, and `sha256sum -c` passing in `dir`.
fn check_archive_files(dir: &Path, file: &str) {
    let archive = dir.join(file);
    let sum_name = format!("{file}.sha256");
    let sum = dir.join(&sum_name);
    assert_eq!(mode(&archive), 0o600, "{} mode", archive.display());
    assert_eq!(mode(&sum), 0o600, "{} mode", sum.display());
    let text = std::fs::read_to_string(&sum).unwrap();
    assert_eq!(
        text,
        format!("{}  {file}\n", sha256(&archive)),
        "{sum_name}"
    );
    checksum_ok(dir, &sum_name);
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        sig,
    )
    .unwrap();
}

/// Waits for `child` up to `secs` seconds; kills it and panics if it is still running.
fn wait_for(child: &mut Child, secs: u64, what: &str) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still runs after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = std::process::Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = child.stdout.take() {
        std::io::Read::read_to_end(&mut s, &mut out.stdout).unwrap();
    }
    if let Some(mut s) = child.stderr.take() {
        std::io::Read::read_to_end(&mut s, &mut out.stderr).unwrap();
    }
    out
}

/// Kills a child on drop, so that a failing test does not leave a dstart run behind.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spawns `dstart run <id>/<command>` with piped output.
fn spawn(sb: &Sandbox, command: &str) -> Child {
    sb.command(&["run", &format!("{}/{command}", sb.id)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dstart runs")
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The UTC time now as `YYYYMMDDTHHMMSSZ`.
fn utc_now() -> String {
    host(Path::new("/"), "date", &["-u", "+%Y%m%dT%H%M%SZ"])
        .trim()
        .to_string()
}

/// `<name>-YYYYMMDDTHHMMSSZ.<ext>`: returns the timestamp.
fn timestamp_of<'a>(file: &'a str, name: &str, ext: &str) -> Option<&'a str> {
    let ts = file
        .strip_prefix(&format!("{name}-"))?
        .strip_suffix(&format!(".{ext}"))?;
    let ok = ts.len() == 16
        && ts.char_indices().all(|(i, c)| match i {
            8 => c == 'T',
            15 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    ok.then_some(ts)
}

/// Fills /data with the cases of a round trip: many small files, a large random file, empty
/// directories, relative and absolute symlinks, a hard link, modes, owners, mtimes and odd names.
const POPULATE: &str = r#"set -e
cd /data
mkdir -p many empty/nested/deeper sub 'with space' private
i=0; while [ $i -lt 2000 ]; do echo "small file $i" > many/f$i; i=$((i+1)); done
dd if=/dev/urandom of=big bs=1M count=50 2>/dev/null
echo content > sub/file
printf 'unicode \303\274\n' > 'with space/naïve file.txt'
ln -s ../sub/file many/rel-link
ln -s /data/sub/file abs-link
ln sub/file hard
echo secret > secret; chmod 0640 secret; chown 1234:5678 secret
echo suid > suid; chmod 4755 suid
echo exe > sub/tool; chmod 0750 sub/tool; chown 1234:5678 sub/tool
chmod 0700 private; chown 1234:5678 private
: > empty-file
touch -d '2001-02-03 04:05:06' sub/file big secret
touch -h -d '2002-03-04 05:06:07' abs-link many/rel-link
touch -d '2003-04-05 06:07:08' empty/nested/deeper empty/nested private sub
chmod 0751 /data; chown 4321:8765 /data
"#;

/// Empties /data and gives it back the defaults of a new volume.
const WIPE: &str =
    "set -e; cd /data; rm -rf -- * ; chmod 0755 /data; chown 0:0 /data; ls -A /data | wc -l";

#[test]
fn round_trip_in_every_compression() {
    let sb = Sandbox::new("bkrt");
    let app = start_app(&sb);
    vol_sh(&app, POPULATE);
    let before = listing(&app, "data");
    assert!(before.contains("data/many/f1999|"), "{before}");
    assert!(before.contains("data/suid|4755|0|0|"), "{before}");
    assert!(before.contains("data|751|4321|8765|"), "{before}");
    let same_inode =
        "[ \"$(stat -c %i /data/sub/file)\" = \"$(stat -c %i /data/hard)\" ] && echo hard-linked";

    // The last two through a helper image's tar (HELPER_IMAGE): straight into the archive file
    // when uncompressed, through a FIFO into dstart's compressor when not.
    let helper_env = sb.write("helper.yaml", &format!("HELPER_IMAGE: {}\n", base_image()));
    let helper_env = helper_env.to_str().unwrap();
    for (compression, ext, helper) in [
        ("gzip", "tar.gz", false),
        ("zstd", "tar.zst", false),
        ("none", "tar", false),
        ("none", "tar", true),
        ("gzip", "tar.gz", true),
    ] {
        let rel = format!(
            "backups/{compression}{}",
            if helper { "-helper" } else { "" }
        );
        let run = |sb: &Sandbox, command: &str| {
            if helper {
                sb.ok(&["run", "-e", helper_env, &format!("{}/{command}", sb.id)])
            } else {
                run(sb, command)
            }
        };
        let compression_name = compression;
        let compression = if helper {
            format!("{compression} (helper)")
        } else {
            compression.to_string()
        };
        let dir = sb.conf().join(&rel);
        orders(
            &sb,
            "bk",
            &format!(
                "- {app}: {{command: backup, backup_dir: {rel}, backup_name: data, compression: {compression_name}}}\n"
            ),
        );
        orders(
            &sb,
            "rs",
            &format!("- {app}: {{command: restore, restore_dir: {rel}, restore_name: data}}\n"),
        );
        let out = run(&sb, "bk");
        assert!(
            out.contains(&format!("Backup of container {app}: /data -> ")),
            "{compression}: {out}"
        );
        assert!(out.contains(&format!("data.{ext}")), "{compression}: {out}");
        assert_eq!(
            mode(&dir),
            0o700,
            "{compression}: the missing directory is created with mode 0700"
        );
        assert_eq!(
            names(&dir)
                .into_iter()
                .filter(|n| !n.starts_with(".dstart-"))
                .collect::<Vec<_>>(),
            vec![format!("data.{ext}"), format!("data.{ext}.sha256")],
            "{compression}"
        );
        check_archive_files(&dir, &format!("data.{ext}"));
        let list = members(&dir.join(format!("data.{ext}")));
        for m in &list {
            assert!(
                m == "data" || m.starts_with("data/"),
                "{compression}: member {m} is not below data/: {list:?}"
            );
        }
        for wanted in [
            "data",
            "data/many/f1999",
            "data/big",
            "data/empty/nested/deeper",
            "data/abs-link",
            "data/hard",
            "data/with space/na\u{ef}ve file.txt",
        ] {
            assert!(
                list.iter().any(|m| m.trim_end_matches('/') == wanted),
                "{compression}: {wanted} missing from the archive"
            );
        }
        match compression_name {
            "gzip" => {
                host(&dir, "gzip", &["-t", "data.tar.gz"]);
            }
            "zstd" => {
                host(&dir, "zstd", &["-t", "-q", "data.tar.zst"]);
            }
            _ => {}
        }

        assert_eq!(
            vol_sh(&app, WIPE),
            "0",
            "{compression}: the volume is empty"
        );
        run(&sb, "rs");
        let after = listing(&app, "data");
        let differ: Vec<String> = before
            .lines()
            .filter(|l| !after.lines().any(|a| a == *l))
            .map(|l| format!("before: {l}"))
            .chain(
                after
                    .lines()
                    .filter(|l| !before.lines().any(|b| b == *l))
                    .map(|l| format!("after:  {l}")),
            )
            .collect();
        assert!(
            differ.is_empty(),
            "{compression}: the restored volume differs from the original:\n{}",
            differ.join("\n")
        );
        assert_eq!(
            vol_sh(&app, same_inode),
            "hard-linked",
            "{compression}: the hard link is restored as one"
        );
        assert!(sb.running(&app), "{compression}: still running");
    }
}

#[test]
fn backup_and_restore_of_stopped_containers() {
    let sb = Sandbox::new("bkstopped");
    let id = sb.id.clone();
    let idle = format!("{id}-idle");
    let done = format!("{id}-done");
    let user = format!("{id}-user");
    std::fs::create_dir_all(sb.conf().join("bound")).unwrap();
    sb.unit(
        &id,
        "start",
        &format!(
            "{}{done}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"echo from-the-job > /srv/job; exit 0\"]\n  volumes: ['{id}-srv:/srv', '/cache', './bound:/bound']\n{}---\n- {idle}: {{command: create}}\n- {done}: {{command: start, attach: true}}\n- {user}: {{command: create}}\n",
            long_running(&idle, &format!("  volumes: ['{id}-vol:/data']\n")),
            long_running(&user, &format!("  startup: {{volumes_from: {idle}}}\n")),
            base = base_image()
        ),
    );
    run(&sb, "start");
    assert_eq!(
        sb.inspect(&idle, "{{.State.Status}}").as_deref(),
        Some("created")
    );
    assert_eq!(
        sb.inspect(&done, "{{.State.Status}}").as_deref(),
        Some("exited")
    );
    vol_sh(
        &idle,
        "mkdir -p /data/d && echo idle-data > /data/d/f && chown 7:8 /data/d/f",
    );
    vol_sh(
        &done,
        "echo cached > /cache/c && echo bound > /bound/b && mkdir /srv/empty",
    );
    let idle_before = listing(&idle, "data");
    let done_before = listing(&done, "srv cache bound");
    let done_started = sb.inspect(&done, "{{.State.StartedAt}}");

    // No `source`: the container's own volumes, named and anonymous; not binds (host files)
    // and not volumes shared in with volumes_from (archived with the container that owns them).
    orders(
        &sb,
        "bk",
        &format!(
            "- {idle}: {{command: backup, backup_dir: bk, backup_name: idle}}\n- {done}: {{command: backup, backup_dir: bk, backup_name: done}}\n"
        ),
    );
    run(&sb, "bk");
    let bk = sb.conf().join("bk");
    for name in ["idle", "done"] {
        check_archive_files(&bk, &format!("{name}.tar.gz"));
    }
    let trimmed = |file: &str| -> BTreeSet<String> {
        members(&bk.join(file))
            .iter()
            .map(|m| m.trim_end_matches('/').to_string())
            .collect()
    };
    let idle_members = trimmed("idle.tar.gz");
    assert!(idle_members.contains("data/d/f"), "{idle_members:?}");
    let done_members = trimmed("done.tar.gz");
    for wanted in ["srv/job", "srv/empty", "cache/c"] {
        assert!(
            done_members.contains(wanted),
            "{wanted} of a named or anonymous volume is missing: {done_members:?}"
        );
    }
    assert!(
        !done_members.iter().any(|m| m.starts_with("bound")),
        "a bind mount is not a volume: {done_members:?}"
    );
    orders(
        &sb,
        "bkuser",
        &format!("- {user}: {{command: backup, backup_dir: bk, backup_name: user}}\n"),
    );
    let err = run_fails(&sb, "bkuser", 1);
    assert!(
        err.contains("No volumes to backup found"),
        "volumes inherited with volumes_from belong to their owner: {err}"
    );
    assert!(!bk.join("user.tar.gz").exists());
    assert_eq!(
        sb.inspect(&idle, "{{.State.Status}}").as_deref(),
        Some("created"),
        "the backup does not start the container"
    );
    assert_eq!(
        sb.inspect(&done, "{{.State.Status}}").as_deref(),
        Some("exited")
    );

    // Restore into the stopped containers.
    vol_sh(&idle, "rm -rf /data/d");
    vol_sh(&done, "rm -rf /srv/* /cache/*");
    orders(
        &sb,
        "rs",
        &format!(
            "- {idle}: {{command: restore, restore_dir: bk, restore_name: idle}}\n- {done}: {{command: restore, restore_dir: bk, restore_name: done}}\n"
        ),
    );
    run(&sb, "rs");
    assert_eq!(listing(&idle, "data"), idle_before);
    assert_eq!(listing(&done, "srv cache bound"), done_before);
    assert_eq!(
        sb.inspect(&idle, "{{.State.Status}}").as_deref(),
        Some("created"),
        "the restore does not start the container"
    );
    assert_eq!(
        sb.inspect(&done, "{{.State.Status}}").as_deref(),
        Some("exited")
    );
    assert_eq!(sb.inspect(&done, "{{.State.StartedAt}}"), done_started);
}

#[test]
fn timestamps_keep_overwrite_and_the_nightly_run() {
    let sb = Sandbox::new("bkkeep");
    let id = sb.id.clone();
    let app = format!("{id}-app");
    let novol = format!("{id}-novol");
    let reader = format!("{id}-reader");
    let sharer = format!("{id}-sharer");
    sb.unit(
        &id,
        "start",
        &format!(
            "{}{}{}{}---\n- {app}: {{command: start}}\n- {novol}: {{command: create}}\n- {reader}: {{command: create}}\n- {sharer}: {{command: create}}\n",
            long_running(&app, &format!("  volumes: ['{id}-vol:/data']\n")),
            long_running(&novol, ""),
            long_running(&reader, &format!("  volumes: ['{id}-vol:/data:ro']\n")),
            long_running(&sharer, &format!("  volumes: ['{id}-vol:/shared']\n"))
        ),
    );
    run(&sb, "start");
    vol_sh(&app, "echo v0 > /data/version");

    // timestamp + keep: 2 over four runs; archives of other names stay.
    let dir = sb.conf().join("stamped");
    std::fs::create_dir_all(&dir).unwrap();
    let others = [
        "app-other-20200101T000000Z.tar.gz",
        "app-other.tar.gz",
        "apps-20200101T000000Z.tar.gz",
        "app-20200101T000000Z.tar.gz.notes",
    ];
    for other in others {
        std::fs::write(dir.join(other), format!("not mine: {other}\n")).unwrap();
        host(
            &dir,
            "sh",
            &["-c", &format!("sha256sum '{other}' > '{other}.sha256'")],
        );
    }
    // An older archive of the same name in another compression is pruned like the others.
    std::fs::write(dir.join("app-20000101T000000Z.tar.zst"), "old\n").unwrap();
    host(
        &dir,
        "sh",
        &[
            "-c",
            "sha256sum app-20000101T000000Z.tar.zst > app-20000101T000000Z.tar.zst.sha256",
        ],
    );
    let mut others_before = Vec::new();
    for other in others {
        for f in [other.to_string(), format!("{other}.sha256")] {
            let meta = std::fs::metadata(dir.join(&f)).unwrap();
            others_before.push((
                f.clone(),
                std::fs::read(dir.join(&f)).unwrap(),
                meta.modified().unwrap(),
            ));
        }
    }
    orders(
        &sb,
        "bk",
        &format!(
            "- {app}: {{command: backup, backup_dir: stamped, backup_name: app, timestamp: true, keep: 2}}\n"
        ),
    );
    let mut runs: Vec<String> = Vec::new();
    for i in 1..=4 {
        vol_sh(&app, &format!("echo v{i} > /data/version"));
        let start = utc_now();
        run(&sb, "bk");
        let end = utc_now();
        let stamped: Vec<String> = names(&dir)
            .into_iter()
            .filter(|n| timestamp_of(n, "app", "tar.gz").is_some())
            .collect();
        let new: Vec<&String> = stamped.iter().filter(|n| !runs.contains(n)).collect();
        assert_eq!(new.len(), 1, "run {i} wrote one new archive: {stamped:?}");
        let ts = timestamp_of(new[0], "app", "tar.gz").unwrap();
        assert!(
            start.as_str() <= ts && ts <= end.as_str(),
            "run {i}: the timestamp {ts} is the UTC time of the run ({start}..{end})"
        );
        runs.push(new[0].clone());
        let link = std::fs::read_link(dir.join("app.tar.gz")).expect("app.tar.gz is a symlink");
        assert_eq!(link, PathBuf::from(new[0]), "a relative link to the newest");
        let sum_link =
            std::fs::read_link(dir.join("app.tar.gz.sha256")).expect("app.tar.gz.sha256 link");
        assert_eq!(sum_link, PathBuf::from(format!("{}.sha256", new[0])));
        checksum_ok(&dir, "app.tar.gz.sha256");
    }
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for kept in &runs[2..] {
        expected.insert(kept.clone());
        expected.insert(format!("{kept}.sha256"));
        check_archive_files(&dir, kept);
    }
    expected.insert("app.tar.gz".into());
    expected.insert("app.tar.gz.sha256".into());
    for other in others {
        expected.insert(other.to_string());
        expected.insert(format!("{other}.sha256"));
    }
    let actual: BTreeSet<String> = names(&dir).into_iter().filter(|n| !is_lock(n)).collect();
    assert_eq!(
        actual, expected,
        "keep: 2 leaves the two newest archives of the name and nothing else changes"
    );
    for (f, bytes, mtime) in &others_before {
        let meta = std::fs::metadata(dir.join(f)).unwrap();
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), bytes, "{f} untouched");
        assert_eq!(&meta.modified().unwrap(), mtime, "{f} untouched");
    }

    // The generated nightly backup: BACKUP_DIR from an environment file, BACKUP_KEEP from -e.
    let nightly = sb.dir.path().join("nightly");
    sb.write(
        "environments/backup.yaml",
        &format!("BACKUP_DIR: {}\n", nightly.display()),
    );
    let keep_file = sb.write("keep.yaml", "BACKUP_KEEP: 2\n");
    let keep_arg = keep_file.display().to_string();
    let nightly_run = |i: u32| {
        vol_sh(&app, &format!("echo night{i} > /data/version"));
        let out = sb.dstart(&["-q", "run", "-e", &keep_arg, &format!("{id}/backup")]);
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "nightly run {i}: {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for i in 1..=3 {
        nightly_run(i);
    }
    let stamped: Vec<String> = names(&nightly)
        .into_iter()
        .filter(|n| timestamp_of(n, &app, "tar.gz").is_some())
        .collect();
    assert_eq!(stamped.len(), 2, "BACKUP_KEEP: 2: {stamped:?}");
    for other in [&novol, &reader, &sharer] {
        assert!(
            names(&nightly).iter().all(|n| !n.contains(other.as_str())),
            "no archive for {other}: no volumes, the shared volume read-only, or already \
             archived with {app}: {:?}",
            names(&nightly)
        );
    }
    assert_eq!(
        std::fs::read_link(nightly.join(format!("{app}.tar.gz"))).unwrap(),
        PathBuf::from(&stamped[1])
    );
    for s in &stamped {
        check_archive_files(&nightly, s);
    }
    // The generated restore takes the newest.
    vol_sh(&app, "echo broken > /data/version");
    sb.ok(&["run", &format!("{id}/restore")]);
    assert_eq!(vol_sh(&app, "cat /data/version"), "night3");
    // A generated restore with an archive missing fails and says which.
    for f in names(&nightly) {
        std::fs::remove_file(nightly.join(f)).unwrap();
    }
    let (_, stderr) = sb.fails(&["run", &format!("{id}/restore")], 1);
    assert!(
        stderr.contains(&format!("no archive named {app}")),
        "{stderr}"
    );

    // A fixed name: the second backup without overwrite fails before reading anything; with
    // overwrite it replaces the archive. A stale temporary file of a dead run is removed, one
    // of a live process is not.
    let fixed = sb.conf().join("fixed");
    std::fs::create_dir_all(&fixed).unwrap();
    let stale = format!(".data.tar.gz.dstart-tmp-{}", dead_pid());
    let live = format!(".data.tar.gz.dstart-tmp-{}", std::process::id());
    std::fs::write(fixed.join(&stale), "partial").unwrap();
    std::fs::write(fixed.join(&live), "being written").unwrap();
    orders(
        &sb,
        "fixed",
        &format!("- {app}: {{command: backup, backup_dir: fixed, backup_name: data}}\n"),
    );
    orders(
        &sb,
        "fixedover",
        &format!(
            "- {app}: {{command: backup, backup_dir: fixed, backup_name: data, overwrite: true}}\n"
        ),
    );
    vol_sh(&app, "echo first > /data/version");
    run(&sb, "fixed");
    let names_now = names(&fixed);
    assert!(
        !names_now.contains(&stale),
        "the stale temporary file of a dead process is removed: {names_now:?}"
    );
    assert!(
        names_now.contains(&live),
        "a live process's temporary file is left alone: {names_now:?}"
    );
    std::fs::remove_file(fixed.join(&live)).unwrap();
    let first = sha256(&fixed.join("data.tar.gz"));
    vol_sh(&app, "echo second > /data/version");
    let stderr = run_fails(&sb, "fixed", 1);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert!(stderr.contains("overwrite"), "{stderr}");
    assert_eq!(sha256(&fixed.join("data.tar.gz")), first, "unchanged");
    check_archive_files(&fixed, "data.tar.gz");
    run(&sb, "fixedover");
    assert_ne!(sha256(&fixed.join("data.tar.gz")), first, "replaced");
    check_archive_files(&fixed, "data.tar.gz");
    let remaining: Vec<String> = names(&fixed).into_iter().filter(|n| !is_lock(n)).collect();
    assert_eq!(remaining, vec!["data.tar.gz", "data.tar.gz.sha256"]);
    vol_sh(&app, "echo third > /data/version");
    orders(
        &sb,
        "rs",
        &format!("- {app}: {{command: restore, restore_dir: fixed, restore_name: data}}\n"),
    );
    run(&sb, "rs");
    assert_eq!(vol_sh(&app, "cat /data/version"), "second");

    // `overwrite` is about the name: an archive of it in another compression also makes the
    // order fail without it, and is replaced with it.
    for compression in ["zstd", "none"] {
        orders(
            &sb,
            "fixedother",
            &format!(
                "- {app}: {{command: backup, backup_dir: fixed, backup_name: data, compression: {compression}}}\n"
            ),
        );
        let stderr = run_fails(&sb, "fixedother", 1);
        assert!(
            stderr.contains(&format!(
                "the target `data.tar.gz` exists already in directory `{}`",
                fixed.display()
            )),
            "{compression}: {stderr}"
        );
        assert!(
            stderr.contains("hint: add `overwrite: true`"),
            "{compression}: {stderr}"
        );
        let remaining: Vec<String> = names(&fixed).into_iter().filter(|n| !is_lock(n)).collect();
        assert_eq!(remaining, vec!["data.tar.gz", "data.tar.gz.sha256"]);
    }
    std::fs::write(fixed.join("data.tar"), "an old uncompressed archive\n").unwrap();
    host(
        &fixed,
        "sh",
        &["-c", "sha256sum data.tar > data.tar.sha256"],
    );
    orders(
        &sb,
        "fixedzstd",
        &format!(
            "- {app}: {{command: backup, backup_dir: fixed, backup_name: data, compression: zstd, overwrite: true}}\n"
        ),
    );
    let out = run(&sb, "fixedzstd");
    for old in ["data.tar.gz", "data.tar"] {
        assert!(
            out.contains(&format!("Removed the old backup {old}")),
            "{out}"
        );
    }
    let remaining: Vec<String> = names(&fixed).into_iter().filter(|n| !is_lock(n)).collect();
    assert_eq!(remaining, vec!["data.tar.zst", "data.tar.zst.sha256"]);
    check_archive_files(&fixed, "data.tar.zst");
}

/// The directory holds only archives, checksums, their links and lock files.
fn assert_no_temporary_files(dir: &Path, allowed: &[&str], what: &str) {
    for n in names(dir) {
        assert!(
            allowed.contains(&n.as_str()) || is_lock(&n),
            "{what}: unexpected {n} in {}: {:?}",
            dir.display(),
            names(dir)
        );
    }
}

#[test]
fn interrupted_and_killed_large_backups_and_overlapping_runs() {
    let sb = Sandbox::new("bkbig");
    let id = sb.id.clone();
    let big = format!("{id}-big");
    let small = format!("{id}-small");
    // Ignores SIGTERM: stopping it takes the engine's whole stop timeout.
    let stubborn = format!("{id}-stubborn");
    sb.unit(
        &id,
        "start",
        &format!(
            "{}{}{stubborn}:\n  image: {base}\n  command: [\"sh\", \"-c\", \"trap '' TERM; while true; do sleep 1; done\"]\n  volumes: ['{id}-stubborn:/data']\n---\n- {big}: {{command: start}}\n- {small}: {{command: start}}\n- {stubborn}: {{command: start}}\n",
            long_running(&big, &format!("  volumes: ['{id}-big:/data']\n")),
            long_running(&small, &format!("  volumes: ['{id}-small:/data']\n")),
            base = base_image()
        ),
    );
    run(&sb, "start");
    vol_sh(&big, "echo small > /data/small");
    vol_sh(&small, "echo tiny > /data/tiny");
    orders(
        &sb,
        "bk",
        &format!(
            "- {big}: {{command: backup, backup_dir: arch, backup_name: big, overwrite: true, compression: gzip}}\n"
        ),
    );
    run(&sb, "bk");
    let arch = sb.conf().join("arch");
    check_archive_files(&arch, "big.tar.gz");
    let previous = std::fs::read(arch.join("big.tar.gz")).unwrap();
    let previous_sum = std::fs::read(arch.join("big.tar.gz.sha256")).unwrap();
    vol_sh(
        &big,
        "dd if=/dev/urandom of=/data/random bs=1M count=400 2>/dev/null",
    );

    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let mut child = Reap(Some(spawn(&sb, "bk")));
        std::thread::sleep(Duration::from_millis(1500));
        let c = child.0.as_mut().unwrap();
        assert!(
            c.try_wait().unwrap().is_none(),
            "{sig}: the backup of 400 MB finished within 1.5 s; the test cannot interrupt it"
        );
        signal(c, sig);
        let out = wait_for(c, 60, "the interrupted backup");
        child.0 = None;
        if sig == nix::sys::signal::Signal::SIGINT {
            assert_eq!(
                out.status.code(),
                Some(130),
                "SIGINT exits 130: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert_eq!(out.status.signal(), Some(9));
        }
        assert!(
            std::fs::read(arch.join("big.tar.gz")).unwrap() == previous,
            "{sig}: the previous archive is untouched"
        );
        assert_eq!(
            std::fs::read(arch.join("big.tar.gz.sha256")).unwrap(),
            previous_sum,
            "{sig}: its checksum file is untouched"
        );
        checksum_ok(&arch, "big.tar.gz.sha256");
        assert_no_temporary_files(&arch, &["big.tar.gz", "big.tar.gz.sha256"], sig.as_ref());
        assert!(sb.running(&big), "{sig}: the container still runs");
    }

    // Two overlapping runs of the unit on one directory: the second waits for the lock, up to
    // its lock_timeout. The first run holds the lock for a while (whatever the build profile)
    // because its container ignores SIGTERM and `stop: true` waits for the stop timeout.
    vol_sh(&stubborn, "echo stubborn > /data/s");
    orders(
        &sb,
        "long",
        &format!(
            "- {stubborn}: {{command: backup, backup_dir: locked, backup_name: stubborn, stop: true}}\n"
        ),
    );
    orders(
        &sb,
        "impatient",
        &format!(
            "- {small}: {{command: backup, backup_dir: locked, backup_name: impatient, lock_timeout: 1}}\n"
        ),
    );
    orders(
        &sb,
        "patient",
        &format!(
            "- {small}: {{command: backup, backup_dir: locked, backup_name: patient, lock_timeout: 300}}\n"
        ),
    );
    let locked = sb.conf().join("locked");
    let mut long = Reap(Some(spawn(&sb, "long")));
    let long_pid = long.0.as_ref().unwrap().id();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let has_lock = locked.is_dir() && names(&locked).iter().any(|n| is_lock(n));
        if has_lock {
            break;
        }
        assert!(
            long.0.as_mut().unwrap().try_wait().unwrap().is_none(),
            "the long backup ended before taking a lock file in {}",
            locked.display()
        );
        assert!(Instant::now() < deadline, "no lock file appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut patient = Reap(Some(spawn(&sb, "patient")));
    let started = Instant::now();
    let stderr = run_fails(&sb, "impatient", 1);
    let waited = started.elapsed();
    assert!(stderr.contains("lock"), "{stderr}");
    assert!(
        stderr.contains(&long_pid.to_string()),
        "the message names the holder's pid {long_pid}: {stderr}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "it waited its lock_timeout of 1 s, not {waited:?}"
    );
    assert!(
        long.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the long backup was still running while the impatient one gave up (test premise)"
    );
    assert!(
        patient.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the patient run waits for the lock instead of backing up at once"
    );
    let out = wait_for(long.0.as_mut().unwrap(), 300, "the long backup");
    long.0 = None;
    assert!(
        out.status.success(),
        "the long backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wait_for(patient.0.as_mut().unwrap(), 120, "the patient backup");
    patient.0 = None;
    assert!(
        out.status.success(),
        "the patient backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_archive_files(&locked, "patient.tar.gz");
    check_archive_files(&locked, "stubborn.tar.gz");
    assert!(sb.running(&stubborn), "started again after the backup");
    assert!(
        !locked.join("impatient.tar.gz").exists(),
        "the impatient run wrote nothing"
    );
}

/// The names of the containers whose name contains `part`.
fn containers_named(part: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={part}"),
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn killed_helper_backup_leaves_no_helper_and_the_next_run_removes_its_file() {
    let sb = Sandbox::new("bkhelperkill");
    let id = sb.id.clone();
    let app = start_app(&sb);
    let helper_env = sb.write("helper.yaml", &format!("HELPER_IMAGE: {}\n", base_image()));
    let helper_env = helper_env.to_str().unwrap().to_string();
    let backup = format!("{id}/bk");
    let args = ["run", "-e", &helper_env, &backup];
    // Uncompressed through the helper: its tar writes into `.big.tar.dstart-tmp-PID`.
    orders(
        &sb,
        "bk",
        &format!(
            "- {app}: {{command: backup, backup_dir: arch, backup_name: big, compression: none, overwrite: true}}\n"
        ),
    );
    vol_sh(&app, "echo small > /data/small");
    sb.ok(&args);
    let arch = sb.conf().join("arch");
    check_archive_files(&arch, "big.tar");
    let previous = std::fs::read(arch.join("big.tar")).unwrap();
    let previous_sum = std::fs::read(arch.join("big.tar.sha256")).unwrap();
    vol_sh(
        &app,
        "dd if=/dev/urandom of=/data/random bs=1M count=600 2>/dev/null",
    );

    let mut child = Reap(Some(
        sb.command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let pid = child.0.as_ref().unwrap().id();
    let temp = arch.join(format!(".big.tar.dstart-tmp-{pid}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed once tar has begun to write.
    while std::fs::metadata(&temp).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(
            child.0.as_mut().unwrap().try_wait().unwrap().is_none(),
            "the backup ended before its tar wrote 1 MiB into {}",
            temp.display()
        );
        assert!(
            Instant::now() < deadline,
            "tar never wrote into {}",
            temp.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let helper = format!("{app}_backup_");
    assert_eq!(containers_named(&helper).len(), 1, "the helper runs");
    signal(child.0.as_ref().unwrap(), nix::sys::signal::Signal::SIGKILL);
    let out = wait_for(child.0.as_mut().unwrap(), 30, "the killed backup");
    child.0 = None;
    assert_eq!(out.status.signal(), Some(9));

    let killed = Instant::now();
    while !containers_named(&helper).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the helper container is still there 5 s after dstart was killed: {:?}",
            containers_named(&helper)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone_after = killed.elapsed();
    let left = std::fs::metadata(&temp)
        .expect("the killed run's file is left")
        .len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::metadata(&temp).unwrap().len(),
        left,
        "nothing writes into the file any more"
    );
    eprintln!(
        "helper gone {gone_after:?} after the kill; tar had written {} MiB of about 600",
        left >> 20
    );
    assert!(
        std::fs::read(arch.join("big.tar")).unwrap() == previous,
        "the previous archive is untouched"
    );
    assert_eq!(
        std::fs::read(arch.join("big.tar.sha256")).unwrap(),
        previous_sum
    );
    checksum_ok(&arch, "big.tar.sha256");

    // The next run removes the file of the dead process, and backs up.
    let stdout = sb.ok(&args);
    assert!(
        stdout.contains(&format!("Removed .big.tar.dstart-tmp-{pid}, left behind")),
        "{stdout}"
    );
    assert_no_temporary_files(&arch, &["big.tar", "big.tar.sha256"], "the next run");
    check_archive_files(&arch, "big.tar");
    assert!(containers_named(&helper).is_empty());
}

/// A running container with small files and a 2 MB random file, backed up with a fixed name
/// into `bk/good.tar.gz`; then every file is changed and a marker added.
fn damaged_setup(sb: &Sandbox) -> (String, PathBuf) {
    let app = start_app(sb);
    vol_sh(
        &app,
        "set -e; mkdir /data/sub; for i in a b c d e f g h i j; do echo $i > /data/$i; echo $i > /data/sub/$i; done; dd if=/dev/urandom of=/data/mid bs=1k count=2048 2>/dev/null",
    );
    orders(
        sb,
        "bk",
        &format!(
            "- {app}: {{command: backup, backup_dir: bk, backup_name: good}}\n- {app}: {{command: backup, backup_dir: bk, backup_name: goodz, compression: zstd}}\n- {app}: {{command: backup, backup_dir: bk, backup_name: goodt, compression: none}}\n"
        ),
    );
    run(sb, "bk");
    vol_sh(
        &app,
        "set -e; for i in a b c d e f g h i j; do echo changed >> /data/$i; echo changed >> /data/sub/$i; done; echo changed >> /data/mid; echo marker > /data/marker",
    );
    (app, sb.conf().join("bk"))
}

/// Restores `archive` (relative to `bk`) with `extra` arguments; asserts the failure and that
/// the volume is untouched; returns stderr.
fn restore_rejected(sb: &Sandbox, app: &str, archive: &str, extra: &str) -> String {
    let before = listing(app, "data");
    assert!(before.contains("data/marker|"), "{before}");
    orders(
        sb,
        "rs",
        &format!("- {app}: {{command: restore, restore_dir: bk, archive: '{archive}'{extra}}}\n"),
    );
    let stderr = run_fails(sb, "rs", 1);
    assert_eq!(
        listing(app, "data"),
        before,
        "{archive}: the volume was touched by a rejected restore ({stderr})"
    );
    stderr
}

/// Copies `bk/from` to `bk/to` with `edit` applied to its bytes; writes `to.sha256` when
/// `sum` is true.
fn variant(bk: &Path, from: &str, to: &str, sum: bool, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(bk.join(from)).unwrap();
    edit(&mut bytes);
    std::fs::write(bk.join(to), bytes).unwrap();
    if sum {
        host(bk, "sh", &["-c", &format!("sha256sum {to} > {to}.sha256")]);
    }
}

/// The command in backticks on the `hint:` line of `stderr`.
fn stderr_hint_command(stderr: &str) -> String {
    let hint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint: {stderr}"));
    hint.split('`')
        .nth(1)
        .expect("a command in backticks")
        .to_string()
}

#[test]
fn damaged_archives_and_checksum_mismatches_are_rejected_before_writing() {
    let sb = Sandbox::new("bkdamaged");
    let (app, bk) = damaged_setup(&sb);
    let flip = |b: &mut Vec<u8>| {
        let mid = b.len() / 2;
        for byte in &mut b[mid..mid + 16] {
            *byte ^= 0x5a;
        }
    };
    let truncate = |b: &mut Vec<u8>| {
        let len = b.len() * 2 / 3;
        b.truncate(len);
    };
    // Damaged archives whose .sha256 matches the damaged bytes (it was written after the
    // damage): the archive itself is checked (gzip's CRC, zstd's content checksum, tar's
    // structure).
    variant(&bk, "good.tar.gz", "flipped.tar.gz", true, flip);
    variant(&bk, "good.tar.gz", "truncated.tar.gz", true, truncate);
    variant(&bk, "goodz.tar.zst", "flipped.tar.zst", true, flip);
    variant(&bk, "goodz.tar.zst", "truncated.tar.zst", true, truncate);
    variant(&bk, "goodt.tar", "truncated.tar", true, truncate);
    for archive in [
        "flipped.tar.gz",
        "truncated.tar.gz",
        "flipped.tar.zst",
        "truncated.tar.zst",
        "truncated.tar",
    ] {
        let stderr = restore_rejected(&sb, &app, archive, "");
        assert!(stderr.contains("damaged"), "{archive}: {stderr}");
    }
    // A checksum mismatch: a good archive with an edited .sha256, and a damaged archive with
    // the original .sha256.
    variant(&bk, "good.tar.gz", "mismatch.tar.gz", false, |_| {});
    let good_sum = std::fs::read_to_string(bk.join("good.tar.gz.sha256")).unwrap();
    let edited = format!(
        "{}{}",
        if good_sum.starts_with('0') { "1" } else { "0" },
        &good_sum[1..].replace("good.tar.gz", "mismatch.tar.gz")
    );
    std::fs::write(bk.join("mismatch.tar.gz.sha256"), edited).unwrap();
    variant(&bk, "good.tar.gz", "flipped-sum.tar.gz", false, flip);
    std::fs::write(
        bk.join("flipped-sum.tar.gz.sha256"),
        good_sum.replace("good.tar.gz", "flipped-sum.tar.gz"),
    )
    .unwrap();
    for archive in ["mismatch.tar.gz", "flipped-sum.tar.gz"] {
        let stderr = restore_rejected(&sb, &app, archive, ", clean: true");
        assert!(stderr.contains("checksum"), "{archive}: {stderr}");
    }
    // No archive of that name.
    orders(
        &sb,
        "rs",
        &format!("- {app}: {{command: restore, restore_dir: bk, restore_name: nothing}}\n"),
    );
    let stderr = run_fails(&sb, "rs", 1);
    assert!(stderr.contains("no archive named nothing"), "{stderr}");

    // An archive without its .sha256 (a copy from off-site storage) is refused, damaged or
    // not, with the command that writes the checksum of an archive one trusts.
    variant(&bk, "good.tar.gz", "copied.tar.gz", false, |_| {});
    variant(&bk, "good.tar.gz", "copied-flipped.tar.gz", false, flip);
    let mut write_sum = String::new();
    for archive in ["copied.tar.gz", "copied-flipped.tar.gz"] {
        let stderr = restore_rejected(&sb, &app, archive, ", clean: true");
        let sum = bk.join(format!("{archive}.sha256"));
        assert!(
            stderr.contains(&format!("has no checksum file `{}`", sum.display())),
            "{archive}: {stderr}"
        );
        assert!(
            stderr.contains("nothing was restored"),
            "{archive}: {stderr}"
        );
        let command = stderr_hint_command(&stderr);
        assert!(
            command.ends_with(&format!("sha256sum {archive} > {archive}.sha256")),
            "{archive}: {command}"
        );
        if write_sum.is_empty() {
            write_sum = command;
        }
    }
    // Doing what the hint says makes the intact copy restorable.
    host(&bk, "sh", &["-c", &write_sum]);
    checksum_ok(&bk, "copied.tar.gz.sha256");

    // The intact archive still restores (the rejections were not about the setup).
    orders(
        &sb,
        "rs",
        &format!("- {app}: {{command: restore, restore_dir: bk, restore_name: good}}\n"),
    );
    run(&sb, "rs");
    assert_eq!(vol_sh(&app, "cat /data/a /data/sub/j"), "a\nj");
    assert_eq!(vol_sh(&app, "cat /data/marker"), "marker", "overlay");
}

/// Writes `bk/<name>.tar.gz` (and its `.sha256`) with Python's tarfile: a directory `data/`, a
/// harmless `data/first`, then the members of `kind`.
fn evil_tar(bk: &Path, name: &str, kind: &str) {
    let script = r#"
import io, sys, tarfile, time
out, kind = sys.argv[1], sys.argv[2]
t = tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT)
def member(name, typ=tarfile.REGTYPE, data=b"", link=""):
    i = tarfile.TarInfo(name)
    i.type = typ
    i.mtime = time.time()
    i.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
    i.linkname = link
    i.size = len(data)
    t.addfile(i, io.BytesIO(data) if data else None)
member("data/", tarfile.DIRTYPE)
member("data/first", data=b"written before the bad member\n")
if kind == "dotdot":
    member("data/../evil", data=b"evil\n")
elif kind == "dotdot-dir":
    member("data/sub/../../etc/evil", data=b"evil\n")
elif kind == "absolute":
    member("/evil", data=b"evil\n")
elif kind == "absolute-in-volume":
    member("/data/evil", data=b"evil\n")
elif kind == "symlink":
    member("data/link", tarfile.SYMTYPE, link="/etc")
    member("data/link/evil", data=b"evil\n")
elif kind == "relative-symlink":
    member("data/up", tarfile.SYMTYPE, link="../etc")
    member("data/up/evil", data=b"evil\n")
elif kind == "hardlink":
    member("data/hl", tarfile.LNKTYPE, link="etc/hostname")
elif kind == "symlink-chain":
    # Each link stays in /data on its text; together data/d/l is /etc.
    member("data/d", tarfile.SYMTYPE, link="/data")
    member("data/d/l", tarfile.SYMTYPE, link="../etc")
    member("data/d/l/evil", data=b"evil\n")
elif kind == "hardlink-through-symlink":
    # data/s is data, so data/t (s/..) is /, and data/h the engine's /etc/hostname.
    member("data/s", tarfile.SYMTYPE, link=".")
    member("data/t", tarfile.SYMTYPE, link="s/..")
    member("data/h", tarfile.LNKTYPE, link="data/t/etc/hostname")
elif kind == "symlink-through-symlink":
    member("data/t", tarfile.SYMTYPE, link="s/..")
    member("data/s", tarfile.SYMTYPE, link=".")
elif kind == "outside":
    member("etc/evil", data=b"evil\n")
else:
    raise SystemExit("unknown kind " + kind)
t.close()
"#;
    let file = format!("{name}.tar.gz");
    host(
        bk,
        "python3",
        &["-c", script, bk.join(&file).to_str().unwrap(), kind],
    );
    host(
        bk,
        "sh",
        &["-c", &format!("sha256sum {file} > {file}.sha256")],
    );
}

#[test]
fn unsafe_archives_are_rejected() {
    let sb = Sandbox::new("bkunsafe");
    let (app, bk) = damaged_setup(&sb);
    for (kind, member) in [
        ("dotdot", "data/../evil"),
        ("dotdot-dir", "data/sub/../../etc/evil"),
        ("absolute", "/evil"),
        ("absolute-in-volume", "/data/evil"),
        ("symlink", "data/link"),
        ("relative-symlink", "data/up"),
        ("hardlink", "data/hl"),
        ("outside", "etc/evil"),
        ("symlink-chain", "data/d/l"),
        ("hardlink-through-symlink", "data/h"),
        ("symlink-through-symlink", "data/t"),
    ] {
        evil_tar(&bk, kind, kind);
        // Both the default overlay and clean: true must refuse before writing anything.
        for extra in ["", ", clean: true"] {
            let stderr = restore_rejected(&sb, &app, &format!("{kind}.tar.gz"), extra);
            assert!(stderr.contains("unsafe"), "{kind}{extra}: {stderr}");
            assert!(
                stderr.contains(member),
                "{kind}{extra}: names {member}: {stderr}"
            );
        }
    }
    let outside = docker_output(&[
        "exec",
        &app,
        "sh",
        "-c",
        "ls /evil /etc/evil /data/evil /data/first 2>/dev/null; cat /etc/hostname",
    ]);
    let text = String::from_utf8_lossy(&outside.stdout);
    assert!(
        !text.contains("evil") && !text.contains("first"),
        "nothing was written in or outside the volume: {text}"
    );
}

#[test]
fn stop_true_restarts_only_what_was_running() {
    let sb = Sandbox::new("bkstop");
    let id = sb.id.clone();
    let running = format!("{id}-run");
    let idle = format!("{id}-idle");
    let done = format!("{id}-done");
    sb.unit(
        &id,
        "start",
        &format!(
            "{}{}{done}:\n  image: {base}\n  command: [\"true\"]\n  volumes: ['{id}-dv:/data']\n---\n- {running}: {{command: start}}\n- {idle}: {{command: create}}\n- {done}: {{command: start, attach: true}}\n",
            long_running(&running, &format!("  volumes: ['{id}-rv:/data']\n")),
            long_running(&idle, &format!("  volumes: ['{id}-iv:/data']\n")),
            base = base_image()
        ),
    );
    run(&sb, "start");
    for c in [&running, &idle, &done] {
        vol_sh(c, &format!("echo {c} > /data/who"));
    }
    let state = |c: &str| {
        sb.inspect(
            c,
            "{{.State.Status}} {{.State.StartedAt}} {{.State.FinishedAt}}",
        )
        .unwrap()
    };
    let status = |c: &str| sb.inspect(c, "{{.State.Status}}").unwrap();
    let started = |c: &str| sb.inspect(c, "{{.State.StartedAt}}").unwrap();
    let finished = |c: &str| sb.inspect(c, "{{.State.FinishedAt}}").unwrap();
    let run_before = started(&running);
    let run_finished = finished(&running);
    let idle_before = state(&idle);
    let done_before = state(&done);
    assert_eq!(status(&done), "exited");

    let mut bk = String::new();
    for c in [&running, &idle, &done] {
        let _ = writeln!(
            bk,
            "- {c}: {{command: backup, backup_dir: bk, backup_name: {c}, overwrite: true, stop: true}}"
        );
    }
    orders(&sb, "bk", &bk);
    run(&sb, "bk");
    assert_eq!(status(&running), "running", "started again");
    assert_ne!(
        started(&running),
        run_before,
        "it was stopped for the backup"
    );
    assert_ne!(
        finished(&running),
        run_finished,
        "it was stopped for the backup"
    );
    assert_eq!(
        state(&idle),
        idle_before,
        "a created container stays as it was"
    );
    assert_eq!(
        state(&done),
        done_before,
        "an exited container stays as it was"
    );
    let bkdir = sb.conf().join("bk");
    for c in [&running, &idle, &done] {
        check_archive_files(&bkdir, &format!("{c}.tar.gz"));
    }

    // A backup with stop: true that fails after the stop starts the running container again:
    // a source the engine cannot find (the check that it lies in a volume passed). A backup
    // directory in which no file can be made (the first order takes the directory's lock, and
    // a host command then puts /proc in its place) fails before the stop.
    orders(
        &sb,
        "bkfail",
        &format!(
            "- {running}: {{command: backup, backup_dir: bk, backup_name: failing, source: /data/missing, stop: true}}\n"
        ),
    );
    let before = started(&running);
    let stderr = run_fails(&sb, "bkfail", 1);
    assert!(stderr.contains("/data/missing"), "{stderr}");
    assert_eq!(
        status(&running),
        "running",
        "started again after the engine failed"
    );
    assert_ne!(started(&running), before, "it was stopped for the backup");
    assert!(!bkdir.join("failing.tar.gz").exists());
    let swap = sb.conf().join("swap");
    orders(
        &sb,
        "bknotmp",
        &format!(
            "- {idle}: {{command: backup, backup_dir: swap, backup_name: first}}\n\
             - host: {{command: execute, run: [sh, -c, 'rm -rf {swap} && ln -s /proc {swap}']}}\n\
             - {running}: {{command: backup, backup_dir: swap, backup_name: second, stop: true}}\n",
            swap = swap.display()
        ),
    );
    let before = started(&running);
    let stderr = run_fails(&sb, "bknotmp", 1);
    // The lock of the archive name is taken in the directory before anything is stopped: a
    // directory that takes no file fails the backup there.
    assert!(stderr.contains("taking the lock"), "{stderr}");
    assert_eq!(status(&running), "running");
    assert_eq!(
        started(&running),
        before,
        "not stopped: it failed before the stop"
    );

    // Restore with stop: true, the same way.
    for c in [&running, &idle, &done] {
        vol_sh(c, "echo changed > /data/who");
    }
    let run_before = started(&running);
    let mut rs = String::new();
    for c in [&running, &idle, &done] {
        let _ = writeln!(
            rs,
            "- {c}: {{command: restore, restore_dir: bk, restore_name: {c}, stop: true}}"
        );
    }
    orders(&sb, "rs", &rs);
    run(&sb, "rs");
    assert_eq!(status(&running), "running");
    assert_ne!(started(&running), run_before, "stopped for the restore");
    assert_eq!(state(&idle), idle_before);
    assert_eq!(state(&done), done_before);
    for c in [&running, &idle, &done] {
        assert_eq!(vol_sh(c, "cat /data/who"), *c);
    }
}

/// Spawns `dstart -d run <id>/<command>` and waits until a line of its stdout contains
/// `needle`; the rest of its stdout is read on and dropped.
fn spawn_until(sb: &Sandbox, command: &str, needle: &str) -> Reap {
    let mut child = sb
        .command(&["-d", "run", &format!("{}/{command}", sb.id)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dstart runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = needle.to_string();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut said = false;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !said && line.contains(&wanted) {
                said = true;
                let _ = tx.send(());
            }
        }
    });
    let mut reap = Reap(Some(child));
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let out = wait_for(reap.0.as_mut().unwrap(), 60, "dstart");
        panic!(
            "dstart run {command} never said `{needle}`; it exited with {:?}:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    reap
}

#[test]
fn restore_sends_the_archive_it_verified() {
    let sb = Sandbox::new("bkfd");
    let id = sb.id.clone();
    // `stop: true` takes the 10 s stop timeout between the check of the archive and its upload,
    // and the test changes the archive meanwhile.
    let app = format!("{id}-app");
    let spec = stubborn(&app, &format!("  volumes: ['{id}-vol:/data']\n"));
    sb.unit(
        &id,
        "start",
        &format!("{spec}---\n- {app}: {{command: start}}\n"),
    );
    run(&sb, "start");
    orders(
        &sb,
        "bk",
        &format!(
            "- {app}: {{command: backup, backup_dir: bk, backup_name: t, compression: none, overwrite: true}}\n\
             - {app}: {{command: backup, backup_dir: bk, backup_name: other, compression: none, overwrite: true}}\n"
        ),
    );
    orders(
        &sb,
        "rs",
        &format!("- {app}: {{command: restore, restore_dir: bk, archive: t.tar, stop: true}}\n"),
    );
    let bk = sb.conf().join("bk");
    vol_sh(&app, "printf ORIGINAL-CONTENT > /data/f");
    run(&sb, "bk");
    let original = std::fs::read(bk.join("t.tar")).unwrap();
    let original_sum = std::fs::read(bk.join("t.tar.sha256")).unwrap();
    vol_sh(&app, "printf REPLACED-CONTENT > /data/f");
    run(&sb, "bk");
    std::fs::rename(bk.join("other.tar"), bk.join("other-copy.tar")).unwrap();
    std::fs::write(bk.join("t.tar"), &original).unwrap();
    std::fs::write(bk.join("t.tar.sha256"), &original_sum).unwrap();

    // Another archive renamed over the checked one: the checked one is restored.
    vol_sh(&app, "printf BROKEN-CONTENT!! > /data/f");
    let mut child = spawn_until(&sb, "rs", " checked: ");
    std::fs::rename(bk.join("other-copy.tar"), bk.join("t.tar")).unwrap();
    let out = wait_for(child.0.as_mut().unwrap(), 120, "the restore");
    child.0 = None;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(vol_sh(&app, "cat /data/f"), "ORIGINAL-CONTENT");
    assert!(sb.running(&app));

    // The checked file itself written into: the restore fails and says so.
    std::fs::write(bk.join("t.tar"), &original).unwrap();
    vol_sh(&app, "printf BROKEN-CONTENT!! > /data/f");
    let mut child = spawn_until(&sb, "rs", " checked: ");
    let at = original
        .windows(16)
        .position(|w| w == b"ORIGINAL-CONTENT")
        .unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(bk.join("t.tar"))
            .unwrap();
        f.seek(SeekFrom::Start(at as u64)).unwrap();
        f.write_all(b"CHANGED!-CONTENT").unwrap();
    }
    let out = wait_for(child.0.as_mut().unwrap(), 120, "the restore");
    child.0 = None;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("changed while it was restored") && stderr.contains("may hold part of it"),
        "{stderr}"
    );
    assert!(sb.running(&app), "started again after the failure");
}

#[test]
fn restore_into_a_fresh_container_overlay_and_clean() {
    let sb = Sandbox::new("bkfresh");
    let id = sb.id.clone();
    let old = format!("{id}-old");
    let new = format!("{id}-new");
    sb.unit(
        &id,
        "start",
        &format!(
            "{}{}---\n- {old}: {{command: start}}\n- {new}: {{command: create}}\n",
            long_running(&old, &format!("  volumes: ['{id}-oldvol:/data']\n")),
            long_running(&new, &format!("  volumes: ['{id}-newvol:/data']\n"))
        ),
    );
    run(&sb, "start");
    vol_sh(
        &old,
        "set -e; cd /data; mkdir -p conf empty; echo setting > conf/app.ini; echo rows > table; ln -s conf/app.ini current; chown -R 999:999 conf; chmod 0700 /data; chown 999:999 /data; touch -d '2010-01-01 00:00:00' table",
    );
    let original = listing(&old, "data");
    orders(
        &sb,
        "bk",
        &format!("- {old}: {{command: backup, backup_dir: bk, backup_name: old}}\n"),
    );
    run(&sb, "bk");
    let archive = sb.conf().join("bk/old.tar.gz");
    assert!(archive.is_file());
    assert_eq!(
        vol_sh(&new, "ls -A /data | wc -l"),
        "0",
        "a new, empty volume"
    );

    // An absolute `archive:` into the new container's new volume.
    orders(
        &sb,
        "rs",
        &format!(
            "- {new}: {{command: restore, archive: '{}'}}\n",
            archive.display()
        ),
    );
    run(&sb, "rs");
    assert_eq!(listing(&new, "data"), original);
    assert_eq!(
        sb.inspect(&new, "{{.State.Status}}").as_deref(),
        Some("created")
    );

    // Overlay (the default): files not in the archive stay, missing ones come back.
    vol_sh(
        &new,
        "set -e; echo extra > /data/extra; mkdir /data/newdir; rm /data/table; echo edited > /data/conf/app.ini",
    );
    run(&sb, "rs");
    assert_eq!(vol_sh(&new, "cat /data/extra"), "extra");
    assert_eq!(
        vol_sh(&new, "cat /data/table /data/conf/app.ini"),
        "rows\nsetting"
    );
    assert_eq!(vol_sh(&new, "test -d /data/newdir && echo kept"), "kept");

    // clean: true empties the volume first: exactly the archive's content.
    orders(
        &sb,
        "rsclean",
        &format!(
            "- {new}: {{command: restore, archive: '{}', clean: true}}\n",
            archive.display()
        ),
    );
    run(&sb, "rsclean");
    assert_eq!(listing(&new, "data"), original);
    assert_eq!(listing(&old, "data"), original, "the source is untouched");
}

#[test]
fn an_image_without_tar_or_shell_is_backed_up_and_restored() {
    let sb = Sandbox::new("bkscratch");
    let id = sb.id.clone();
    // An image made `FROM scratch` holding one data file: no tar, no shell, nothing to run.
    let image = format!("{id}-bare:latest");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("seed"), "from the image\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY seed /data/seed\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", &image, ctx.path().to_str().unwrap()]);
    let bare = format!("{id}-bare");
    sb.unit(
        &id,
        "start",
        &format!(
            "{bare}:\n  image: {image}\n  command: [/nothing]\n  volumes: ['{id}-vol:/data']\n---\n- {bare}: {{command: create}}\n"
        ),
    );
    run(&sb, "start");
    let status = || sb.inspect(&bare, "{{.State.Status}}").unwrap();
    assert_eq!(status(), "created");
    vol_sh(&bare, "echo one > /data/a && echo two > /data/b");
    let original = listing(&bare, "data");
    assert!(original.contains("data/seed|"), "{original}");

    orders(
        &sb,
        "bk",
        &format!("- {bare}: {{command: backup, backup_dir: bk, backup_name: bare}}\n"),
    );
    run(&sb, "bk");
    check_archive_files(&sb.conf().join("bk"), "bare.tar.gz");

    // Overlay through the engine's archive endpoint.
    vol_sh(
        &bare,
        "rm /data/a && echo changed > /data/b && echo extra > /data/extra",
    );
    orders(
        &sb,
        "rs",
        &format!("- {bare}: {{command: restore, restore_dir: bk, restore_name: bare}}\n"),
    );
    run(&sb, "rs");
    assert_eq!(
        vol_sh(&bare, "cat /data/a /data/b /data/extra"),
        "one\ntwo\nextra"
    );
    assert_eq!(status(), "created");

    // clean: true needs `find` and `rm`: without HELPER_IMAGE it fails before anything is
    // touched, and says what to set.
    orders(
        &sb,
        "rsclean",
        &format!(
            "- {bare}: {{command: restore, restore_dir: bk, restore_name: bare, clean: true}}\n"
        ),
    );
    let before = listing(&bare, "data");
    let stderr = run_fails(&sb, "rsclean", 1);
    assert!(
        stderr.contains(&format!(
            "`clean: true` empties the volumes with `find` and `rm` in a container of `{image}`, which cannot run them"
        )) && stderr.contains("nothing was restored"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: set HELPER_IMAGE"), "{stderr}");
    assert_eq!(listing(&bare, "data"), before, "the volume is untouched");
    assert!(
        containers_named(&format!("{bare}_")).is_empty(),
        "no helper is left"
    );
    // With HELPER_IMAGE, the same restore empties the volume first.
    let helper_env = sb.write("helper.yaml", &format!("HELPER_IMAGE: {}\n", base_image()));
    sb.ok(&[
        "run",
        "-e",
        helper_env.to_str().unwrap(),
        &format!("{id}/rsclean"),
    ]);
    assert_eq!(listing(&bare, "data"), original);
    assert_eq!(status(), "created");
}

#[test]
fn cron_quiet_and_error_log() {
    let sb = Sandbox::new("bkcron");
    let id = sb.id.clone();
    let app = start_app(&sb);
    vol_sh(&app, "echo data > /data/f");
    orders(
        &sb,
        "nightly",
        &format!(
            "- {app}: {{command: backup, backup_dir: cron, backup_name: app, timestamp: true}}\n"
        ),
    );
    orders(
        &sb,
        "fixed",
        &format!("- {app}: {{command: backup, backup_dir: cron, backup_name: fixed}}\n"),
    );
    // cron runs in $HOME: a relative backup_dir is relative to the configuration directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let quiet = |command: &str, extra: &[&str]| {
        let mut args = vec!["-q"];
        args.extend_from_slice(extra);
        let unit_command = format!("{id}/{command}");
        args.extend_from_slice(&["run", &unit_command]);
        sb.command(&args)
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    for command in ["nightly", "nightly", "fixed"] {
        let out = quiet(command, &[]);
        assert!(
            out.status.success(),
            "{command}: {:?} {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "{command}: stdout"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{command}: stderr"
        );
    }
    let cron = sb.conf().join("cron");
    let stamped = names(&cron)
        .into_iter()
        .filter(|n| timestamp_of(n, "app", "tar.gz").is_some())
        .count();
    assert_eq!(stamped, 2, "{:?}", names(&cron));
    check_archive_files(&cron, "fixed.tar.gz");
    assert!(names(elsewhere.path()).is_empty(), "nothing in the cwd");

    // A failure: one message on stderr, exit 1, nothing on stdout.
    let out = quiet("fixed", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("exists already").count(),
        1,
        "one message: {stderr}"
    );
    assert!(stderr.contains("overwrite"), "{stderr}");
    assert!(
        stderr.contains("fixed.tar.gz"),
        "it says what failed: {stderr}"
    );

    // -l FILE: the errors go to FILE (appended), not to stderr.
    let log = sb.dir.path().join("errors.log");
    let log_arg = log.display().to_string();
    for _ in 0..2 {
        let out = quiet("fixed", &["-l", &log_arg]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "the error went to the log"
        );
    }
    let text = std::fs::read_to_string(&log).expect("the error log exists");
    assert_eq!(
        text.matches("exists already").count(),
        2,
        "both failures are appended: {text}"
    );
}
