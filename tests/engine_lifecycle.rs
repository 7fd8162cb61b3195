//! A unit's lifecycle against the real engine: build, create, start, stop, cleanup, purge.

mod support;

use support::{Sandbox, base_image, docker_output};

/// A unit with a data container built from a local Dockerfile and a web server using its volume.
fn web_unit(sb: &Sandbox) {
    let id = &sb.id;
    sb.write(
        "img/data/Dockerfile",
        &format!(
            "FROM {}\nRUN mkdir -p /var/www && echo hello-{id} > /var/www/index.html\nVOLUME /var/www\nCMD [\"true\"]\n",
            base_image()
        ),
    );
    sb.unit(
        id,
        "start",
        &format!(
            r#"{id}-data:
  build: {{path: img/data, tag: "{id}/data:latest"}}
{id}-web:
  image: {base}
  command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
  startup: {{volumes_from: {id}-data}}
---
- {id}-data: {{command: create}}
- {id}-web: {{command: start}}
"#,
            base = base_image()
        ),
    );
}

#[test]
fn lifecycle_from_build_to_purge() {
    let sb = Sandbox::new("life");
    web_unit(&sb);
    let id = sb.id.clone();
    let data = format!("{id}-data");
    let web = format!("{id}-web");

    let out = sb.ok(&["run", &format!("{id}/start")]);
    assert!(
        out.contains(&format!("Successfully built the image {id}/data:latest")),
        "{out}"
    );
    assert!(sb.exists(&data));
    assert!(sb.running(&web));
    assert_eq!(
        sb.inspect(&web, "{{.Config.Labels}}")
            .map(|l| l.contains(&format!("dstart.unit:{id}"))),
        Some(true)
    );
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_some(),
        "the unit network exists"
    );

    sb.ok(&["run", &format!("{id}/stop")]);
    assert!(!sb.running(&web));

    let out = sb.ok(&["run", &format!("{id}/cleanup")]);
    assert!(!sb.exists(&web), "cleanup removes the web server");
    assert!(sb.exists(&data), "cleanup keeps the data container: {out}");
    assert!(
        out.contains(&format!(
            "Not removing container {data} as it has volumes attached to it."
        )),
        "{out}"
    );

    sb.ok(&["run", &format!("{id}/purge")]);
    assert!(!sb.exists(&data));
    assert!(
        !docker_output(&["image", "inspect", &format!("{id}/data:latest")])
            .status
            .success(),
        "purge removes built images"
    );
    assert!(
        sb.inspect(&format!("dstart-{id}"), "{{.Name}}").is_none(),
        "purge removes the unit network"
    );
}

#[test]
fn second_start_changes_nothing() {
    let sb = Sandbox::new("idem");
    web_unit(&sb);
    let id = sb.id.clone();
    sb.ok(&["run", &format!("{id}/start")]);
    let before = sb.inspect(&format!("{id}-web"), "{{.Id}} {{.State.StartedAt}}");
    let out = sb.ok(&["-d", "run", &format!("{id}/start")]);
    assert!(!out.contains("Started container"), "{out}");
    assert!(!out.contains("Successfully created"), "{out}");
    assert!(out.contains("is already started. (skipped)"), "{out}");
    assert_eq!(
        sb.inspect(&format!("{id}-web"), "{{.Id}} {{.State.StartedAt}}"),
        before
    );
}
