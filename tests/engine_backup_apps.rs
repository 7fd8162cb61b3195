//! Backups of applications (issue 18) against the real engine: a container spec's `backup:`
//! and `restore:` sections followed by the generated commands (hooks, paths, exclude, the
//! restore that stops and starts), failing hooks, `keep` policies from `BACKUP_KEEP`, and age
//! encryption that the `age` command decrypts.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Sandbox, base_image, docker};

/// `<id>-app`, running until SIGTERM, with the volume `<id>-vol` on /data and the spec lines
/// `extra`; `units/<id>/start.yaml` starts it. Environment: `BACKUP_DIR: bk` and `env`.
fn app_unit(sb: &Sandbox, extra: &str, env: &str) -> String {
    let id = &sb.id;
    let app = format!("{id}-app");
    sb.write(
        "environments/default.yaml",
        &format!("BACKUP_DIR: bk\n{env}"),
    );
    sb.unit(
        id,
        "start",
        &format!(
            "{app}:\n  image: {}\n  command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo up; while true; do sleep 1; done\"]\n  volumes: ['{id}-vol:/data']\n{extra}---\n- {app}: {{command: start, ready: {{log: up}}}}\n",
            base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    app
}

fn sh(container: &str, script: &str) -> String {
    docker(&["exec", container, "sh", "-c", script])
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn newest(dir: &Path, suffix: &str) -> String {
    files(dir)
        .into_iter()
        .rfind(|f| f.ends_with(suffix) && f.contains("-20"))
        .unwrap_or_else(|| panic!("no {suffix} in {:?}", files(dir)))
}

fn tar_list(dir: &Path, file: &str, decompress: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("{decompress} '{file}' | tar tf -")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_generated_backup_and_restore_follow_the_container_spec() {
    let sb = Sandbox::new("bkapp");
    let id = sb.id.clone();
    let app = app_unit(
        &sb,
        "  backup:\n    paths: [/data]\n    exclude: ['*.tmp', /data/cache]\n    before: echo dumped > /data/dump.txt\n    after: [rm, /data/dump.txt]\n  restore:\n    before: [touch, /data/restore-before]\n    after: echo restored > /data/restore-after\n",
        "",
    );
    sh(
        &app,
        "echo live > /data/live.txt; echo x > /data/junk.tmp; mkdir -p /data/cache; echo c > /data/cache/c",
    );
    let printed = sb.ok(&["run", "--print-unit", &format!("{id}/restore")]);
    assert!(printed.contains("stop: true"), "{printed}");
    assert!(
        printed.contains("ready:"),
        "the start order's ready: {printed}"
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/backup")]);
    assert!(out.contains("Running `before` of the backup"), "{out}");
    let bk = sb.conf().join("bk");
    let archive = newest(&bk, ".tar.gz");
    let members = tar_list(&bk, &archive, "gzip -dc");
    assert!(
        members.contains("data/dump.txt"),
        "before ran first: {members}"
    );
    assert!(members.contains("data/live.txt"), "{members}");
    assert!(
        !members.contains("junk.tmp") && !members.contains("cache"),
        "excluded: {members}"
    );
    assert_eq!(
        sh(&app, "ls /data/dump.txt 2>&1 || true"),
        "ls: /data/dump.txt: No such file or directory",
        "after ran"
    );

    // The generated restore stops the container, restores, starts it again (ready: waited
    // for) and runs the hooks.
    sh(&app, "echo broken > /data/live.txt");
    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &app]);
    sb.ok(&["run", &format!("{id}/restore")]);
    assert_ne!(
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &app]),
        started,
        "stopped for the restore"
    );
    assert_eq!(sh(&app, "cat /data/live.txt"), "live");
    assert_eq!(sh(&app, "cat /data/restore-after"), "restored");
    assert_eq!(sh(&app, "ls /data/restore-before"), "/data/restore-before");

    // A failing `before` fails the backup and leaves the previous archive alone; `after`
    // runs all the same.
    sb.unit(
        &id,
        "badbackup",
        &format!(
            "import: {id}/start\n---\n- {app}: {{command: backup, backup_dir: bk, backup_name: {app}, timestamp: true, keep: 1, before: 'echo no dump; exit 3', after: 'touch /data/after-ran'}}\n"
        ),
    );
    let before = files(&bk);
    let (_, stderr) = sb.fails(&["run", &format!("{id}/badbackup")], 1);
    assert!(
        stderr.contains("failed with exit code 3") && stderr.contains("no dump"),
        "{stderr}"
    );
    assert_eq!(files(&bk), before);
    assert_eq!(sh(&app, "ls /data/after-ran"), "/data/after-ran");
}

#[test]
fn unknown_keys_in_backup_sections_are_configuration_errors() {
    let sb = Sandbox::new("bkappkeys");
    let id = &sb.id;
    sb.unit(
        id,
        "start",
        &format!(
            "{id}-app:\n  image: {}\n  backup:\n    pathz: [/data]\n---\n- {id}-app: {{command: start}}\n",
            base_image()
        ),
    );
    let (_, stderr) = sb.fails(&["run", "--print-unit", &format!("{id}/backup")], 2);
    assert!(stderr.contains("start.yaml:4"), "{stderr}");
    assert!(stderr.contains("unknown key `pathz`"), "{stderr}");
    assert!(
        stderr.contains("`paths`") && stderr.contains("`before`"),
        "{stderr}"
    );
}

#[test]
fn keep_policies_from_backup_keep_prune_by_period_and_say_so() {
    let sb = Sandbox::new("bkkeep");
    let id = sb.id.clone();
    let app = app_unit(&sb, "", "BACKUP_KEEP: {daily: 2, monthly: 3}\n");
    let bk = sb.conf().join("bk");
    std::fs::create_dir_all(&bk).unwrap();
    // Earlier archives: two on one day, one on another, then one a month for three months.
    let old = [
        "20200105T000000Z",
        "20200210T000000Z",
        "20200315T000000Z",
        "20200320T020000Z",
        "20200320T030000Z",
    ];
    for s in old {
        let f = format!("{app}-{s}.tar.gz");
        std::fs::write(bk.join(&f), b"old").unwrap();
        std::fs::write(bk.join(format!("{f}.sha256")), format!("00  {f}\n")).unwrap();
    }
    let out = sb.ok(&["run", &format!("{id}/backup")]);
    // Kept: the new one (today), the newest of 2020-03-20 (daily: 2), and by month the newest
    // of the months before today's: 2020-03 (the same), 2020-02.
    for gone in ["20200105T000000Z", "20200315T000000Z", "20200320T020000Z"] {
        let f = format!("{app}-{gone}.tar.gz");
        assert!(!bk.join(&f).exists(), "{f} pruned: {:?}", files(&bk));
        assert!(
            out.contains(&format!("Removed the old backup {f}")),
            "{out}"
        );
    }
    for kept in ["20200210T000000Z", "20200320T030000Z"] {
        assert!(
            bk.join(format!("{app}-{kept}.tar.gz")).exists(),
            "{kept}: {:?}",
            files(&bk)
        );
    }
}

#[test]
fn encrypted_archives_open_with_the_age_command_and_need_the_identity() {
    let sb = Sandbox::new("bkage");
    let id = sb.id.clone();
    let keys = sb.conf().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for k in ["key.txt", "other.txt"] {
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(keys.join(k))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age-keygen (Debian package age): {out:?}"
        );
    }
    let recipient = String::from_utf8(
        Command::new("age-keygen")
            .arg("-y")
            .arg(keys.join("key.txt"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let app = app_unit(
        &sb,
        "",
        &format!("BACKUP_AGE_RECIPIENTS: [{}]\n", recipient.trim()),
    );
    sh(&app, "echo secret data > /data/s.txt");
    sb.ok(&["run", &format!("{id}/backup")]);
    let bk = sb.conf().join("bk");
    let archive = newest(&bk, ".tar.gz.age");
    let out = Command::new("sha256sum")
        .args(["-c", &format!("{archive}.sha256")])
        .current_dir(&bk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the checksum covers the encrypted file: {out:?}"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i {} '{archive}' | gzip -dc | tar tf -",
            keys.join("key.txt").display()
        ))
        .current_dir(&bk)
        .output()
        .unwrap();
    assert!(out.status.success(), "the age command decrypts it: {out:?}");
    let members = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(members.contains("data/s.txt"), "{members}");
    let raw = std::fs::read(bk.join(&archive)).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"secret data"));

    // Restores: no identity, the wrong one (both before anything is touched), the right one.
    sh(&app, "echo changed > /data/s.txt");
    let restore = format!("{id}/restore");
    let (_, stderr) = sb.fails(&["run", &restore], 1);
    assert!(stderr.contains("no identity was given"), "{stderr}");
    sb.write(
        "other.yaml",
        &format!(
            "BACKUP_AGE_IDENTITY: {}\n",
            keys.join("other.txt").display()
        ),
    );
    let (_, stderr) = sb.fails(&["run", "-e", "other.yaml", &restore], 1);
    assert!(stderr.contains("wrong identity"), "{stderr}");
    assert_eq!(sh(&app, "cat /data/s.txt"), "changed", "untouched");
    sb.write(
        "right.yaml",
        &format!("BACKUP_AGE_IDENTITY: {}\n", keys.join("key.txt").display()),
    );
    sb.ok(&["run", "-e", "right.yaml", &restore]);
    assert_eq!(sh(&app, "cat /data/s.txt"), "secret data");
}

#[test]
fn ssh_public_keys_are_recipients_and_ssh_private_keys_restore() {
    let sb = Sandbox::new("bkagessh");
    let id = sb.id.clone();
    let keys = sb.conf().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut recipients = Vec::new();
    for kind in ["ed25519", "rsa"] {
        let key = keys.join(format!("id_{kind}"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "dstart-test", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        recipients.push(format!("'{}'", public.trim()));
    }
    let app = app_unit(
        &sb,
        "",
        &format!("BACKUP_AGE_RECIPIENTS: [{}]\n", recipients.join(", ")),
    );
    sh(&app, "echo ssh data > /data/s.txt");
    sb.ok(&["run", &format!("{id}/backup")]);
    let bk = sb.conf().join("bk");
    let archive = newest(&bk, ".tar.gz.age");
    // Either private key opens the archive with the age command.
    for kind in ["ed25519", "rsa"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "age -d -i {} '{archive}' | gzip -dc | tar tf -",
                keys.join(format!("id_{kind}")).display()
            ))
            .current_dir(&bk)
            .output()
            .unwrap();
        assert!(out.status.success(), "age -d with the {kind} key: {out:?}");
        let members = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(members.contains("data/s.txt"), "{members}");
    }
    // dstart restores with the ssh private key as the identity.
    sh(&app, "echo changed > /data/s.txt");
    sb.write(
        "ssh.yaml",
        &format!(
            "BACKUP_AGE_IDENTITY: {}\n",
            keys.join("id_ed25519").display()
        ),
    );
    sb.ok(&["run", "-e", "ssh.yaml", &format!("{id}/restore")]);
    assert_eq!(sh(&app, "cat /data/s.txt"), "ssh data");
}

/// `psql -tAc SQL` in container `db`.
fn psql(db: &str, sql: &str) -> String {
    docker(&["exec", db, "psql", "-U", "postgres", "-tAc", sql])
}

#[test]
fn postgresql_is_dumped_while_serving_and_restored_into_a_fresh_volume() {
    let image = support::postgres_image();
    let sb = Sandbox::new("bkpg");
    let id = sb.id.clone();
    let db = format!("{id}-db");
    sb.write("environments/default.yaml", "BACKUP_DIR: bk\n");
    sb.unit(
        &id,
        "start",
        &format!(
            r"{db}:
  image: {image}
  env: {{POSTGRES_PASSWORD: pw}}
  volumes: ['{id}-data:/var/lib/postgresql/data', '{id}-dump:/dump']
  jobs:
    rows: {{args: [psql, 'postgresql://postgres:pw@{db}/postgres', -tAc, 'SELECT count(*) FROM t'], match: '^1000'}}
  backup:
    paths: [/dump]
    before: pg_dump -U postgres -Fc -f /dump/db.dump postgres
  restore:
    after: pg_restore -U postgres --clean --if-exists -d postgres /dump/db.dump
---
- {db}: {{command: start, ready: {{log: database system is ready to accept connections, timeout: 60}}}}
"
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    psql(
        &db,
        "CREATE TABLE t (n int, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i",
    );
    let rows = "SELECT count(*), sum(n), md5(string_agg(v, ',' ORDER BY n)) FROM t";
    let before = psql(&db, rows);
    assert!(before.starts_with("1000|500500|"), "{before}");
    // Backed up while serving: the dump is consistent, the live files are not archived.
    sb.ok(&["run", &format!("{id}/backup")]);
    let bk = sb.conf().join("bk");
    let archive = newest(&bk, ".tar.gz");
    let members = tar_list(&bk, &archive, "gzip -dc");
    assert!(members.contains("dump/db.dump"), "{members}");
    assert!(!members.contains("postgresql"), "{members}");
    // The backup restores into a working copy: `test:restore` restores it into the copy's
    // fresh volumes, starts it, runs `pg_restore` (restore.after) and the job that counts rows.
    let stdout = sb.ok(&["run", &format!("{id}/test:restore")]);
    assert!(
        stdout.contains("PASS") && stdout.contains("rows"),
        "{stdout}"
    );

    // A fresh volume: the unit purged (containers and volumes), started again (an empty
    // database), then the generated restore: stop, unpack, start, wait, pg_restore.
    sb.ok(&["run", &format!("{id}/purge")]);
    assert!(!sb.exists(&format!("{id}-data")), "the data volume is gone");
    sb.ok(&["run", &format!("{id}/start")]);
    assert!(psql(&db, "SELECT to_regclass('t') IS NULL").contains('t'));
    sb.ok(&["run", &format!("{id}/restore")]);
    assert_eq!(psql(&db, rows), before, "the same rows");
    sb.ok(&["run", &format!("{id}/purge")]);
}

#[test]
fn test_restore_proves_the_newest_backup_restores_into_a_working_service() {
    let sb = Sandbox::new("bktr");
    let id = sb.id.clone();
    let web = format!("{id}-web");
    sb.write("environments/default.yaml", "BACKUP_DIR: bk\n");
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}:\n  image: {}\n  command: [httpd, -f, -p, '80', -h, /site]\n  ports: ['127.0.0.1::80']\n  volumes: ['{id}-site:/site']\n  daemon:\n    home: {{url: 'http://127.0.0.1:[[port 80]]({web})/', match: 'the real site', timeout: 5}}\n---\n- {web}: {{command: start}}\n",
            base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let test = format!("{id}/test:restore");
    let junit = sb.conf().join("restore.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    // The unit's test data container stays (its purge removes it).
    let test_data = format!("{id}_test_data");
    let left = || -> Vec<String> {
        docker(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .filter(|n| n.starts_with(id.as_str()) && *n != web && *n != test_data)
            .map(str::to_string)
            .collect()
    };
    // No backup yet: the restore of the setup fails, and so does the run.
    let (stdout, _) = sb.fails(&["run", "--junit", &junit_arg, &test], 1);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(left().is_empty(), "{:?}", left());

    sh(&web, "echo the real site > /site/index.html");
    sb.ok(&["run", &format!("{id}/backup")]);
    let stdout = sb.ok(&["run", "--junit", &junit_arg, &test]);
    assert!(
        stdout.contains("PASS") && stdout.contains("home"),
        "{stdout}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(left().is_empty(), "{:?}", left());

    // A newer backup taken before the data was there: the restored copy does not work.
    sh(&web, "echo not yet > /site/index.html");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.ok(&["run", &format!("{id}/backup")]);
    let (stdout, _) = sb.fails(&["run", &test], 1);
    assert!(
        stdout.contains("FAIL") && stdout.contains("home"),
        "{stdout}"
    );
    assert!(left().is_empty(), "{:?}", left());
}
