//! The test data container (ORIGINAL §6.4, SPEC "Tests"): a data container with the volumes
//! `/archives` and `/tests` that keeps what test runs leave behind. A run writes
//! `/archives/<variant>/<container>/<TIMESTAMP>/` (gathered files, `logs.txt`,
//! `environment.yaml`, `junit.xml`) and points `/tests/<variant>/<container>` at the newest.
//!
//! Each unit has its own, `<unit>_test_data` (`TEST_DATA_CONTAINER` from the environment names
//! a shared one instead), labelled `dstart.test-data=<unit>` and removed by the unit's
//! generated `purge`. It is created on demand and never started, from [`IMAGE`]: a tiny image
//! dstart builds from its own files (a README, no shell, no volume of its own), so no image
//! of the unit is held and none needs to be pulled. Files reach its volumes through the
//! engine's archive endpoint.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::engine::BuildParams;
use crate::engine::convert::{self, ConvertInput};
use crate::execute::run::bare_spec;
use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::generate::testplan::LABEL_TEST_DATA;
use crate::unit::container::MountSpec;

/// The image of every test data container.
pub const IMAGE: &str = "dstart/test-data:1";

/// What the image holds: this text, for whoever finds it.
const README: &str = "This image is dstart's test data container: it never runs. Its \
container keeps the files of test runs in the volumes /archives and /tests.\n";

/// A path element from a variant or container name.
fn element(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        format!("_{clean}")
    } else {
        clean
    }
}

/// Writes `text` to `path` as a new file: whatever a container left there (a symlink to a host
/// path) is replaced, never written through.
pub fn write_new(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(text)
}

/// What a run archives, staged in a local directory until it is uploaded.
pub struct Staging {
    dir: tempfile::TempDir,
    /// Local `%Y%m%d-%H%M%S` of the run.
    pub timestamp: String,
    entries: BTreeSet<(String, String)>,
}

impl Staging {
    pub fn new() -> std::io::Result<Self> {
        Ok(Staging {
            dir: tempfile::tempdir()?,
            timestamp: chrono::Local::now().format("%Y%m%d-%H%M%S").to_string(),
            entries: BTreeSet::new(),
        })
    }

    /// The directory of `container`'s files in `variant` (created).
    pub fn dir_for(&mut self, variant: &str, container: &str) -> std::io::Result<PathBuf> {
        let (v, c) = (element(variant), element(container));
        let dir = self
            .dir
            .path()
            .join("archives")
            .join(&v)
            .join(&c)
            .join(&self.timestamp);
        std::fs::create_dir_all(&dir)?;
        self.entries.insert((v, c));
        Ok(dir)
    }

    /// `/archives/<variant>/<container>/<TIMESTAMP>` as seen inside the container.
    pub fn container_path(&self, variant: &str, container: &str) -> String {
        format!(
            "/archives/{}/{}/{}",
            element(variant),
            element(container),
            self.timestamp
        )
    }

    /// The `/tests/<variant>/<container>` links the run writes.
    pub fn links(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(v, c)| format!("/tests/{v}/{c}"))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the run-wide files into every directory and the `/tests` links to them.
    pub fn finish(&self, files: &[(&str, &str)]) -> std::io::Result<()> {
        for (variant, container) in &self.entries {
            let dir = self
                .dir
                .path()
                .join("archives")
                .join(variant)
                .join(container)
                .join(&self.timestamp);
            for (name, text) in files {
                write_new(&dir.join(name), text.as_bytes())?;
            }
            let links = self.dir.path().join("tests").join(variant);
            std::fs::create_dir_all(&links)?;
            let link = links.join(container);
            let _ = std::fs::remove_file(&link);
            // Relative, so the link also works in a copy of the volumes.
            std::os::unix::fs::symlink(
                Path::new("../../archives")
                    .join(variant)
                    .join(container)
                    .join(&self.timestamp),
                link,
            )?;
        }
        Ok(())
    }

    /// The staged tree as a tar (members `archives/...` and `tests/...`).
    pub fn tar(&self) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        for top in ["archives", "tests"] {
            let path = self.dir.path().join(top);
            if path.exists() {
                builder.append_dir_all(top, &path)?;
            }
        }
        builder.into_inner()
    }
}

/// The build context of [`IMAGE`]: a Dockerfile and the README.
fn image_context() -> std::io::Result<Vec<u8>> {
    let dockerfile = format!("FROM scratch\nCOPY README /README\nLABEL {LABEL_TEST_DATA}=image\n");
    let mut builder = tar::Builder::new(Vec::new());
    for (name, text) in [("Dockerfile", dockerfile.as_str()), ("README", README)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, text.as_bytes())?;
    }
    builder.into_inner()
}

/// Builds [`IMAGE`] unless the engine has it.
async fn ensure_image(run: &UnitRun<'_>) -> OrderResult {
    let engine = run.engine();
    let _guard = run.image_lock(IMAGE).await;
    if engine.image(IMAGE).await?.is_some() {
        return Ok(());
    }
    let context = image_context().map_err(OrderError::io("packing the test data image"))?;
    let params = BuildParams {
        tag: Some(IMAGE.to_string()),
        dockerfile: "Dockerfile".into(),
        rm: true,
        nocache: false,
        pull: false,
        forcerm: true,
        buildargs: HashMap::new(),
        labels: HashMap::new(),
        target: None,
        network_mode: None,
    };
    let body = futures_util::stream::once(async move { Ok(Bytes::from(context)) });
    engine.build(&params, body, |_| {}).await?;
    crate::output::info(format!("Built the test data image {IMAGE}"));
    Ok(())
}

/// Creates the test data container `name` of `unit` unless it exists; an existing container
/// without the test data label is someone else's and is refused.
pub async fn ensure(run: &UnitRun<'_>, name: &str, unit: &str) -> OrderResult {
    let engine = run.engine();
    if let Some(info) = engine.container(name).await? {
        if info.labels.contains_key(LABEL_TEST_DATA) {
            return Ok(());
        }
        return Err(OrderError::failed(format!(
            "the container `{name}` exists and is no test data container (no label \
             `{LABEL_TEST_DATA}`): dstart does not write into it"
        )));
    }
    ensure_image(run).await?;
    let mut spec = bare_spec(name, IMAGE);
    spec.command = Some(vec!["true".into()]);
    spec.entrypoint = Some(Vec::new());
    spec.mounts = ["/archives", "/tests"]
        .iter()
        .map(|p| MountSpec::Anonymous {
            container: (*p).to_string(),
        })
        .collect();
    spec.host.network_mode = Some("none".into());
    spec.labels.insert(LABEL_TEST_DATA.into(), unit.into());
    let req = convert::create_request(&spec, &ConvertInput::default());
    match engine.create_container(name, req).await {
        Ok(_) => {
            crate::output::info(format!("Created the test data container {name}"));
            Ok(())
        }
        // Created meanwhile by another run.
        Err(crate::engine::EngineError::Conflict { .. }) => Ok(()),
        Err(e) => Err(OrderError::Engine(e)),
    }
}

/// Uploads the staged tree into the test data container.
pub async fn upload(run: &UnitRun<'_>, name: &str, staging: &Staging) -> OrderResult {
    let data = staging
        .tar()
        .map_err(OrderError::io("packing the test results"))?;
    let body = futures_util::stream::once(async move { Bytes::from(data) });
    run.engine().upload(name, "/", body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_context_is_a_dockerfile_and_a_readme() {
        let tar = image_context().unwrap();
        let mut files: Vec<(String, String)> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut text = String::new();
                std::io::Read::read_to_string(&mut e, &mut text).unwrap();
                (e.path().unwrap().display().to_string(), text)
            })
            .collect();
        files.sort();
        assert_eq!(files[0].0, "Dockerfile");
        assert!(files[0].1.starts_with("FROM scratch\n"), "{}", files[0].1);
        assert!(!files[0].1.contains("VOLUME"), "no volume of its own");
        assert_eq!(files[1], ("README".to_string(), README.to_string()));
    }

    #[test]
    fn files_of_the_run_replace_links_a_container_left() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "host file").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.txt");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_new(&path, b"log").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "host file");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "log");
        assert!(!path.is_symlink());
    }

    #[test]
    fn staging_layout() {
        let mut s = Staging::new().unwrap();
        s.timestamp = "20240102-030405".into();
        let dir = s.dir_for("check", "web").unwrap();
        std::fs::write(dir.join("logs.txt"), "x").unwrap();
        s.dir_for("pytests", "a/b").unwrap();
        s.finish(&[("junit.xml", "<x/>")]).unwrap();
        assert_eq!(
            s.container_path("check", "web"),
            "/archives/check/web/20240102-030405"
        );
        let root = s.dir.path();
        assert!(
            root.join("archives/check/web/20240102-030405/junit.xml")
                .is_file()
        );
        assert!(
            root.join("archives/pytests/a_b/20240102-030405/junit.xml")
                .is_file()
        );
        assert_eq!(
            std::fs::read_link(root.join("tests/check/web")).unwrap(),
            Path::new("../../archives/check/web/20240102-030405")
        );
        assert_eq!(
            std::fs::read_to_string(root.join("tests/check/web/logs.txt")).unwrap(),
            "x"
        );
        let tar = s.tar().unwrap();
        let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert!(names.contains(&"tests/check/web".to_string()), "{names:?}");
        assert!(
            names.contains(&"archives/check/web/20240102-030405/logs.txt".to_string()),
            "{names:?}"
        );
    }
}
