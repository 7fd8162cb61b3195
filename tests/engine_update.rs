//! Updates (seed 003 "Updates"), against the real engine: an `update` command that builds a
//! candidate image, runs its tests through a `tests` order on `host` and only then moves
//! `latest` with a `tag` order; and the generated `upgrade`, which re-creates exactly the
//! running containers whose image reference now names another image, across the units of the
//! configuration directory, carrying anonymous volumes and waiting for `ready:`.

mod support;

use support::{Sandbox, base_image, docker};

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", image])
}

/// A unit `<id>-cand` that builds `<id>/web:candidate` from `img/` (its `/app.txt` printed by
/// a job whose check wants `good`), and `<id>/update`: build it, test it, tag it `latest`.
/// Returns (candidate, latest).
fn update_unit(sb: &Sandbox) -> (String, String) {
    let id = &sb.id;
    sb.write(
        "img/Dockerfile",
        &format!(
            "FROM {}\nCOPY app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n",
            base_image()
        ),
    );
    let candidate = format!("{id}/web:candidate");
    let cand = format!("{id}-cand");
    sb.unit(
        &cand,
        "start",
        &format!(
            "{cand}:\n  build: {{path: img, tag: '{candidate}'}}\n  job:\n    exit_code: 0\n    logs: [{{re.match: good}}]\n    timeout: 20\n---\n- {cand}: {{command: start}}\n"
        ),
    );
    sb.unit(
        id,
        "update",
        &format!(
            "{cand}:\n  build: {{path: img, tag: '{candidate}'}}\n---\n- {cand}: {{command: build}}\n- host: {{command: tests, tests: ['{cand}/test:check']}}\n- {cand}: {{command: tag, repository: '{id}/web', tag: latest}}\n"
        ),
    );
    (candidate, format!("{id}/web:latest"))
}

#[test]
fn update_with_a_failing_check_leaves_latest_where_it_was() {
    let sb = Sandbox::new("upd-fail");
    let (candidate, latest) = update_unit(&sb);
    let update = format!("{}/update", sb.id);
    sb.write("img/app.txt", "good v1\n");
    let out = sb.ok(&["run", &update]);
    assert!(out.contains("passed"), "the test run passed:\n{out}");
    let first = image_id(&latest);
    assert_eq!(first, image_id(&candidate), "latest moved to the candidate");

    sb.write("img/app.txt", "broken v2\n");
    let (stdout, stderr) = sb.fails(&["run", &update], 1);
    let test_run = format!("{}-cand/test:check", sb.id);
    assert!(
        stderr.contains(&format!("`{test_run}`")) && stderr.contains("test runs failed"),
        "the error names the failed test run:\n{stderr}"
    );
    assert!(
        stdout.contains("FAIL"),
        "the failed case is reported:\n{stdout}"
    );
    assert!(
        !stdout.contains("Tagged the image"),
        "the tag order did not run:\n{stdout}"
    );
    assert_ne!(image_id(&candidate), first, "a new candidate was built");
    assert_eq!(image_id(&latest), first, "latest stays where it was");
    // Each test run wrote its own JUnit report, as `dstart run` does.
    let results: Vec<_> = std::fs::read_dir(sb.conf().join("results"))
        .expect("results/")
        .collect();
    assert_eq!(results.len(), 1, "one report for the one test run");
}

#[test]
fn update_with_a_passing_check_moves_latest() {
    let sb = Sandbox::new("upd-pass");
    let (candidate, latest) = update_unit(&sb);
    let update = format!("{}/update", sb.id);
    sb.write("img/app.txt", "good v1\n");
    sb.ok(&["run", &update]);
    let first = image_id(&latest);

    sb.write("img/app.txt", "good v2\n");
    let out = sb.ok(&["run", &update]);
    assert!(out.contains("Tagged the image"), "{out}");
    let second = image_id(&latest);
    assert_ne!(second, first, "latest moved");
    assert_eq!(second, image_id(&candidate), "to the tested candidate");

    // From cron: silent on success, the test runs' lines included.
    sb.write("img/app.txt", "good v3\n");
    let out = sb.dstart(&["-q", "run", &update]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "-q prints nothing"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q prints nothing"
    );
    assert_ne!(image_id(&latest), second, "latest moved again");
}

/// Builds `image` from the base image with `/version` holding `version`.
fn build_app(sb: &Sandbox, image: &str, version: &str) -> String {
    let dockerfile = sb.write(
        &format!("build-{version}/Dockerfile"),
        &format!(
            "FROM {}\nRUN echo {version} > /version\nVOLUME /data\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 2; echo up; while true; do sleep 1; done\"]\n",
            base_image()
        ),
    );
    let dir = dockerfile.parent().expect("build directory");
    docker(&["build", "-q", "-t", image, &dir.display().to_string()]);
    image_id(image)
}

#[test]
fn upgrade_recreates_exactly_the_running_containers_on_the_moved_image() {
    let sb = Sandbox::new("upgrade");
    let id = sb.id.clone();
    let app = format!("{id}/app:latest");
    let other_image = format!("{id}/other:latest");
    build_app(&sb, &app, "v1");
    build_app(&sb, &other_image, "other");
    let (web, other, stopped, b_web) = (
        format!("{id}-web"),
        format!("{id}-other"),
        format!("{id}-stopped"),
        format!("{id}-b-web"),
    );
    let ready = "ready: {log: up, timeout: 30}";
    sb.unit(
        &id,
        "start",
        &format!(
            "{web}: {{image: '{app}'}}\n{other}: {{image: '{other_image}'}}\n{stopped}: {{image: '{app}'}}\n---\n- {web}: {{command: start, {ready}}}\n- {other}: {{command: start}}\n- {stopped}: {{command: start}}\n"
        ),
    );
    sb.unit(
        &id,
        "update",
        "{}\n---\n- host: {command: execute, run: 'true'}\n",
    );
    let b = format!("{id}-b");
    sb.unit(
        &b,
        "start",
        &format!("{b_web}: {{image: '{app}'}}\n---\n- {b_web}: {{command: start, {ready}}}\n"),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    sb.ok(&["run", &format!("{b}/start")]);
    docker(&["stop", "-t", "1", &stopped]);
    docker(&["exec", &web, "sh", "-c", "echo precious > /data/file"]);
    let ids = |names: &[&String]| -> Vec<String> {
        names
            .iter()
            .map(|n| sb.inspect(n, "{{.Id}}").unwrap())
            .collect()
    };
    let all = [&web, &other, &stopped, &b_web];
    let before = ids(&all);

    let v2 = build_app(&sb, &app, "v2");
    let upgrade = format!("{id}/upgrade");
    // The plan says what would happen and changes nothing.
    let plan = sb.ok(&["run", "--plan", &upgrade]);
    for line in [
        format!("recreate {web} (image changed)"),
        format!("keep {other} (image unchanged)"),
        format!("keep {stopped} (not running)"),
        format!("recreate {b_web} (image changed)"),
    ] {
        assert!(plan.contains(&line), "`{line}` in the plan:\n{plan}");
    }
    assert_eq!(ids(&all), before, "--plan changed nothing");

    let out = sb.ok(&["-d", "run", &upgrade]);
    let after = ids(&all);
    assert_ne!(after[0], before[0], "{web} was recreated");
    assert_eq!(after[1], before[1], "{other} (another image) was kept");
    assert_eq!(after[2], before[2], "{stopped} was kept");
    assert_ne!(
        after[3], before[3],
        "{b_web} of the other unit was recreated"
    );
    assert!(!sb.running(&stopped), "the stopped container stays stopped");
    for name in [&web, &b_web] {
        assert!(sb.running(name), "{name} runs again");
        assert_eq!(
            sb.inspect(name, "{{.Image}}").unwrap(),
            v2,
            "{name} runs v2"
        );
        // `ready:` was waited for: the line the container prints after two seconds is there
        // as soon as the upgrade returned.
        let logs = docker(&["logs", name]);
        assert!(logs.lines().any(|l| l == "up"), "{name} was ready: {logs}");
    }
    assert!(
        out.contains(&format!("keep {other} (image unchanged)")),
        "-d names what was kept:\n{out}"
    );
    assert_eq!(
        docker(&["exec", &web, "cat", "/data/file"]),
        "precious",
        "the anonymous volume came along"
    );

    // Nothing moved since: a second upgrade keeps everything.
    sb.ok(&["run", &upgrade]);
    assert_eq!(ids(&all), after, "a second upgrade recreates nothing");
}
