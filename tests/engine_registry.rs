//! Registries as the Docker CLI uses them: credentials from `auths` (written by the real
//! `docker login`) and from a credential helper on PATH, for push and pull against a local
//! registry with htpasswd auth; a wrong password; no credential in any output or file; and
//! the `pull:` policy (`always` recreates a container whose image changed, `never` fails
//! before any order runs, `run --pull` overrides).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use support::{Registry, Sandbox, Tags, base_image, docker, docker_output};

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Builds `image` locally: the base image and a layer of `bytes` random bytes; it says
/// `Success` and ends. The layer names the image, so that no two test runs share it through
/// the build cache (an image ID pushed to two registries cannot be removed by its ID).
fn build_image(image: &str, bytes: usize) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN echo {image} > /name && head -c {bytes} /dev/urandom > /blob\nCMD [\"sh\", \"-c\", \"echo Success\"]\n",
            base_image()
        ),
    )
    .unwrap();
    docker(&[
        "build",
        "-q",
        "-t",
        image,
        &ctx.path().display().to_string(),
    ]);
}

/// `dstart ARGS` with the Docker CLI directory `config`.
fn dstart(sb: &Sandbox, config: &Path, args: &[&str]) -> Output {
    sb.command(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap()
}

#[test]
fn credentials_from_docker_login_push_and_pull_and_never_show() {
    let password = format!("pw-{}-Zq7", std::process::id());
    let registry = Registry::start_with_auth("dstart", &password);
    // Declared before the sandbox, so dropped after it: the containers go before their images.
    let mut tags = Tags(Vec::new());
    let sb = Sandbox::new("regauth");
    let id = sb.id.clone();
    let image = format!("{}/{id}/app:1.0", registry.address());
    tags.0.push(image.clone());
    let config = tempfile::tempdir().unwrap();
    let login = registry.login(config.path(), "dstart", &password);
    assert!(login.status.success(), "{}", text(&login));
    build_image(&image, 100_000);

    let spec = format!("{id}-app:\n  image: '{image}'\n  job: {{logs: [Success], timeout: 30}}\n");
    sb.unit(
        &id,
        "push",
        &format!("{spec}---\n- {id}-app: {{command: push}}\n"),
    );
    sb.unit(
        &id,
        "start",
        &format!("{spec}---\n- {id}-app: {{command: start}}\n"),
    );
    let logs = tempfile::tempdir().unwrap();
    let errfile = logs.path().join("err.log");
    let infofile = logs.path().join("info.log");
    let junit = logs.path().join("junit.xml");
    let loud = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["-v", "-v", "-d", "-l"]
            .iter()
            .map(ToString::to_string)
            .collect();
        args.push(errfile.display().to_string());
        args.push("-i".into());
        args.push(infofile.display().to_string());
        args.extend(extra.iter().map(ToString::to_string));
        args
    };
    let run = |extra: &[&str]| {
        let args = loud(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dstart(&sb, config.path(), &args)
    };

    let mut seen = String::new();
    let out = run(&["run", &format!("{id}/push")]);
    seen.push_str(&text(&out));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        registry
            .get(&format!("/v2/{id}/app/tags/list"))
            .contains("\"1.0\""),
        "pushed"
    );

    // A test run pulls it back (the test copy's image), and writes a JUnit report.
    docker(&["rmi", &image]);
    let out = run(&[
        "run",
        "--junit",
        &junit.display().to_string(),
        &format!("{id}/test:check"),
    ]);
    seen.push_str(&text(&out));
    assert!(out.status.success(), "{}", text(&out));

    // A start pulls it back and creates the container from it.
    docker(&["rmi", &image]);
    let out = run(&["run", &format!("{id}/start")]);
    seen.push_str(&text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let info = std::fs::read_to_string(&infofile).unwrap();
    assert!(
        info.contains(&format!("INFO: Pulling the image {image}"))
            && info.contains(&format!("Successfully pulled the image {image}")),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "DEBUG: Sending the credentials for {} from `auths` of",
            registry.address()
        )),
        "{info}"
    );
    assert!(sb.exists(&format!("{id}-app")));

    // No credential anywhere: output at -v -v -d, the -l and -i files, the JUnit report,
    // the container's labels and environment.
    seen.push_str(&info);
    seen.push_str(&std::fs::read_to_string(&errfile).unwrap_or_default());
    seen.push_str(&std::fs::read_to_string(&junit).unwrap());
    seen.push_str(&docker(&["inspect", &format!("{id}-app")]));
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("dstart:{password}").as_bytes());
    for secret in [password.as_str(), basic.as_str()] {
        assert!(!seen.contains(secret), "`{secret}` shows up:\n{seen}");
    }
}

#[test]
fn a_credential_helper_on_path_is_asked_and_a_wrong_password_is_refused() {
    let registry = Registry::start_with_auth("helped", "helper-Secret-9");
    // Declared before the sandbox, so dropped after it: the containers go before their images.
    let mut tags = Tags(Vec::new());
    let sb = Sandbox::new("reghelper");
    let id = sb.id.clone();
    let image = format!("{}/{id}/helped:1", registry.address());
    tags.0.push(image.clone());
    build_image(&image, 10_000);
    sb.unit(
        &id,
        "push",
        &format!("{id}-h:\n  image: '{image}'\n---\n- {id}-h: {{command: push}}\n"),
    );
    // `build` of a container without a build spec pulls its image when it is missing.
    sb.unit(
        &id,
        "pull",
        &format!("{id}-h:\n  image: '{image}'\n---\n- {id}-h: {{command: build}}\n"),
    );

    // The helper writes down what it was asked for, and answers as the protocol says.
    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let helper = bin.path().join("docker-credential-dstart-it");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> '{}'\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"helped\",\"Secret\":\"helper-Secret-9\"}}' \"$server\"\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"credsStore": "nonexistent-store", "credHelpers": {{"{}": "dstart-it"}}}}"#,
            registry.address()
        ),
    )
    .unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let with_helper = |command: &str| {
        sb.command(&["run", &format!("{id}/{command}")])
            .env("DOCKER_CONFIG", config.path())
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = with_helper("push");
    assert!(out.status.success(), "{}", text(&out));
    docker(&["rmi", &image]);
    let out = with_helper("pull");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        docker_output(&["image", "inspect", &image])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("{0}\n{0}\n", registry.address()),
        "credHelpers of the registry wins over credsStore, asked with the server address"
    );

    // A wrong password in `auths`: exit 1, the registry's refusal, where the credentials
    // came from, and not the password.
    docker(&["rmi", &image]);
    let wrong = base64::engine::general_purpose::STANDARD.encode(b"helped:Wrong-Pass-4");
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{wrong}"}}}}}}"#,
            registry.address()
        ),
    )
    .unwrap();
    let out = dstart(
        &sb,
        config.path(),
        &["-v", "-v", "-d", "run", &format!("{id}/pull")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the image `{image}` of `{id}-h` could not be pulled: pulling `{image}`:"
        )) && stderr.contains("unauthorized"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "hint: the credentials for `{}` came from `auths` of {}; `docker login {}` replaces them",
            registry.address(),
            config.path().join("config.json").display(),
            registry.address()
        )),
        "{stderr}"
    );
    for secret in ["Wrong-Pass-4", wrong.as_str()] {
        assert!(!text(&out).contains(secret), "{}", text(&out));
    }
}

#[test]
fn pull_always_recreates_never_fails_first_and_run_pull_overrides() {
    let registry = Registry::start();
    // Declared before the sandbox, so dropped after it: the containers go before their images.
    let mut tags = Tags(Vec::new());
    let sb = Sandbox::new("pullpolicy");
    let id = sb.id.clone();
    let image = format!("{}/{id}/p:1", registry.address());
    let absent = format!("{}/{id}/absent:1", registry.address());
    tags.0.extend([image.clone(), absent.clone()]);
    build_image(&image, 10_000);
    let old_id = docker(&["image", "inspect", "-f", "{{.Id}}", &image]);
    // Left without a name once the newer image takes it.
    tags.0.push(old_id.clone());
    docker(&["push", &image]);
    let a = format!("{id}-a");
    sb.unit(
        &id,
        "start",
        &format!(
            "{a}:\n  image: '{image}'\n  command: [sleep, '3600']\n  pull: always\n---\n- {a}: {{command: start}}\n"
        ),
    );
    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(out.contains(&format!("Pulling the image {image}")), "{out}");
    let first = sb.inspect(&a, "{{.Id}}").unwrap();

    // The registry gets a new image under the same name; the engine still has the old one.
    build_image(&image, 20_000);
    docker(&["push", &image]);
    docker(&["tag", &old_id, &image]);
    let out = sb.ok(&["-d", "run", &format!("{id}/start")]);
    let second = sb.inspect(&a, "{{.Id}}").unwrap();
    assert_ne!(first, second, "recreated after the pull: {out}");
    assert_ne!(
        sb.inspect(&a, "{{.Image}}").unwrap(),
        old_id,
        "from the new image"
    );
    assert!(sb.running(&a));
    // --pull missing: the image is there, nothing is pulled, the container is kept.
    let out = sb.ok(&["run", "--pull", "missing", &format!("{id}/start")]);
    assert!(!out.contains("Pulling the image"), "{out}");
    assert_eq!(sb.inspect(&a, "{{.Id}}").unwrap(), second);

    // `pull: never` and a missing image: nothing runs, not even the order before it.
    let first_c = format!("{id}-first");
    let b = format!("{id}-b");
    sb.unit(
        &id,
        "never",
        &format!(
            "{first_c}:\n  image: {}\n{b}:\n  image: '{absent}'\n  pull: never\n---\n- {first_c}: {{command: create}}\n- {b}: {{command: create}}\n",
            base_image()
        ),
    );
    let (_, stderr) = sb.fails(&["run", &format!("{id}/never")], 1);
    assert_eq!(
        stderr,
        format!(
            "error: `pull: never` and not on the engine: `{absent}` (container `{b}`); no order ran\nhint: load or build the image first, or run with `--pull missing`\n"
        )
    );
    assert!(!sb.exists(&first_c), "no order ran");
    // `run --pull never` overrides `pull: always` the same way.
    docker(&["rm", "-f", &a]);
    docker(&["rmi", &image]);
    let (_, stderr) = sb.fails(&["run", "--pull", "never", &format!("{id}/start")], 1);
    assert!(
        stderr.contains(&format!("`{image}` (container `{a}`)")),
        "{stderr}"
    );
}

#[test]
fn an_unknown_pull_policy_is_a_configuration_error() {
    let sb = Sandbox::new("pullbad");
    let id = sb.id.clone();
    let file = sb.unit(
        &id,
        "start",
        &format!(
            "{id}-a:\n  image: {}\n  pull: sometimes\n---\n- {id}-a: {{command: start}}\n",
            base_image()
        ),
    );
    let (_, stderr) = sb.fails(&["run", "--print-unit", &format!("{id}/start")], 2);
    assert!(
        stderr.starts_with(&format!("error: {}:3:", file.display()))
            && stderr.contains("pull")
            && stderr.contains("`missing`, `always`, `never`"),
        "{stderr}"
    );
}
