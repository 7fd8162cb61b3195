//! Images that follow their sources, against the real engine: the `dstart.build-hash` label,
//! rebuilds exactly when an input changed, `start` recreating a container whose image was
//! rebuilt (its anonymous volume carried over), `--no-cache`, and `BUILD_KEEP` retention.

mod support;

use support::{Sandbox, base_image, docker};

/// The engine's image events between `since` and now that name `repo`.
fn image_events(since: f64, repo: &str) -> Vec<String> {
    support::events(
        since,
        support::epoch_now(),
        &["type=image"],
        "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    )
    .into_iter()
    .filter(|l| l.contains(repo))
    .collect()
}

/// A build directory `img` (an app file, a `.dockerignore` leaving out `*.log`, a `VOLUME`)
/// and a unit `start` that starts a container from it. Returns (container, image).
fn app(sb: &Sandbox) -> (String, String) {
    let id = &sb.id;
    sb.write(
        "img/Dockerfile",
        &format!(
            "FROM {}\nCOPY app.txt /app.txt\nVOLUME /data\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
            base_image()
        ),
    );
    sb.write("img/.dockerignore", "*.log\n");
    sb.write("img/app.txt", "v1\n");
    sb.write("img/debug.log", "noise\n");
    let name = format!("{id}-app");
    let image = format!("{id}/app:latest");
    sb.unit(
        id,
        "start",
        &format!(
            "{name}:\n  build: {{path: img, tag: '{image}'}}\n---\n- {name}: {{command: start}}\n"
        ),
    );
    (name, image)
}

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", image])
}

#[test]
fn an_edited_app_file_rebuilds_and_recreates_keeping_volume_data() {
    let sb = Sandbox::new("rebuild");
    let id = sb.id.clone();
    let (name, image) = app(&sb);
    let start = format!("{id}/start");
    sb.ok(&["run", &start]);
    let hash = docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"dstart.build-hash\"}}",
        &image,
    ]);
    assert!(
        hash.starts_with("sha256:") && hash.len() == 71,
        "the image carries its build hash: {hash}"
    );
    let first_image = image_id(&image);
    let first = sb.inspect(&name, "{{.Id}}").unwrap();
    docker(&["exec", &name, "sh", "-c", "echo precious > /data/file"]);

    // Unchanged, and then a change of a file that `.dockerignore` leaves out: no build.
    for change in [None, Some("img/debug.log")] {
        if let Some(rel) = change {
            sb.write(rel, "other noise\n");
        }
        let since = support::epoch_now();
        let out = sb.ok(&["-d", "run", &start]);
        assert!(
            out.contains(&format!(
                "The image {image} is up to date with its build directory (skipped)"
            )),
            "{change:?}: {out}"
        );
        assert_eq!(image_events(since, &id), Vec::<String>::new(), "{out}");
        assert_eq!(image_id(&image), first_image);
        assert_eq!(sb.inspect(&name, "{{.Id}}").unwrap(), first);
    }

    // An edited app file: a new image, and the container recreated from it.
    sb.write("img/app.txt", "v2\n");
    let out = sb.ok(&["-d", "run", &start]);
    assert!(
        out.contains(&format!(
            "Building because the inputs of the image {image} changed"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Recreated container {name} because its image `{image}` changed"
        )),
        "{out}"
    );
    assert_ne!(image_id(&image), first_image);
    assert_ne!(sb.inspect(&name, "{{.Id}}").unwrap(), first);
    assert!(sb.running(&name));
    assert_eq!(docker(&["exec", &name, "cat", "/app.txt"]), "v2");
    assert_eq!(docker(&["exec", &name, "cat", "/data/file"]), "precious");

    // `--no-cache` rebuilds although nothing changed, without the engine's cache.
    let second_image = image_id(&image);
    let out = sb.ok(&["-d", "run", "--no-cache", &start]);
    assert!(
        out.contains(&format!(
            "--no-cache rebuilds the image {image} without the engine's cache"
        )),
        "{out}"
    );
    assert!(!out.contains("Using cache"), "{out}");
    assert_ne!(image_id(&image), second_image);
}

#[test]
fn a_rendered_dockerfile_change_rebuilds() {
    let sb = Sandbox::new("rendered");
    let id = sb.id.clone();
    sb.write(
        "environments/site.yaml",
        &format!("BASE: {}\nGREETING: one\n", base_image()),
    );
    sb.write(
        "img/Dockerfile.tera",
        "FROM {{ BASE }}\nRUN echo {{ GREETING }} > /greeting\n",
    );
    let image = format!("{id}/t:latest");
    sb.unit(
        &id,
        "build",
        &format!(
            "{id}-t:\n  build: {{path: img, tag: '{image}'}}\n---\n- {id}-t: {{command: build}}\n"
        ),
    );
    sb.ok(&["run", &format!("{id}/build")]);
    let first = image_id(&image);
    let out = sb.ok(&["-d", "run", &format!("{id}/build")]);
    assert!(out.contains("is up to date"), "{out}");
    assert_eq!(image_id(&image), first);
    sb.write(
        "environments/site.yaml",
        &format!("BASE: {}\nGREETING: two\n", base_image()),
    );
    let out = sb.ok(&["run", &format!("{id}/build")]);
    assert!(
        out.contains(&format!("Successfully built the image {image}")),
        "{out}"
    );
    assert_ne!(image_id(&image), first);
}

#[test]
fn retention_keeps_three_and_never_an_image_in_use() {
    let sb = Sandbox::new("keep");
    let id = sb.id.clone();
    sb.write(
        "img/Dockerfile",
        &format!("FROM {}\nCOPY app.txt /app.txt\n", base_image()),
    );
    let image = format!("{id}/kept:latest");
    sb.unit(
        &id,
        "build",
        &format!(
            "{id}-k:\n  build: {{path: img, tag: '{image}'}}\n---\n- {id}-k: {{command: build}}\n"
        ),
    );
    let mut ids = Vec::new();
    let mut outs = String::new();
    for version in 1..=6 {
        sb.write("img/app.txt", &format!("v{version}\n"));
        // The engine's image times are in seconds: one build per second keeps their order.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        outs.push_str(&sb.ok(&["run", &format!("{id}/build")]));
        ids.push(image_id(&image));
        if version == 1 {
            // A container uses the first build; no retention may remove it.
            docker(&["create", "--name", &format!("{id}-user"), &ids[0], "true"]);
        }
    }
    let exists = |i: &str| {
        support::docker_output(&["image", "inspect", i])
            .status
            .success()
    };
    let kept: Vec<bool> = ids.iter().map(|i| exists(i)).collect();
    assert_eq!(
        kept,
        [true, false, false, true, true, true],
        "the used one and the newest three: {outs}"
    );
    for removed in &ids[1..3] {
        let short = &removed.trim_start_matches("sha256:")[..12];
        assert!(
            outs.contains(&format!(
                "Removed the old build {short} of {id}/kept (BUILD_KEEP is 3)"
            )),
            "{short}: {outs}"
        );
    }

    // `BUILD_KEEP: 1` keeps only the current image (and the one in use).
    sb.write("environments/keep.yaml", "BUILD_KEEP: 1\n");
    sb.write("img/app.txt", "v7\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.ok(&["run", &format!("{id}/build")]);
    let kept: Vec<bool> = ids.iter().map(|i| exists(i)).collect();
    assert_eq!(kept, [true, false, false, false, false, false]);
    assert!(exists(&image));

    // A bad value stops the run before the engine is asked anything, naming the file.
    sb.write("environments/keep.yaml", "# keep\nBUILD_KEEP: many\n");
    let (_, err) = sb.fails(&["run", &format!("{id}/build")], 2);
    assert!(
        err.contains("`BUILD_KEEP` must be a non-negative integer, found `many`"),
        "{err}"
    );
    assert!(err.contains("keep.yaml:2"), "{err}");
}
