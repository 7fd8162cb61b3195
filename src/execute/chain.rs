//! Build chains (SPEC "Images and build chains"), resolved before the first engine call: every
//! build of a set of units (unit, container, build directory, tag) with its Dockerfile rendered
//! from `Dockerfile.tera` / `Dockerfile.j2` with the unit's environment, the images its `FROM`
//! lines name, and which build is the base of which: a build whose `FROM` names the tag of
//! another build of the configuration directory (any unit) is built after it. A `FROM` cycle
//! is a configuration error (exit 2). Reads files, never the engine.

use crate::config::command::UnitCommand;
use crate::config::discover::ConfigDir;
use crate::config::environment::Environment;
use crate::error::{ConfigError, Location};
use crate::execute::buildhash::BuildInputs;
use crate::execute::context::ContextSpec;
use crate::execute::dockerfile::{self, dockerfile, inputs};
use crate::execute::{OrderError, build_path};
use crate::output;
use crate::unit::Unit;
use crate::unit::container::{ContainerSpec, with_default_tag};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One build of the configuration directory, ready to hash and run.
#[derive(Debug, Clone)]
pub struct Build {
    /// Index of its unit in [`Chain::units`].
    pub unit: usize,
    pub container: String,
    /// The name it is built as, with its tag (`:latest` when none is written).
    pub tag: String,
    pub spec: ContainerSpec,
    pub ctx: ContextSpec,
    /// What besides the context makes the image (no `FROM` image IDs: those are the engine's).
    pub inputs: BuildInputs,
    /// The images its `FROM` lines name (with their tags) and the line of each in the
    /// Dockerfile as sent.
    pub froms: Vec<(String, usize)>,
    /// The Dockerfile, or the template it is rendered from.
    pub file: PathBuf,
}

/// The builds of a set of units and of the rest of the configuration directory.
#[derive(Debug, Default)]
pub struct Chain {
    pub units: Vec<Unit>,
    pub builds: Vec<Build>,
    by_tag: HashMap<String, usize>,
}

/// The name `spec`'s image is built as (its `build.tag`, else its `image`).
pub fn built_name(spec: &ContainerSpec) -> Option<String> {
    spec.build
        .as_ref()
        .and_then(|b| b.tag.clone())
        .or_else(|| spec.image.clone())
}

/// Why a unit's build was left out of the chain.
enum Unresolved {
    /// The configuration is wrong (a template error): exit 2 for the units asked for.
    Config(ConfigError),
    /// The build cannot be looked at yet (no directory or Dockerfile: an earlier order may
    /// make them); the build order says so when it runs.
    Later(String),
}

/// The builds of `unit` (index `index` in the chain), Dockerfiles rendered.
fn resolve(index: usize, unit: &Unit, conf: &Path, cwd: &Path) -> Vec<Result<Build, Unresolved>> {
    let units_dir = conf.join("units");
    let mut out = Vec::new();
    for (name, container) in &unit.containers {
        let spec = &container.spec;
        let Some(b) = &spec.build else {
            continue;
        };
        let Some(tag) = built_name(spec) else {
            continue;
        };
        let dir = build_path(conf, cwd, &b.path);
        let later = |why: String| Err(Unresolved::Later(why));
        if !dir.is_dir() {
            out.push(later(format!(
                "its build directory `{}` does not exist (yet)",
                dir.display()
            )));
            continue;
        }
        let ctx = match dockerfile(unit.environment.vars(), &units_dir, spec, &dir) {
            Ok(ctx) => ctx,
            Err(OrderError::Config(e)) => {
                out.push(Err(Unresolved::Config(e)));
                continue;
            }
            Err(e) => {
                out.push(later(e.to_string()));
                continue;
            }
        };
        let inputs = match inputs(spec, &ctx) {
            Ok(inputs) => inputs,
            Err(e) => {
                out.push(later(e.to_string()));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&inputs.dockerfile).into_owned();
        let froms = dockerfile::from_lines(&text, &inputs.buildargs)
            .into_iter()
            .map(|(image, line)| (with_default_tag(&image), line))
            .collect();
        let file = dir.join(ctx.template.as_deref().unwrap_or(&ctx.dockerfile));
        out.push(Ok(Build {
            unit: index,
            container: name.clone(),
            tag: with_default_tag(&tag),
            spec: spec.clone(),
            ctx,
            inputs,
            froms,
            file,
        }));
    }
    out
}

impl Chain {
    /// Whether the chain holds no build.
    pub fn is_empty(&self) -> bool {
        self.builds.is_empty()
    }

    /// Adds the builds of `unit`. With `strict`, a template error is returned; otherwise the
    /// build is left out (at `-d`). A tag already in the chain keeps its first build.
    fn add(
        &mut self,
        unit: Unit,
        conf: &Path,
        cwd: &Path,
        strict: bool,
    ) -> Result<(), ConfigError> {
        let index = self.units.len();
        let resolved = resolve(index, &unit, conf, cwd);
        let mut added = false;
        for r in resolved {
            match r {
                Ok(b) => {
                    if self.by_tag.contains_key(&b.tag) {
                        continue;
                    }
                    self.by_tag.insert(b.tag.clone(), self.builds.len());
                    self.builds.push(b);
                    added = true;
                }
                Err(Unresolved::Config(e)) if strict => return Err(e),
                Err(Unresolved::Config(e)) => output::debug(format!(
                    "Not looking at a build of {} for build chains: {e}",
                    unit.command
                )),
                Err(Unresolved::Later(why)) => output::debug(format!(
                    "Not looking at a build of {} for build chains: {why}",
                    unit.command
                )),
            }
        }
        if added {
            self.units.push(unit);
        }
        Ok(())
    }

    /// Adds the builds of every unit of the configuration directory: each unit command that
    /// has its own file (and `start`), loaded without arguments. A unit for which `strict`
    /// holds must load and render; any other that does not is left out (at `-d`).
    fn add_directory(
        &mut self,
        conf: &ConfigDir,
        env: &Environment,
        cwd: &Path,
        strict: &dyn Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        let units_dir = conf.units_dir();
        for uc in conf.unit_commands() {
            let Some((unit, command)) = uc.rsplit_once('/') else {
                continue;
            };
            let own_file = ["yaml", "yml"].iter().any(|ext| {
                units_dir
                    .join(unit)
                    .join(format!("{command}.{ext}"))
                    .is_file()
            });
            if command == "test" || !(command == "start" || own_file) {
                continue;
            }
            let loaded = UnitCommand::parse(&uc)
                .and_then(|c| crate::generate::load_unit(conf, env, &c, &[], false));
            match loaded {
                Ok(Ok(u)) => self.add(u, conf.root(), cwd, strict(unit))?,
                Ok(Err(_)) => {}
                Err(e) if strict(unit) => return Err(e),
                Err(e) => output::debug(format!(
                    "Not looking at the builds of {uc} for build chains: {e}"
                )),
            }
        }
        Ok(())
    }

    /// The chain of a `run` of `unit`: its builds (a template error is returned) and those of
    /// the rest of the directory, when an order of `unit` may build (`build`, `create`,
    /// `start` of a container with `build`). A `FROM` cycle through the
    /// unit's builds is an error.
    pub fn for_run(
        conf: &ConfigDir,
        env: &Environment,
        cwd: &Path,
        unit: &Unit,
    ) -> Result<Chain, ConfigError> {
        use crate::unit::order::Action;
        let mut chain = Chain::default();
        // Only orders that may build look at the chain (a `stop` or `backup` needs none of it).
        let builds = unit.orders().any(|o| {
            matches!(o.action, Action::Build | Action::Create | Action::Start(_))
                && unit
                    .containers
                    .get(&o.container)
                    .is_some_and(|c| c.spec.build.is_some())
        });
        if !builds {
            return Ok(chain);
        }
        chain.add(unit.clone(), conf.root(), cwd, true)?;
        let own: Vec<usize> = (0..chain.builds.len()).collect();
        chain.add_directory(conf, env, cwd, &|_| false)?;
        chain.order(&own)?;
        Ok(chain)
    }

    /// The chain of `dstart build UNIT...` (every unit when `units` is empty) and the builds
    /// of those units in chain order, their bases first.
    pub fn for_units(
        conf: &ConfigDir,
        env: &Environment,
        cwd: &Path,
        units: &[String],
    ) -> Result<(Chain, Vec<usize>), ConfigError> {
        let available = conf.unit_names();
        for u in units {
            if !available.contains(u) {
                return Err(ConfigError::UnknownUnit {
                    unit: u.clone(),
                    available,
                });
            }
        }
        let wanted = |u: &str| units.is_empty() || units.iter().any(|w| w == u);
        let mut chain = Chain::default();
        chain.add_directory(conf, env, cwd, &wanted)?;
        let selected: Vec<usize> = (0..chain.builds.len())
            .filter(|&i| wanted(&chain.units[chain.builds[i].unit].command.unit))
            .collect();
        let order = chain.order(&selected)?;
        Ok((chain, order))
    }

    /// The build that makes `image`, if one of the chain does.
    pub fn find(&self, image: &str) -> Option<&Build> {
        self.by_tag
            .get(&with_default_tag(image))
            .map(|&i| &self.builds[i])
    }

    /// The builds that build `i`'s `FROM` images.
    pub fn bases(&self, i: usize) -> Vec<usize> {
        self.builds[i]
            .froms
            .iter()
            .filter_map(|(image, _)| self.by_tag.get(image).copied())
            .collect()
    }

    /// `selected` and the bases they need, each after its bases; a `FROM` cycle is an error
    /// naming it (`a:1 → b:1 → a:1`) and the Dockerfiles.
    pub fn order(&self, selected: &[usize]) -> Result<Vec<usize>, ConfigError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; self.builds.len()];
        let mut out = Vec::new();
        let mut path: Vec<usize> = Vec::new();
        // An explicit stack (node, next base to look at), so that no chain is too deep.
        for &start in selected {
            if marks[start] != Mark::New {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Open;
            path.push(start);
            while let Some((node, next)) = stack.last().copied() {
                let bases = self.bases(node);
                if let Some(&base) = bases.get(next) {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match marks[base] {
                        Mark::New => {
                            marks[base] = Mark::Open;
                            stack.push((base, 0));
                            path.push(base);
                        }
                        Mark::Open => {
                            let from = path.iter().position(|&p| p == base).unwrap_or(0);
                            return Err(self.cycle(&path[from..]));
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    out.push(node);
                    stack.pop();
                    path.pop();
                }
            }
        }
        Ok(out)
    }

    /// The error for the cycle `cycle` (each build's `FROM` names the next one's tag, the last
    /// one's the first one's).
    fn cycle(&self, cycle: &[usize]) -> ConfigError {
        let first = &self.builds[cycle[0]];
        let mut names: Vec<&str> = cycle.iter().map(|&i| self.builds[i].tag.as_str()).collect();
        names.push(&first.tag);
        let files: Vec<String> = cycle
            .iter()
            .map(|&i| {
                let b = &self.builds[i];
                format!("{} is built from {}", b.tag, b.file.display())
            })
            .collect();
        let next = &self.builds[cycle.get(1).copied().unwrap_or(cycle[0])].tag;
        let line = first
            .froms
            .iter()
            .find(|(image, _)| image == next)
            .map(|&(_, line)| line)
            .filter(|_| first.ctx.rendered.is_none());
        ConfigError::Invalid {
            location: Location {
                file: first.file.clone(),
                line,
                column: None,
            },
            message: format!(
                "the `FROM` lines of the builds form a cycle: {}",
                names.join(" → ")
            ),
            hint: Some(format!(
                "{}; an image cannot be built from itself",
                files.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        use crate::config::source::{Origin, PathSeg, Source};
        let source = std::sync::Arc::new(Source::new(
            "units/t/start.yaml",
            "web:\n  build: {path: b}\n".to_string(),
        ));
        let value = source.documents().unwrap()[0].get("web").unwrap().clone();
        let origin = Origin::new(source, 0, vec![PathSeg::Key("web".into())]);
        crate::unit::container::container_from_value("web", &value, &origin).unwrap()
    }

    /// A chain of builds named by `froms`: (tag, the images its `FROM` lines name).
    fn chain(builds: &[(&str, &[&str])]) -> Chain {
        let mut c = Chain::default();
        for (i, (tag, froms)) in builds.iter().enumerate() {
            let tag = with_default_tag(tag);
            c.by_tag.insert(tag.clone(), i);
            c.builds.push(Build {
                unit: 0,
                container: format!("c{i}"),
                tag,
                spec: spec(),
                ctx: ContextSpec {
                    dir: PathBuf::from("/conf/services"),
                    dockerfile: "Dockerfile".into(),
                    rendered: None,
                    template: None,
                },
                inputs: BuildInputs::default(),
                froms: froms
                    .iter()
                    .enumerate()
                    .map(|(n, f)| (with_default_tag(f), n + 1))
                    .collect(),
                file: PathBuf::from(format!("/conf/services/b{i}/Dockerfile")),
            });
        }
        c
    }

    fn tags(c: &Chain, order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| c.builds[i].tag.clone()).collect()
    }

    #[test]
    fn bases_come_first_and_only_needed_ones() {
        let c = chain(&[
            ("me/site:1", &["me/base:1"]),
            ("me/base:1", &["debian"]),
            ("me/other", &["me/site:1", "me/base:1"]),
            ("me/alone", &["scratch"]),
        ]);
        assert_eq!(
            tags(&c, &c.order(&[0]).unwrap()),
            ["me/base:1", "me/site:1"]
        );
        assert_eq!(
            tags(&c, &c.order(&[2, 3]).unwrap()),
            [
                "me/base:1",
                "me/site:1",
                "me/other:latest",
                "me/alone:latest"
            ]
        );
        assert_eq!(c.bases(2), [0, 1]);
        assert!(c.find("me/other").is_some() && c.find("debian").is_none());
    }

    #[test]
    fn a_cycle_is_an_error_naming_it_and_the_files() {
        let c = chain(&[
            ("a:1", &["b:1"]),
            ("b:1", &["c:1"]),
            ("c:1", &["a:1"]),
            ("d:1", &["a:1"]),
        ]);
        let err = c.order(&[3]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.ends_with(
                "/conf/services/b0/Dockerfile:1: the `FROM` lines of the builds form a cycle: a:1 → b:1 → c:1 → a:1"
            ),
            "{text}"
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("b:1 is built from /conf/services/b1/Dockerfile"),
            "{hint}"
        );
        let own = chain(&[("a:1", &["a:1"])]);
        assert!(
            own.order(&[0])
                .unwrap_err()
                .to_string()
                .contains("a:1 → a:1")
        );
    }
}
