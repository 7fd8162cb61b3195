//! The Dockerfile of a build: the file, or `Dockerfile.tera` / `Dockerfile.j2` rendered with
//! the unit's environment (seed 001), the inputs besides the context that its image is made
//! of, and the images its `FROM` lines name. Reads files, never the engine.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::execute::buildhash::BuildInputs;
use crate::execute::context::ContextSpec;
use crate::execute::{OrderError, OrderResult};
use crate::unit::container::ContainerSpec;

/// The Dockerfile of the build `spec` in `dir`: the file, or `Dockerfile.tera` /
/// `Dockerfile.j2` rendered with `vars` (`IMAGE` and `CONTAINER` added). A template error is
/// the configuration's (exit 2); a missing Dockerfile fails the build.
pub fn dockerfile(
    vars: &Map<String, Value>,
    units_dir: &Path,
    spec: &ContainerSpec,
    dir: &Path,
) -> OrderResult<ContextSpec> {
    let build = spec.build.as_ref().expect("called with a build spec");
    let plain = |file: &str| ContextSpec {
        dir: dir.to_path_buf(),
        dockerfile: file.to_string(),
        rendered: None,
        template: None,
    };
    if let Some(explicit) = &build.dockerfile {
        let path = dir.join(explicit);
        if !path.is_file() {
            return Err(OrderError::failed(format!(
                "the Dockerfile `{}` does not exist",
                path.display()
            )));
        }
        let is_template = Path::new(explicit)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tera") || e.eq_ignore_ascii_case("j2"));
        if !is_template {
            return Ok(plain(explicit));
        }
        return render_template(vars, units_dir, spec, dir, explicit);
    }
    let templates: Vec<&str> = ["Dockerfile.tera", "Dockerfile.j2"]
        .into_iter()
        .filter(|t| dir.join(t).is_file())
        .collect();
    match (templates.as_slice(), dir.join("Dockerfile").is_file()) {
        ([], true) => Ok(plain("Dockerfile")),
        ([t], false) => render_template(vars, units_dir, spec, dir, t),
        ([], false) => Err(OrderError::failed(format!(
            "`{}` has no Dockerfile (nor Dockerfile.tera / Dockerfile.j2)",
            dir.display()
        ))),
        _ => Err(OrderError::failed(format!(
            "`{}` has more than one of Dockerfile, Dockerfile.tera and Dockerfile.j2; keep one",
            dir.display()
        ))),
    }
}

fn render_template(
    vars: &Map<String, Value>,
    units_dir: &Path,
    spec: &ContainerSpec,
    dir: &Path,
    template: &str,
) -> OrderResult<ContextSpec> {
    let path = dir.join(template);
    let text = std::fs::read_to_string(&path)
        .map_err(OrderError::io(format!("reading `{}`", path.display())))?;
    let mut ctx = vars.clone();
    if let Some(image) = spec
        .image
        .as_ref()
        .or(spec.build.as_ref().and_then(|b| b.tag.as_ref()))
    {
        ctx.insert("IMAGE".into(), Value::String(image.clone()));
    }
    ctx.insert("CONTAINER".into(), Value::String(spec.name.clone()));
    let dirs = crate::config::template::TemplateDirs {
        dirs: vec![dir.to_path_buf(), units_dir.to_path_buf()],
    };
    let rendered = crate::config::template::render(&path, &text, &Value::Object(ctx), &dirs)
        .map_err(|e| OrderError::Config(e.into()))?;
    Ok(ContextSpec {
        dir: dir.to_path_buf(),
        dockerfile: "Dockerfile".into(),
        rendered: Some(rendered.into_bytes()),
        template: Some(template.to_string()),
    })
}

/// The Dockerfile of `ctx` as sent.
pub fn dockerfile_bytes(ctx: &ContextSpec) -> OrderResult<Vec<u8>> {
    if let Some(bytes) = &ctx.rendered {
        return Ok(bytes.clone());
    }
    let path = ctx.dir.join(&ctx.dockerfile);
    std::fs::read(&path).map_err(OrderError::io(format!("reading `{}`", path.display())))
}

/// The inputs of the build `spec` with context `ctx`, besides the context files.
pub fn inputs(spec: &ContainerSpec, ctx: &ContextSpec) -> OrderResult<BuildInputs> {
    let b = spec
        .build
        .as_ref()
        .ok_or_else(|| OrderError::failed(format!("container `{}` has no `build`", spec.name)))?;
    Ok(BuildInputs {
        dockerfile_path: ctx.dockerfile.clone(),
        dockerfile: dockerfile_bytes(ctx)?,
        buildargs: b.buildargs.clone().into_iter().collect(),
        target: b.target.clone(),
        labels: b.labels.clone().into_iter().collect(),
        from_ids: std::collections::BTreeMap::new(),
    })
}

/// The images the `FROM` lines of `dockerfile` name, with `$ARG` / `${ARG}` replaced from
/// `buildargs` (else the `ARG` default before the first `FROM`); names of earlier stages and
/// `scratch` are left out, as is a name with an argument that has no value.
pub fn from_images(dockerfile: &str, buildargs: &BTreeMap<String, String>) -> Vec<String> {
    from_lines(dockerfile, buildargs)
        .into_iter()
        .map(|(image, _)| image)
        .collect()
}

/// [`from_images`] with the (1-based) line of the first `FROM` naming each.
pub fn from_lines(dockerfile: &str, buildargs: &BTreeMap<String, String>) -> Vec<(String, usize)> {
    let mut args = BTreeMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut images: Vec<(String, usize)> = Vec::new();
    let mut seen_from = false;
    for (number, line) in dockerfile.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else {
            continue;
        };
        if first.eq_ignore_ascii_case("ARG") && !seen_from {
            if let Some(decl) = words.get(1) {
                let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
                let value = buildargs.get(name).cloned().or_else(|| {
                    (!default.is_empty()).then(|| default.trim_matches('"').to_string())
                });
                if let Some(v) = value {
                    args.insert(name.to_string(), v);
                }
            }
            continue;
        }
        if !first.eq_ignore_ascii_case("FROM") {
            continue;
        }
        seen_from = true;
        let rest: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let Some(name) = rest.first().and_then(|n| substitute(n, &args)) else {
            continue;
        };
        let earlier_stage = stages.contains(&name.to_lowercase());
        if let (Some(as_kw), Some(alias)) = (rest.get(1), rest.get(2)) {
            if as_kw.eq_ignore_ascii_case("AS") {
                stages.push(alias.to_lowercase());
            }
        }
        if name != "scratch" && !earlier_stage && !images.iter().any(|(i, _)| *i == name) {
            images.push((name, number + 1));
        }
    }
    images
}

/// `$NAME` and `${NAME}` replaced from `args`; `None` when one has no value.
fn substitute(word: &str, args: &BTreeMap<String, String>) -> Option<String> {
    static ARG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
            .expect("a valid pattern")
    });
    let mut missing = false;
    let out = ARG.replace_all(word, |c: &regex::Captures<'_>| {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        args.get(name).cloned().unwrap_or_else(|| {
            missing = true;
            String::new()
        })
    });
    (!missing).then(|| out.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_name_images_but_not_stages() {
        let args = BTreeMap::from([("TAG".to_string(), "2".to_string())]);
        let cases: &[(&str, &[&str])] = &[
            ("FROM me/base\nRUN x\n", &["me/base"]),
            (
                "from --platform=linux/amd64 me/base:1 AS b\nFROM b\n",
                &["me/base:1"],
            ),
            (
                "FROM a AS build\nFROM scratch\nCOPY --from=build / /\n",
                &["a"],
            ),
            ("ARG TAG=1\nFROM me/base:${TAG}\n", &["me/base:2"]),
            ("ARG OTHER=x\nFROM me/$OTHER\n", &["me/x"]),
            ("FROM me/$UNSET\n", &[]),
            ("FROM a\nFROM a\nFROM c AS a\n", &["a", "c"]),
        ];
        for (text, want) in cases {
            assert_eq!(from_images(text, &args), *want, "{text}");
        }
    }
}
