//! The `test_data` container (ORIGINAL §6.4): a data container with the volumes `/archives` and
//! `/tests` that keeps what test runs leave behind. A run writes
//! `/archives/<variant>/<container>/<TIMESTAMP>/` (gathered files, `logs.txt`,
//! `environment.yaml`, `junit.xml`) and points `/tests/<variant>/<container>` at the newest.
//!
//! The container is created on demand, never started and never removed by a teardown. Its name
//! is `TEST_DATA_CONTAINER` from the environment, else `test_data`; its image is `HELPER_IMAGE`
//! from the environment, else the first image of the unit that exists, preferring those that
//! are no pseudo-tagged test image (any image will do: the container never runs, and files
//! reach its volumes through the engine's archive endpoint, so no registry, shell or tar is
//! needed). It is made from a tag of its own ([`image_repo`]), so no tag of the unit is held.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::engine::convert::{self, ConvertInput};
use crate::execute::run::bare_spec;
use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::unit::container::MountSpec;

/// The default name of the test data container.
pub const DEFAULT_NAME: &str = "test_data";

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

/// The repository the test data container's image is tagged as: its name, made a valid image
/// name (lower case; other characters than `a-z0-9._-` as `-`).
pub fn image_repo(name: &str) -> String {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect();
    let mut repo = String::new();
    // Separators only between letters and digits, one at a time.
    for (i, part) in mapped.split('-').filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            repo.push('-');
        }
        repo.push_str(part);
    }
    if repo.is_empty() {
        DEFAULT_NAME.replace('_', "-")
    } else {
        repo
    }
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
                std::fs::write(dir.join(name), text)?;
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

/// Creates the test data container unless it exists.
pub async fn ensure(run: &UnitRun<'_>, name: &str, image: &str) -> OrderResult {
    let engine = run.engine();
    if engine.container(name).await?.is_some() {
        return Ok(());
    }
    let mut spec = bare_spec(name, image);
    spec.command = Some(vec!["true".into()]);
    spec.entrypoint = Some(Vec::new());
    spec.mounts = ["/archives", "/tests"]
        .iter()
        .map(|p| MountSpec::Anonymous {
            container: (*p).to_string(),
        })
        .collect();
    spec.host.network_mode = Some("none".into());
    spec.labels.insert("dstart.test-data".into(), "true".into());
    let req = convert::create_request(&spec, &ConvertInput::default());
    match engine.create_container(name, req).await {
        Ok(_) => {
            crate::output::info(format!(
                "Created the test data container {name} from {image}"
            ));
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
    fn image_repo_is_a_valid_image_name() {
        assert_eq!(image_repo("test_data"), "test-data");
        assert_eq!(
            image_repo("dstart-it-x-1-testdata"),
            "dstart-it-x-1-testdata"
        );
        assert_eq!(image_repo("My Data.v2"), "my-data-v2");
        assert_eq!(image_repo("--__--"), "test-data");
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
