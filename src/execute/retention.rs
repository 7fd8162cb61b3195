//! Retention of the images dstart built (SPEC "Images and build chains"): after a build, of the
//! images of that repository that carry `dstart.build-hash`, the newest `BUILD_KEEP` (default
//! 3) stay, and so does every image a container uses and every image that still has a tag
//! (someone's name for it: a test copy, a `tag` order). The older ones that lost their tag to a
//! rebuild are removed, each named in the log; a failed removal is a warning, never a failed
//! build.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::engine::ImageSummary;
use crate::error::{ConfigError, Location};
use crate::execute::UnitRun;
use crate::execute::buildhash::LABEL_BUILD_REPOSITORY;
use crate::output;
use crate::unit::container::split_image;

/// The environment variable holding how many built images to keep per repository.
pub const BUILD_KEEP_VAR: &str = "BUILD_KEEP";
/// `BUILD_KEEP` when it is not set.
pub const DEFAULT_KEEP: usize = 3;

/// Reads `BUILD_KEEP` (a non-negative integer, as a number or a string).
pub fn parse_keep(value: Option<&Value>) -> Result<usize, String> {
    let bad = |v: &Value| format!("`{BUILD_KEEP_VAR}` must be a non-negative integer, found `{v}`");
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_KEEP),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad(&Value::Number(n.clone()))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("`{BUILD_KEEP_VAR}` must be a non-negative integer, found `{s}`")),
        Some(other) => Err(bad(other)),
    }
}

/// `BUILD_KEEP` of `env`, checked; a bad value is a configuration error naming the environment
/// file (and line) that sets it, out of `files` (the environment files, in merge order).
pub fn build_keep(
    env: &crate::config::environment::Environment,
    files: &[PathBuf],
) -> Result<usize, ConfigError> {
    parse_keep(env.get(BUILD_KEEP_VAR)).map_err(|message| ConfigError::Invalid {
        location: setting_file(files),
        message,
        hint: Some(
            "give the number of built images to keep per repository, e.g. `BUILD_KEEP: 3`".into(),
        ),
    })
}

/// The last of `files` with a top-level `BUILD_KEEP:` line, and that line.
fn setting_file(files: &[PathBuf]) -> Location {
    let found = files.iter().rev().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        let line = text.lines().position(|l| {
            l.strip_prefix(BUILD_KEEP_VAR)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })?;
        Some((f.clone(), line + 1))
    });
    match found {
        Some((file, line)) => Location {
            file,
            line: Some(line),
            column: Some(1),
        },
        None => Location {
            file: files.last().cloned().unwrap_or_default(),
            line: None,
            column: None,
        },
    }
}

/// The environment files of `dir` in merge order, then the `-e` file.
pub fn environment_files(dir: &Path, extra: Option<&Path>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.extend(extra.map(Path::to_path_buf));
    files
}

/// The images of one repository to remove: beyond the newest `keep` (the current image
/// always counts as kept), not used by a container, and without a tag.
#[allow(clippy::implicit_hasher)]
pub fn to_remove<'a>(
    images: &'a [ImageSummary],
    in_use: &HashSet<String>,
    current: &str,
    keep: usize,
) -> Vec<&'a ImageSummary> {
    let mut newest: Vec<&ImageSummary> = images.iter().collect();
    newest.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
    newest
        .into_iter()
        .filter(|i| i.id != current)
        .skip(keep.saturating_sub(1))
        .filter(|i| !in_use.contains(&i.id) && i.tags.is_empty())
        .collect()
}

/// After `image` was built: removes the repository's old builds (see the module doc).
pub async fn after_build(run: &UnitRun<'_>, image: &str) {
    if let Err(e) = prune(run, image).await {
        output::warn(
            "image",
            format!("could not remove the old builds of {image}: {e}"),
        );
    }
}

async fn prune(run: &UnitRun<'_>, image: &str) -> Result<(), crate::engine::EngineError> {
    let engine = run.engine();
    let Some(current) = engine.image(image).await? else {
        return Ok(());
    };
    let repo = split_image(image).0;
    // Only images dstart built carry the repository label (beside `dstart.build-hash`).
    let images = engine
        .image_summaries(&[(LABEL_BUILD_REPOSITORY, repo.as_str())])
        .await?;
    let in_use = engine.images_in_use().await?;
    let keep = run.rt.build_keep;
    for old in to_remove(&images, &in_use, &current.id, keep) {
        let short = old.id.trim_start_matches("sha256:");
        let short = &short[..short.len().min(12)];
        match engine.remove_image(&old.id, false, false).await {
            Ok(()) => output::info(format!(
                "Removed the old build {short} of {repo} ({BUILD_KEEP_VAR} is {keep})"
            )),
            Err(e) => output::warn(
                "image",
                format!("could not remove the old build {short} of {repo}: {e}"),
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, created: i64, tagged: bool) -> ImageSummary {
        ImageSummary {
            id: id.into(),
            created,
            tags: if tagged {
                vec![format!("me/app:{id}")]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn keeps_the_newest_the_used_and_the_tagged() {
        let images = vec![
            img("a", 1, false),
            img("b", 2, false),
            img("c", 3, false),
            img("d", 4, true),
            img("e", 5, false),
            img("cur", 6, true),
        ];
        let ids = |keep: usize, used: &[&str]| -> Vec<String> {
            let used: HashSet<String> = used.iter().map(|s| (*s).to_string()).collect();
            let mut out: Vec<String> = to_remove(&images, &used, "cur", keep)
                .into_iter()
                .map(|i| i.id.clone())
                .collect();
            out.sort();
            out
        };
        assert_eq!(
            ids(3, &[]),
            ["a", "b", "c"],
            "cur, e, d kept; d is tagged anyway"
        );
        assert_eq!(ids(3, &["b"]), ["a", "c"], "b is in use");
        assert_eq!(ids(5, &[]), ["a"]);
        assert_eq!(ids(6, &[]), Vec::<String>::new());
        assert_eq!(ids(1, &[]), ["a", "b", "c", "e"], "only the current one");
        assert_eq!(
            ids(0, &[]),
            ["a", "b", "c", "e"],
            "the current one always stays"
        );
    }

    #[test]
    fn build_keep_values() {
        let cases: &[(Option<Value>, Result<usize, ()>)] = &[
            (None, Ok(3)),
            (Some(Value::from(0)), Ok(0)),
            (Some(Value::from(7)), Ok(7)),
            (Some(Value::from("5")), Ok(5)),
            (Some(Value::from(-1)), Err(())),
            (Some(Value::from(1.5)), Err(())),
            (Some(Value::from("three")), Err(())),
            (Some(Value::from(true)), Err(())),
            (Some(serde_json::json!([1])), Err(())),
        ];
        for (value, want) in cases {
            let got = parse_keep(value.as_ref());
            assert_eq!(got.clone().map_err(|_| ()), *want, "{value:?}: {got:?}");
            if let Err(e) = got {
                assert!(e.starts_with("`BUILD_KEEP` must be"), "{e}");
            }
        }
    }

    #[test]
    fn a_bad_build_keep_names_its_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.yaml");
        let b = tmp.path().join("b.yaml");
        std::fs::write(&a, "BUILD_KEEP: 2\n").unwrap();
        std::fs::write(&b, "X: 1\nBUILD_KEEP: many\n").unwrap();
        let env = crate::config::environment::Environment::from_map(
            serde_json::json!({"BUILD_KEEP": "many"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let err = build_keep(&env, &[a, b.clone()]).unwrap_err();
        match err {
            ConfigError::Invalid { location, .. } => {
                assert_eq!(location.file, b);
                assert_eq!(location.line, Some(2));
            }
            other => panic!("{other:?}"),
        }
    }
}
