//! Image orders against the real engine: tag, commit, push to a local registry.

mod support;

use support::{Registry, Sandbox, Tags, base_image, docker};

#[test]
fn build_tag_and_push_to_a_local_registry() {
    let registry = Registry::start();
    let sb = Sandbox::new("push");
    let id = sb.id.clone();
    let remote = format!("127.0.0.1:{}/{id}/app", registry.port);
    let _tags = Tags(vec![format!("{remote}:1.0")]);
    sb.write(
        "img/Dockerfile",
        &format!("FROM {}\nRUN echo pushed > /pushed\n", base_image()),
    );
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-app:\n  build: {{path: img, tag: '{id}/app:1.0'}}\n---\n- {id}-app: {{command: build}}\n- {id}-app: {{command: tag, repository: '{remote}', tag: '1.0'}}\n- {id}-app: {{command: push, repository: '{remote}', tag: '1.0'}}\n"
        ),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("Pushed the image {remote}:1.0")),
        "{out}"
    );
    assert!(
        out.contains(&format!("INFO: The push refers to repository [{remote}]")),
        "push progress shows at -v: {out}"
    );
    let tags = registry.get(&format!("/v2/{id}/app/tags/list"));
    assert!(
        tags.contains("\"1.0\""),
        "the registry lists the tag: {tags}"
    );
    let manifest = registry.get(&format!("/v2/{id}/app/manifests/1.0"));
    assert!(
        manifest.contains("layers") || manifest.contains("fsLayers"),
        "{manifest}"
    );
}

#[test]
fn pull_shows_progress_at_v_without_repeats() {
    let registry = Registry::start();
    let sb = Sandbox::new("pull");
    let id = sb.id.clone();
    let remote = format!("127.0.0.1:{}/{id}/pulled:1.0", registry.port);
    let _tags = Tags(vec![remote.clone()]);
    // A layer of its own, so that the pull downloads something.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN head -c 4000000 /dev/urandom > /blob\n",
            base_image()
        ),
    )
    .unwrap();
    docker(&[
        "build",
        "-q",
        "-t",
        &remote,
        &ctx.path().display().to_string(),
    ]);
    docker(&["push", &remote]);
    docker(&["rmi", &remote]);
    sb.unit(
        &id,
        "start",
        &format!("{id}-p:\n  image: '{remote}'\n---\n- {id}-p: {{command: build}}\n"),
    );
    let out = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("Successfully pulled the image {remote}")),
        "{out}"
    );
    assert!(
        out.contains("Pulling fs layer"),
        "pull progress at -v: {out}"
    );
    let progress: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(": INFO: ").map(|(_, m)| m))
        .filter(|m| m.starts_with('('))
        .collect();
    assert!(!progress.is_empty(), "layer lines: {out}");
    for pair in progress.windows(2) {
        let status = |m: &str| m.split(": ").next().unwrap_or(m).to_string();
        assert_ne!(status(pair[0]), status(pair[1]), "a repeat at -v: {out}");
    }
}

#[test]
fn commit_makes_an_image_from_a_container() {
    let sb = Sandbox::new("commit");
    let id = sb.id.clone();
    sb.unit(
        &id,
        "start",
        &format!(
            "{id}-c:\n  image: {base}\n  command: [\"sh\", \"-c\", \"echo state > /state\"]\n---\n- {id}-c: {{command: start, attach: true}}\n- {id}-c: {{command: commit, repository: '{id}/snapshot', tag: v1, message: nightly}}\n",
            base = base_image()
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    let out = docker(&["run", "--rm", &format!("{id}/snapshot:v1"), "cat", "/state"]);
    assert_eq!(out, "state");
    assert_eq!(
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Comment}}",
            &format!("{id}/snapshot:v1")
        ]),
        "nightly"
    );
}

/// A build directory `img` with the Dockerfile template `template`, a `.dockerignore` that
/// keeps `secret.txt` out, and a unit that builds and runs the image, printing what it holds.
fn templated_build(sb: &Sandbox, template: &str) -> String {
    let id = &sb.id;
    sb.write(
        "environments/site.yaml",
        &format!("BASE: {}\nGREETING: rendered-{id}\n", base_image()),
    );
    sb.write(
        &format!("img/{template}"),
        "FROM {{ BASE }}\nRUN echo '{{ GREETING }} for {{ CONTAINER }}' > /greeting\nCOPY . /ctx/\n",
    );
    sb.write("img/.dockerignore", "secret.txt\n");
    sb.write("img/kept.txt", "kept\n");
    sb.write("img/secret.txt", "secret\n");
    let image = format!("{id}/templated:latest");
    sb.unit(
        id,
        "start",
        &format!(
            "{id}-t:\n  build: {{path: img, tag: '{image}'}}\n---\n- {id}-t: {{command: build}}\n"
        ),
    );
    sb.ok(&["run", &format!("{id}/start")]);
    image
}

/// The image of [`templated_build`] holds the rendered greeting and the context without the
/// ignored file and without the template.
fn assert_rendered_without_ignored(sb: &Sandbox, image: &str, template: &str) {
    let id = &sb.id;
    assert_eq!(
        docker(&["run", "--rm", image, "cat", "/greeting"]),
        format!("rendered-{id} for {id}-t")
    );
    let files = docker(&["run", "--rm", image, "ls", "-a", "/ctx"]);
    let files: Vec<&str> = files.lines().collect();
    assert!(files.contains(&"kept.txt"), "{files:?}");
    assert!(
        !files.contains(&"secret.txt"),
        ".dockerignore keeps it out of the context: {files:?}"
    );
    assert!(
        !files.contains(&template),
        "the template is not sent: {files:?}"
    );
}

#[test]
fn dockerfile_tera_is_rendered_and_dockerignore_keeps_a_file_out() {
    let sb = Sandbox::new("tera");
    let image = templated_build(&sb, "Dockerfile.tera");
    assert_rendered_without_ignored(&sb, &image, "Dockerfile.tera");
}

#[test]
fn dockerfile_j2_is_rendered_and_dockerignore_keeps_a_file_out() {
    let sb = Sandbox::new("jinja");
    let image = templated_build(&sb, "Dockerfile.j2");
    assert_rendered_without_ignored(&sb, &image, "Dockerfile.j2");
}

#[test]
fn build_output_shows_at_v_and_not_without() {
    let sb = Sandbox::new("buildv");
    let id = sb.id.clone();
    // The shell computes the line, so the step's own text ("RUN echo ...") does not contain it.
    sb.write(
        "img/Dockerfile",
        &format!("FROM {}\nRUN echo build-says-$((40 + 2))\n", base_image()),
    );
    sb.unit(
        &id,
        "start",
        &format!("{id}-b:\n  build: {{path: img, tag: '{id}/b', nocache: true}}\n---\n- {id}-b: {{command: build}}\n"),
    );
    let quiet = sb.ok(&["run", &format!("{id}/start")]);
    assert!(quiet.contains("Successfully built the image"), "{quiet}");
    assert!(!quiet.contains("build-says-42"), "{quiet}");
    assert!(!quiet.contains("Step 1/"), "{quiet}");

    docker(&["rmi", &format!("{id}/b")]);
    let verbose = sb.ok(&["-v", "run", &format!("{id}/start")]);
    assert!(verbose.contains("INFO: build-says-42"), "{verbose}");
    assert!(verbose.contains("INFO: Step 1/"), "{verbose}");
}
