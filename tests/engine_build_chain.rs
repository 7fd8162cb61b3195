//! Build chains against the real engine: `dstart build` builds a base before the images built
//! `FROM` it (also across units), rebuilds the dependents when the base changes, asks the
//! engine nothing to build when nothing changed, does not attempt a dependent of a failed
//! base, builds independent images concurrently and pushes what it built; `run UNIT/start`
//! builds the base another unit makes first.

mod support;

use support::{Registry, Tags};
use support::{Sandbox, base_image, docker};

/// The engine's image events between `since` and now that name `what`: `Action name`.
fn image_events(since: f64, what: &str) -> Vec<String> {
    support::events(
        since,
        support::epoch_now(),
        &["type=image"],
        "{{.Action}} {{.Actor.Attributes.name}}",
    )
    .into_iter()
    .filter(|l| l.contains(what))
    .collect()
}

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", image])
}

fn exists(image: &str) -> bool {
    support::docker_output(&["image", "inspect", image])
        .status
        .success()
}

/// A unit `<id>-<unit>` whose `start` starts a container from an image built in
/// `services/<unit>` (with `dockerfile`, and a file `<unit>.txt` it copies) as `tag`.
fn built_unit(sb: &Sandbox, unit: &str, tag: &str, dockerfile: &str) -> String {
    let id = &sb.id;
    let name = format!("{id}-{unit}");
    sb.write(&format!("services/{unit}/Dockerfile"), dockerfile);
    sb.write(&format!("services/{unit}/{unit}.txt"), "v1\n");
    sb.unit(
        &name,
        "start",
        &format!(
            "{name}:\n  build: {{path: services/{unit}, tag: '{tag}'}}\n  command: [sleep, '3600']\n---\n- {name}: {{command: start}}\n"
        ),
    );
    name
}

/// A base image (unit `<id>-base`) and a site image built `FROM` it (unit `<id>-site`).
/// Returns (base tag, site tag).
fn base_and_site(sb: &Sandbox) -> (String, String) {
    let base = format!("{}/base:1", sb.id);
    let site = format!("{}/site:1", sb.id);
    built_unit(
        sb,
        "base",
        &base,
        &format!("FROM {}\nCOPY base.txt /base.txt\n", base_image()),
    );
    built_unit(
        sb,
        "site",
        &site,
        &format!("FROM {base}\nCOPY site.txt /site.txt\n"),
    );
    (base, site)
}

/// The lines `dstart build` prints for its images (not the log lines), as they came.
fn lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            ["built ", "unchanged ", "failed ", "skipped "]
                .iter()
                .any(|w| l.starts_with(w))
        })
        .collect()
}

#[test]
fn a_changed_base_rebuilds_base_then_dependent_and_unchanged_builds_nothing() {
    let sb = Sandbox::new("chain");
    let id = sb.id.clone();
    let (base, site) = base_and_site(&sb);
    let site_unit = format!("{id}-site");

    // Only the site's unit is asked for: its base (another unit) is built first.
    let out = sb.ok(&["build", &site_unit]);
    let got = lines(&out);
    assert_eq!(got.len(), 2, "{out}");
    assert!(got[0].starts_with(&format!("built {base} (")), "{out}");
    assert!(got[1].starts_with(&format!("built {site} (")), "{out}");
    assert!(got[0].ends_with(" s)"), "{out}");

    // Nothing changed: both unchanged, and the engine is asked to build (or tag) nothing.
    let since = support::epoch_now();
    let out = sb.ok(&["build"]);
    let mut got = lines(&out);
    got.sort_unstable();
    assert_eq!(got.len(), 2, "{out}");
    assert!(got[0].starts_with(&format!("unchanged {base} (")), "{out}");
    assert!(got[1].starts_with(&format!("unchanged {site} (")), "{out}");
    assert_eq!(image_events(since, &id), Vec::<String>::new(), "{out}");

    // The base's file changes: base, then site (its build hash holds the base's image ID).
    let (old_base, old_site) = (image_id(&base), image_id(&site));
    sb.write("services/base/base.txt", "v2\n");
    let since = support::epoch_now();
    let out = sb.ok(&["build", &site_unit]);
    let got = lines(&out);
    assert!(got[0].starts_with(&format!("built {base} (")), "{out}");
    assert!(got[1].starts_with(&format!("built {site} (")), "{out}");
    assert_ne!(image_id(&base), old_base);
    assert_ne!(image_id(&site), old_site);
    let tags: Vec<String> = image_events(since, &id)
        .into_iter()
        .filter(|e| e.starts_with("tag "))
        .collect();
    assert_eq!(
        tags,
        [format!("tag {base}"), format!("tag {site}")],
        "the engine tagged the base before the site"
    );
    let created = |i: &str| docker(&["image", "inspect", "-f", "{{.Created}}", i]);
    assert!(created(&base) < created(&site));
    assert_eq!(
        docker(&["run", "--rm", &site, "cat", "/base.txt", "/site.txt"]),
        "v2\nv1"
    );

    // `run` of the site's unit after another change of the base: the base first, said so,
    // then the site rebuilt and its container started from it.
    sb.write("services/base/base.txt", "v3\n");
    let out = sb.ok(&["run", &format!("{site_unit}/start")]);
    assert!(
        out.contains(&format!(
            "Building the base image {base} of {site} first: the inputs of the image {base} changed"
        )),
        "{out}"
    );
    let container = format!("{id}-site");
    assert!(sb.running(&container));
    assert_eq!(docker(&["exec", &container, "cat", "/base.txt"]), "v3");
    let since = support::epoch_now();
    let out = sb.ok(&["-d", "run", &format!("{site_unit}/start")]);
    assert!(out.contains("is up to date"), "{out}");
    assert_eq!(image_events(since, &id), Vec::<String>::new(), "{out}");
}

#[test]
fn a_failed_base_skips_its_dependents_and_exits_1() {
    let sb = Sandbox::new("chainfail");
    let id = sb.id.clone();
    let (base, site) = base_and_site(&sb);
    sb.write(
        "services/base/Dockerfile",
        &format!("FROM {}\nRUN echo broken-step; exit 3\n", base_image()),
    );
    let other = format!("{id}/other:1");
    built_unit(
        &sb,
        "other",
        &other,
        &format!("FROM {}\nCOPY other.txt /other.txt\n", base_image()),
    );
    let since = support::epoch_now();
    let (out, err) = sb.fails(&["build"], 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("failed {base} ("))),
        "{out}"
    );
    assert!(
        out.contains(&format!("skipped {site} (its base {base} failed)\n")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("built {other} ("))),
        "an independent build goes on: {out}"
    );
    assert!(err.contains("2 of 3 images were not built"), "{err}");
    assert!(!exists(&base) && !exists(&site));

    // `-q`: only what failed (the other image is unchanged now), no log lines.
    let (out, _) = sb.fails(&["-q", "build"], 1);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), 2, "{out}");
    assert!(got[0].starts_with(&format!("failed {base} (")), "{out}");
    assert_eq!(got[1], format!("skipped {site} (its base {base} failed)"));
    assert!(
        !image_events(since, &id).iter().any(|e| e.contains("site")),
        "the site was not attempted"
    );
}

#[test]
fn independent_images_build_concurrently() {
    let sb = Sandbox::new("chainpar");
    let id = sb.id.clone();
    let mut tags = Vec::new();
    for unit in ["one", "two"] {
        let tag = format!("{id}/{unit}:1");
        built_unit(
            &sb,
            unit,
            &tag,
            &format!(
                "FROM {}\nCOPY {unit}.txt /x\nRUN date +%s > /start && sleep 3 && date +%s > /end\n",
                base_image()
            ),
        );
        tags.push(tag);
    }
    let out = sb.ok(&["build"]);
    assert_eq!(
        lines(&out)
            .iter()
            .filter(|l| l.starts_with("built "))
            .count(),
        2
    );
    let times: Vec<(u64, u64)> = tags
        .iter()
        .map(|t| {
            let text = docker(&["run", "--rm", t, "cat", "/start", "/end"]);
            let mut n = text.lines().map(|l| l.trim().parse::<u64>().unwrap());
            (n.next().unwrap(), n.next().unwrap())
        })
        .collect();
    let ((s1, e1), (s2, e2)) = (times[0], times[1]);
    assert!(
        s1 < e2 && s2 < e1,
        "the two 3-second steps overlap in time: {times:?}\n{out}"
    );
}

#[test]
fn push_sends_what_was_built_to_the_registry() {
    let registry = Registry::start();
    let mut pushed = Tags(Vec::new());
    let sb = Sandbox::new("chainpush");
    let id = sb.id.clone();
    let tag = format!("{}/{id}/pushed:1", registry.address());
    pushed.0.push(tag.clone());
    built_unit(
        &sb,
        "pushed",
        &tag,
        &format!("FROM {}\nCOPY pushed.txt /p\n", base_image()),
    );
    let out = sb.ok(&["build", "--push"]);
    assert!(out.contains(&format!("built {tag} (")), "{out}");
    assert!(out.contains(&format!("Pushed the image {tag}")), "{out}");
    let list = registry.get(&format!("/v2/{id}/pushed/tags/list"));
    assert!(list.contains("\"1\""), "{list}");

    // Unchanged: nothing is pushed.
    let out = sb.ok(&["build", "--push"]);
    assert!(out.contains(&format!("unchanged {tag} (")), "{out}");
    assert!(!out.contains("Pushing"), "{out}");
}

#[test]
fn plan_says_which_input_changed_and_builds_nothing() {
    let sb = Sandbox::new("chainplan");
    let id = sb.id.clone();
    let (base, site) = base_and_site(&sb);
    let (base_unit, site_unit) = (format!("{id}-base"), format!("{id}-site"));
    sb.ok(&["run", &format!("{site_unit}/start")]);
    let plan = |command: &str| {
        let since = support::epoch_now();
        let out = sb.ok(&["run", "--plan", command]);
        assert_eq!(image_events(since, &id), Vec::<String>::new(), "{out}");
        out
    };

    let out = plan(&format!("{base_unit}/build"));
    assert_eq!(out, format!("keep {base} (unchanged)\n"));
    let out = plan(&format!("{site_unit}/start"));
    assert!(!out.contains("build "), "{out}");

    sb.write("services/site/site.txt", "v2\n");
    let out = plan(&format!("{site_unit}/start"));
    assert!(
        out.starts_with(&format!("build {site} (context changed)\n")),
        "{out}"
    );
    sb.write("services/site/site.txt", "v1\n");

    sb.write(
        "services/base/Dockerfile",
        &format!("FROM {}\nCOPY base.txt /base.txt\nENV B=2\n", base_image()),
    );
    let out = plan(&format!("{base_unit}/build"));
    assert_eq!(out, format!("build {base} (Dockerfile changed)\n"));
    let out = plan(&format!("{site_unit}/start"));
    assert!(
        out.starts_with(&format!("build {site} (base {base} changed)\n")),
        "{out}"
    );
    let json = sb.ok(&[
        "run",
        "--plan",
        "--format",
        "json",
        &format!("{site_unit}/start"),
    ]);
    assert!(
        json.contains(&format!(
            "{{\"order\":\"start\",\"container\":\"{site_unit}\",\"action\":\"build\",\"reasons\":[\"base {base} changed\"]}}"
        )),
        "{json}"
    );

    // Built by another run (`dstart build` of the base alone): the site's recorded base ID
    // is now another one.
    sb.ok(&["build", &base_unit]);
    let out = plan(&format!("{site_unit}/start"));
    assert!(
        out.starts_with(&format!("build {site} (base {base} changed)\n")),
        "{out}"
    );
}

#[test]
fn pull_fetches_the_from_images_the_directory_does_not_build() {
    let registry = Registry::start();
    let mut names = Tags(Vec::new());
    let sb = Sandbox::new("chainpull");
    let id = sb.id.clone();
    let from = format!("{}/{id}/from:1", registry.address());
    names.0.push(from.clone());
    // An image of the test's own under that name (a pushed image keeps the registry's digest
    // as a name: the shared base image must not get one).
    let first = sb.write(
        "first/Dockerfile",
        &format!("FROM {}\nLABEL v=1\n", base_image()),
    );
    docker(&[
        "build",
        "-q",
        "-t",
        &from,
        first.parent().unwrap().to_str().unwrap(),
    ]);
    names.0.push(image_id(&from));
    docker(&["push", &from]);
    docker(&["rmi", &from]);
    let (base, site) = (format!("{id}/base:1"), format!("{id}/site:1"));
    built_unit(
        &sb,
        "base",
        &base,
        &format!("FROM {from}\nCOPY base.txt /base.txt\n"),
    );
    built_unit(
        &sb,
        "site",
        &site,
        &format!("FROM {base}\nCOPY site.txt /site.txt\n"),
    );

    // --pull=missing pulls the missing FROM image (once), never the base the directory builds.
    let out = sb.ok(&["build", "--pull=missing"]);
    assert_eq!(out.matches("Pulling the image").count(), 1, "{out}");
    assert!(out.contains(&format!("Pulling the image {from}")), "{out}");
    assert!(out.contains(&format!("built {site} (")), "{out}");
    let out = sb.ok(&["build", "--pull=missing"]);
    assert!(!out.contains("Pulling"), "{out}");
    assert_eq!(lines(&out).len(), 2, "{out}");
    assert!(
        lines(&out).iter().all(|l| l.starts_with("unchanged ")),
        "{out}"
    );

    // The registry gets another image under that name: `build` alone does not look, a bare
    // `--pull` pulls it, and the base and the site rebuild from it.
    let other = sb.write(
        "other/Dockerfile",
        &format!("FROM {}\nLABEL v=2\n", base_image()),
    );
    let old_id = image_id(&from);
    docker(&[
        "build",
        "-q",
        "-t",
        &from,
        other.parent().unwrap().to_str().unwrap(),
    ]);
    docker(&["push", &from]);
    names.0.push(image_id(&from));
    docker(&["tag", &old_id, &from]);
    let out = sb.ok(&["build"]);
    assert!(
        lines(&out).iter().all(|l| l.starts_with("unchanged ")),
        "{out}"
    );
    let out = sb.ok(&["build", "--pull"]);
    assert_eq!(out.matches("Pulling the image").count(), 1, "{out}");
    assert_ne!(image_id(&from), old_id);
    let got = lines(&out);
    assert!(got[0].starts_with(&format!("built {base} (")), "{out}");
    assert!(got[1].starts_with(&format!("built {site} (")), "{out}");
}
