//! `dstart export`: golden Compose files of conf-example and the test fixtures (needs no
//! engine), each of which Debian's docker-compose 1.29 (`config -q`) and the Docker CLI's own
//! Compose loader (`docker stack config`, what `docker stack deploy` reads) accept unchanged.
//!
//! The golden files live in `tests/fixtures/export/`. An export holds absolute paths (binds,
//! build contexts) under the configuration directory, a temporary copy here; the golden file
//! holds `${DSTART_EXPORT_CONF}` there instead, which Compose fills in from the environment
//! when it reads the golden file. `DSTART_BLESS=1 cargo test --test cli_export` rewrites them.

// Not every helper of the harness is used here.
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;

/// The placeholder of the configuration directory in the golden files.
const CONF_VAR: &str = "DSTART_EXPORT_CONF";

/// (golden file, fixture under tests/fixtures, arguments of `export`)
const GOLDENS: [(&str, &str, &[&str]); 7] = [
    ("example-web.yml", "../../conf-example", &["web"]),
    ("basic-gen.yml", "basic", &["gen"]),
    ("basic-over.yml", "basic", &["over/start"]),
    ("basic-flat.yml", "basic", &["flat"]),
    ("modes-web-full.yml", "modes", &["web/start:full"]),
    ("shop.yml", "export/conf", &["shop"]),
    ("shop-restart.yml", "export/conf", &["shop/restart"]),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export")
}

/// The export of `args` on a copy of `fixture`, with its configuration directory as
/// `${DSTART_EXPORT_CONF}`, and the copy (which Compose reads the build contexts from).
fn export(fixture: &str, args: &[&str]) -> (String, Env) {
    let env = Env::fixture(fixture);
    let mut full = vec!["export"];
    full.extend_from_slice(args);
    let out = env.dstart(&full).ok();
    let conf = env.conf().display().to_string();
    (out.replace(&conf, &format!("${{{CONF_VAR}}}")), env)
}

/// Runs `program args` with `DSTART_EXPORT_CONF` set; panics with its output unless it
/// succeeds.
fn accepts(program: &str, args: &[&str], conf: &Path) {
    let out = Command::new(program)
        .args(args)
        .env(CONF_VAR, conf)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (Debian: apt-get install docker-compose): {e}"));
    assert!(
        out.status.success(),
        "{program} {} refused it:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exports_match_the_golden_files() {
    let bless = std::env::var_os("DSTART_BLESS").is_some();
    for (file, fixture, args) in GOLDENS {
        let (text, _env) = export(fixture, args);
        // The secret files of export/conf say this: an export names their paths only.
        assert!(
            !text.contains("not-in-any-export"),
            "{file}: a secret file's content"
        );
        let path = golden_dir().join(file);
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} ({e}); DSTART_BLESS=1 writes it", path.display()));
        assert_eq!(
            text, golden,
            "the export of {args:?} differs from {file}; DSTART_BLESS=1 rewrites it"
        );
    }
}

#[test]
fn every_golden_file_is_exported_by_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            Path::new(&name)
                .extension()
                .is_some_and(|x| x == "yml")
                .then_some(name)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = GOLDENS.iter().map(|g| g.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn compose_and_the_docker_cli_accept_every_golden_file_unchanged() {
    for (file, fixture, _) in GOLDENS {
        // The build contexts must exist: a copy of the fixture is the configuration directory.
        let env = Env::fixture(fixture);
        let path = golden_dir().join(file);
        let path = path.to_str().unwrap();
        accepts("docker-compose", &["-f", path, "config", "-q"], &env.conf());
        accepts("docker", &["stack", "config", "-c", path], &env.conf());
    }
}

#[test]
fn secrets_are_references_never_values() {
    let env = Env::fixture("export/conf");
    let out = env.dstart(&["export", "shop"]).output();
    out.expect_code(0);
    for secret in ["s3cret-pass", "tok-12345"] {
        assert!(!out.stdout.contains(secret), "{secret} in:\n{}", out.stdout);
        assert!(!out.stderr.contains(secret));
    }
    // The comment names orders as written, their secrets masked; the file itself holds none.
    let masked: Vec<&str> = out.stdout.lines().filter(|l| l.contains("***")).collect();
    assert_eq!(masked.len(), 1, "{masked:?}");
    assert!(masked[0].starts_with("#     - `app: "), "{masked:?}");
    let doc = common::yaml(&out.stdout);
    let services = &doc["services"];
    assert_eq!(
        services["db"]["environment"]["DB_PASSWORD"],
        "${DB_PASSWORD}"
    );
    assert_eq!(services["app"]["environment"]["API_TOKEN"], "${API_TOKEN}");
    assert_eq!(
        services["app"]["build"]["args"]["API_TOKEN"],
        "${API_TOKEN}"
    );
    // A secret inside another value (a command) is a reference as well.
    assert_eq!(
        services["app"]["command"][0],
        "exec httpd -f -p 8080 # token ${API_TOKEN}"
    );
    // A `$` of the unit is not Compose's: it is doubled.
    assert_eq!(services["db"]["environment"]["PRICE"], "costs $$5");
    assert!(
        out.stdout.contains(
            "# Secrets are not written here: set these in the environment of docker-compose\n# or docker stack deploy: DB_PASSWORD, API_TOKEN\n"
        ),
        "{}",
        out.stdout
    );
    // Compose fills them in from its environment.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yml");
    std::fs::write(&file, &out.stdout).unwrap();
    let config = Command::new("docker-compose")
        .args(["-f", file.to_str().unwrap(), "config"])
        .env("DB_PASSWORD", "from-the-environment")
        .env("API_TOKEN", "token-of-the-environment")
        .output()
        .unwrap();
    assert!(config.status.success(), "{config:?}");
    let resolved = String::from_utf8_lossy(&config.stdout);
    assert!(
        resolved.contains("DB_PASSWORD: from-the-environment"),
        "{resolved}"
    );
    assert!(resolved.contains("PRICE: costs $$5"), "{resolved}");
}

#[test]
fn output_file_is_the_same_text_as_stdout() {
    let env = Env::fixture("export/conf");
    let stdout = env.dstart(&["export", "shop"]).ok();
    let out = env.dstart(&["export", "-o", "shop.yml", "shop"]).ok();
    assert_eq!(out, "");
    assert_eq!(env.read("shop.yml"), stdout);
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    let file = env.root().join("shop.yml");
    assert_eq!(mode(&file), 0o644);
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // Written again over an existing file, with no temporary file left beside it.
    env.dstart(&["export", "--format", "compose", "-o", "shop.yml", "shop"])
        .ok();
    assert_eq!(env.read("shop.yml"), stdout);
    assert_eq!(mode(&file), 0o600, "the file keeps its mode");
    let names: Vec<String> = std::fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with(".tmp")).count(),
        0,
        "{names:?}"
    );
}

#[test]
fn a_command_selects_the_containers_its_start_orders_start() {
    let env = Env::fixture("modes");
    let all = common::yaml(&env.dstart(&["export", "web/start:full"]).ok());
    let keys = |doc: &serde_yaml_ng::Value| -> Vec<String> {
        doc["services"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&all), ["db", "cache", "web", "admin"]);
    let minimal = common::yaml(&env.dstart(&["export", "web/start:minimal"]).ok());
    assert_eq!(keys(&minimal), ["db", "web"]);
    assert_eq!(minimal["services"]["web"]["depends_on"][0], "db");
    // Each service depends on those the step before started.
    assert_eq!(all["services"]["web"]["depends_on"][0], "cache");
    assert!(all["services"]["db"].get("depends_on").is_none());
}

#[test]
fn what_cannot_be_exported_is_an_error_that_says_why() {
    let env = Env::fixture("export/conf");
    let err = env.dstart(&["export", "shop/stop"]).fails();
    assert!(err.contains("`shop/stop` starts no container"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    let err = env.dstart(&["export", "shop/test"]).fails();
    assert!(err.contains("test run"), "{err}");
    let err = env.dstart(&["export", "nope"]).fails();
    assert!(err.contains("nope"), "{err}");
    let err = env.dstart(&["export", "shop/nope"]).fails();
    assert!(err.contains("nope"), "{err}");
    let err = env.dstart(&["export", "--format", "helm", "shop"]).output();
    err.expect_code(2);
}
