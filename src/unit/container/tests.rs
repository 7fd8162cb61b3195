//! Container specs in both written forms, normalized, and the errors of bad ones.

use super::*;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::config::source::Source;

fn spec(yaml: &str) -> Result<ContainerSpec, ConfigError> {
    spec_with_raw(yaml).map(|(s, _, _)| s)
}

/// The spec of container `web` written as `yaml`, with its written value and origin.
pub(crate) fn spec_with_raw(
    yaml: &str,
) -> Result<(ContainerSpec, serde_yaml_ng::Value, Origin), ConfigError> {
    let text = format!(
        "web:\n{}",
        yaml.lines().fold(String::new(), |mut acc, l| {
            let _ = writeln!(acc, "  {l}");
            acc
        })
    );
    let source = Arc::new(Source::new("units/t/start.yaml", text));
    let docs = source.documents().unwrap();
    let value = docs[0].get("web").unwrap().clone();
    let origin = Origin::new(
        source,
        0,
        vec![crate::config::source::PathSeg::Key("web".into())],
    );
    container_from_value("web", &value, &origin).map(|s| (s, value, origin))
}

#[test]
fn compose_keys_normalize() {
    let s = spec(
        "image: busybox\ncommand: httpd -f -p 80\nenv: {A: 1, B: x}\nports: ['6379', '8080:80', '127.0.0.1:8081:81/udp']\nvolumes: ['/opt:/data:ro', 'named:/n', '/anon', './rel:/rel']\nlabels: {a: b}\nworking_dir: /w\nuser: 1000\n",
    )
    .unwrap();
    assert_eq!(s.image.as_deref(), Some("busybox"));
    assert_eq!(s.command.as_ref().unwrap(), &["httpd", "-f", "-p", "80"]);
    assert_eq!(
        s.env,
        vec![("A".into(), "1".into()), ("B".into(), "x".into())]
    );
    assert_eq!(s.ports[0].host_port, None);
    assert_eq!(s.ports[1].host_port, Some(8080));
    assert_eq!(s.ports[2].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(s.ports[2].protocol, "udp");
    assert_eq!(
        s.mounts,
        vec![
            MountSpec::Bind {
                host: "/opt".into(),
                container: "/data".into(),
                read_only: true
            },
            MountSpec::Named {
                name: "named".into(),
                container: "/n".into(),
                read_only: false
            },
            MountSpec::Anonymous {
                container: "/anon".into()
            },
            MountSpec::Bind {
                host: "./rel".into(),
                container: "/rel".into(),
                read_only: false
            },
        ]
    );
    assert_eq!(s.user.as_deref(), Some("1000"));
}

#[test]
fn docker_py_keys_normalize() {
    let s = spec(
        "build: {path: services/web, tag: me/web}\ncreation:\n  volumes: [/home/git/.ssh, /data]\n  environment: [A=1]\nstartup:\n  volumes_from: git_repos\n  port_bindings: {22: 2022, '80': null}\n  binds:\n    ${CONFIG_DIR}/etc: {bind: /data, ro: false}\n  links: {db: database}\n  restart_policy: {Name: always}\n",
    )
    .unwrap();
    assert_eq!(s.image.as_deref(), Some("me/web"));
    assert!(s.build.as_ref().unwrap().rm);
    assert_eq!(s.ports.len(), 2);
    assert_eq!(s.ports[0].container_port, 22);
    assert_eq!(s.ports[0].host_port, Some(2022));
    assert_eq!(s.ports[1].host_port, None);
    // /data is a bind target, so only /home/git/.ssh is an anonymous volume.
    assert_eq!(s.volume_paths(), vec!["/home/git/.ssh".to_string()]);
    assert_eq!(s.host.volumes_from, vec!["git_repos".to_string()]);
    assert_eq!(
        s.dependencies(),
        vec!["git_repos".to_string(), "db".to_string()]
    );
    assert_eq!(s.env, vec![("A".into(), "1".into())]);
}

#[test]
fn unknown_key_names_key_line_and_accepted_keys() {
    let err = spec("image: busybox\nstartup:\n  restrat_policy: {}\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("units/t/start.yaml:4:5:"), "{err}");
    assert!(
        err.contains("`startup.restrat_policy`: unknown key `restrat_policy`"),
        "{err}"
    );
    assert!(err.contains("restart_policy"), "{err}");
}

#[test]
fn conflicting_keys_are_errors() {
    let err = spec("image: a\ncreation: {image: b}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("both `image` and `creation.image`"), "{err}");
    let err = spec("build: {path: x, tag: a}\nimage: b\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`build.tag` is `a` but the image is `b`"),
        "{err}"
    );
    let err = spec("image: a\nports: ['80']\nstartup: {port_bindings: {80: 1}}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("published by both"), "{err}");
}

#[test]
fn wrong_type_names_key() {
    let err = spec("image: a\ncreation: {tty: sometimes}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`creation.tty`"), "{err}");
    assert!(err.starts_with("units/t/start.yaml:3:"), "{err}");
}

#[test]
fn reserved_labels_and_bad_ports() {
    assert!(
        spec("image: a\nlabels: {dstart.unit: x}\n")
            .unwrap_err()
            .to_string()
            .contains("reserved")
    );
    assert!(
        spec("image: a\nports: ['99999']\n")
            .unwrap_err()
            .to_string()
            .contains("not a port number")
    );
    assert!(
        spec("image: a\nvolumes: ['data']\n")
            .unwrap_err()
            .to_string()
            .contains("must be absolute")
    );
}

#[test]
fn port_and_image_helpers() {
    assert_eq!(parse_port("127.0.0.1::80").unwrap().host_port, None);
    assert_eq!(
        with_default_tag("registry:5000/img"),
        "registry:5000/img:latest"
    );
    assert_eq!(with_default_tag("img:1"), "img:1");
    assert_eq!(
        split_image("registry:5000/img"),
        ("registry:5000/img".into(), "latest".into())
    );
    assert_eq!(split_image("a/b:2"), ("a/b".into(), "2".into()));
}

#[test]
fn stop_timeout_is_checked_seconds() {
    let ok: [(&str, u32); 5] = [
        ("", DEFAULT_STOP_TIMEOUT),
        ("stop_timeout: 0\n", 0),
        ("stop_timeout: 30\n", 30),
        ("stop_timeout: 2.5\n", 3),
        ("stop_timeout: 600\n", 600),
    ];
    for (yaml, seconds) in ok {
        let s = spec(&format!("image: busybox\n{yaml}")).unwrap();
        assert_eq!(s.stop_timeout, seconds, "{yaml}");
    }
    for bad in ["-1", ".nan", ".inf", "-.inf", "soon", "[1]"] {
        let err = spec(&format!("image: busybox\nstop_timeout: {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("units/t/start.yaml:3:"), "{bad}: {err}");
        assert!(err.contains("stop_timeout"), "{bad}: {err}");
    }
}

#[test]
fn secrets_are_read_only_binds_at_run_secrets() {
    let s = spec("image: x\nsecrets: {db_password: secrets/db.txt}\n").unwrap();
    assert_eq!(s.secrets[0].target(), "/run/secrets/db_password");
    assert_eq!(
        s.mounts.last(),
        Some(&MountSpec::Bind {
            host: "secrets/db.txt".into(),
            container: "/run/secrets/db_password".into(),
            read_only: true,
        })
    );
    assert!(s.is_secret_path("/run/secrets/db_password"));
    for (yaml, want) in [
        ("secrets: {'a/b': f}\n", "`a/b` is not a secret name"),
        ("secrets: {.hidden: f}\n", "`.hidden` is not a secret name"),
        ("secrets: {pw: ''}\n", "the file is empty"),
        (
            "volumes: ['/x:/run/secrets/pw']\nsecrets: {pw: f}\n",
            "mounted at `/run/secrets/pw` already",
        ),
    ] {
        let err = spec(&format!("image: x\n{yaml}")).unwrap_err();
        let text = crate::error::render(&err.into());
        assert!(text.contains(want), "{yaml}: {text}");
        assert!(text.contains("units/t/start.yaml:"), "{yaml}: {text}");
    }
}
