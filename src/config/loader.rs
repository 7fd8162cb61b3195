//! Reading a unit command (ORIGINAL §1.5–1.8): resolve the base file, read `globals.yaml`,
//! parse the unit arguments, render the file with tera, split its YAML documents and resolve
//! `import`s (shallow merge at container level, later wins, own file wins, cycles are errors).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value;

use crate::config::arguments::{self, ParsedArgs};
use crate::config::catalog::{GENERATED, UPDATE, UPGRADE};
pub use crate::config::command::UnitCommand;
use crate::config::command::tempid;
use crate::config::discover::ConfigDir;
use crate::config::environment::Environment;
use crate::config::globals::{ArgumentEntry, ArgumentSpec, Globals};
use crate::config::modes::{self, ModeConfig};
use crate::config::source::{Origin, PathSeg, Source, key_string, yaml_to_json};
use crate::config::template::{self, TemplateDirs};
use crate::error::{ConfigError, Location};

/// The built-in test variants (ORIGINAL §6.1).
pub const TEST_VARIANTS: [&str; 5] = ["default", "full", "check", "production", "restore"];

/// Which file a unit command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFile {
    /// `units/<unit>/<command>.yaml` (or the flat `units/<unit>.yaml` for `start`).
    Explicit(PathBuf),
    /// A generated command: the start file, from which the orders are derived.
    Generated { start: PathBuf, command: String },
}

impl BaseFile {
    pub fn path(&self) -> &Path {
        match self {
            BaseFile::Explicit(p) | BaseFile::Generated { start: p, .. } => p,
        }
    }
}

/// A unit command after rendering and imports, before typing.
#[derive(Debug)]
pub struct RawUnit {
    pub command: UnitCommand,
    pub base: BaseFile,
    /// Container name → (spec as written, where it came from), imports merged.
    pub composition: IndexMap<String, (Value, Origin)>,
    /// The items of the orders document.
    pub orders: Vec<(Value, Origin)>,
    /// Whether the base file had an orders document at all.
    pub has_orders_document: bool,
    /// Active mode atoms and variant tags.
    pub active: BTreeSet<String>,
    /// Whether tokens were given (filtering applies).
    pub filtering: bool,
    /// Tokens still to be checked against variant tags (and test variants).
    pub pending: Vec<String>,
    pub modes: ModeConfig,
    /// Built-in test variants requested (`test` command only).
    pub test_variants: Vec<String>,
    /// The template environment, with the unit's `globals.yaml` `environment` on top.
    pub environment: Environment,
    /// The rendered base file.
    pub source: Arc<Source>,
}

/// The outcome of reading a unit command.
#[derive(Debug)]
pub enum Loaded {
    /// `-h` was given to the unit parser.
    Help(String),
    /// `--print-substitutions`: the rendered base file.
    Substitutions(String),
    Unit(Box<RawUnit>),
}

/// Where a unit file gets its `args`.
#[derive(Debug, Clone)]
enum ArgsSource<'a> {
    /// The command line (the unit command that was run).
    Cli(&'a [String]),
    /// The values parsed for the importing file (same unit).
    Inherit(Map<String, Json>),
    /// Defaults of the unit's own parser (an import from another unit).
    Defaults,
}

/// A rendered unit file.
struct Rendered {
    source: Arc<Source>,
    args: Map<String, Json>,
    environment: Environment,
}

/// Reads unit commands of one configuration directory with one environment.
pub struct Loader<'a> {
    pub conf: &'a ConfigDir,
    pub env: &'a Environment,
}

impl Loader<'_> {
    /// Reads `unit_command` with the unit arguments `argv`. With `substitutions_only`, stops
    /// after rendering and returns the text.
    pub fn load(
        &self,
        unit_command: &UnitCommand,
        argv: &[String],
        substitutions_only: bool,
    ) -> Result<Loaded, ConfigError> {
        let tempid = tempid(&unit_command.to_string());
        if unit_command.command == "test" && self.env.get_str("tempid") != Some(tempid.clone()) {
            // A test run's pseudonames are in the template environment (ORIGINAL §6.2), above
            // `osenv` and below the unit's globals `environment`.
            let mut env = self.env.clone();
            env.set("tempid", Json::String(tempid));
            let loader = Loader {
                conf: self.conf,
                env: &env,
            };
            return loader.load(unit_command, argv, substitutions_only);
        }
        let base = self.base_file(&unit_command.unit, &unit_command.command)?;
        let sections = sections_for(&base, &unit_command.command);
        let globals = self.globals(&unit_command.unit, &BTreeSet::new())?;
        let modes = self.modes_of(&unit_command.unit, globals.as_ref(), &sections)?;

        let mut tokens = unit_command.tokens.clone();
        let mut test_variants = Vec::new();
        if unit_command.command == "test" {
            tokens.retain(|t| {
                if TEST_VARIANTS.contains(&t.as_str()) {
                    test_variants.push(t.clone());
                    false
                } else {
                    true
                }
            });
        }
        let expanded = modes::expand(&tokens, &modes);
        // globals.yaml may itself use `modes`: render it again with the active set.
        let globals = if self.globals_mention_modes(&unit_command.unit) {
            self.globals(&unit_command.unit, &expanded.active)?
        } else {
            globals
        };

        let mut stack = vec![match &base {
            BaseFile::Explicit(_) => unit_command.base(),
            BaseFile::Generated { .. } => format!("{}/start", unit_command.unit),
        }];
        let rendered = match self.render(
            &unit_command.unit,
            &base,
            &sections,
            globals.as_ref(),
            &ArgsSource::Cli(argv),
            &expanded.active,
            &unit_command.to_string(),
        )? {
            Ok(r) => r,
            Err(help) => return Ok(Loaded::Help(help)),
        };
        if substitutions_only {
            return Ok(Loaded::Substitutions(rendered.source.text.clone()));
        }
        let (composition, orders, has_orders_document) = self.documents(
            &unit_command.unit,
            &rendered,
            &expanded.active,
            &mut stack,
            true,
        )?;
        Ok(Loaded::Unit(Box::new(RawUnit {
            command: unit_command.clone(),
            base,
            composition,
            orders,
            has_orders_document,
            filtering: !tokens.is_empty(),
            active: expanded.active,
            pending: expanded.pending,
            modes,
            test_variants,
            environment: rendered.environment,
            source: rendered.source,
        })))
    }

    /// The mode atoms and groups `unit/command` accepts (ORIGINAL §5).
    pub fn mode_config(&self, unit: &str, command: &str) -> Result<ModeConfig, ConfigError> {
        let base = self.base_file(unit, command)?;
        let globals = self.globals(unit, &BTreeSet::new())?;
        self.modes_of(unit, globals.as_ref(), &sections_for(&base, command))
    }

    fn modes_of(
        &self,
        unit: &str,
        globals: Option<&Globals>,
        sections: &[&str],
    ) -> Result<ModeConfig, ConfigError> {
        let file = self.conf.globals_file(unit);
        modes::mode_config(globals, sections)
            .map(|cfg| ModeConfig { file, ..cfg })
            .map_err(|e| match e {
                // Name the file the groups are written in, not just "globals.yaml".
                ConfigError::UndefinedAtoms { atoms, .. } => ConfigError::UndefinedAtoms {
                    context: self.conf.globals_file(unit).map_or_else(
                        || "globals.yaml".into(),
                        |p| {
                            // The line of the first group that names an undefined atom.
                            let text = std::fs::read_to_string(&p).unwrap_or_default();
                            let line = atoms.first().and_then(|a| {
                                crate::config::source::line_holding(&text, "groups", a)
                            });
                            Location {
                                file: p,
                                line,
                                column: None,
                            }
                            .to_string()
                        },
                    ),
                    atoms,
                },
                other => other,
            })
    }

    /// The file `unit/command` reads.
    pub fn base_file(&self, unit: &str, command: &str) -> Result<BaseFile, ConfigError> {
        if command != "test" {
            if let Some(p) = self.conf.explicit_file(unit, command) {
                return Ok(BaseFile::Explicit(p));
            }
        }
        // `upgrade` is generated for a unit with an `update` command; it goes through every
        // unit, so its own containers are those of `start` (or `update` without one).
        if command == UPGRADE {
            if let Some(update) = self.conf.explicit_file(unit, UPDATE) {
                return Ok(BaseFile::Generated {
                    start: self.conf.start_file(unit).unwrap_or(update),
                    command: command.to_string(),
                });
            }
        }
        if let Some(start) = self.conf.start_file(unit) {
            if command == "start" {
                return Ok(BaseFile::Explicit(start));
            }
            if GENERATED.contains(&command) {
                return Ok(BaseFile::Generated {
                    start,
                    command: command.to_string(),
                });
            }
        }
        let units = self.conf.unit_names();
        if units.iter().any(|u| u == unit) {
            Err(ConfigError::UnknownCommand {
                unit: unit.to_string(),
                command: command.to_string(),
                available: self.conf.commands_of(unit),
            })
        } else {
            Err(ConfigError::UnknownUnit {
                unit: unit.to_string(),
                available: units,
            })
        }
    }

    fn globals_mention_modes(&self, unit: &str) -> bool {
        self.conf
            .globals_file(unit)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|t| t.contains("modes") && template::is_template(&t))
    }

    /// Reads `units/<unit>/globals.yaml`, rendered with the environment and `modes`.
    fn globals(
        &self,
        unit: &str,
        modes: &BTreeSet<String>,
    ) -> Result<Option<Globals>, ConfigError> {
        let Some(path) = self.conf.globals_file(unit) else {
            return Ok(None);
        };
        let text = read(&path)?;
        let mut ctx = self.env.vars().clone();
        ctx.insert("modes".into(), modes_json(modes));
        let dirs = TemplateDirs {
            dirs: vec![self.conf.units_dir()],
        };
        let rendered = template::render(&path, &text, &Json::Object(ctx), &dirs)?;
        let source = Arc::new(Source::new(&path, rendered));
        let docs = source.documents()?;
        if docs.len() > 1 {
            return Err(ConfigError::Invalid {
                location: source.document_start(1),
                message: "globals.yaml holds one YAML document, found more".into(),
                hint: None,
            });
        }
        let value = docs.into_iter().next().unwrap_or(Value::Null);
        if value.is_null() {
            return Ok(Some(Globals::default()));
        }
        let origin = Origin::new(source, 0, Vec::new());
        origin
            .deserialize::<Globals>(&value, "globals.yaml")
            .map(Some)
    }

    /// Renders a unit file. `Err(help)` inside means the unit parser was asked for `-h`.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        unit: &str,
        base: &BaseFile,
        sections: &[&str],
        globals: Option<&Globals>,
        args_source: &ArgsSource<'_>,
        active: &BTreeSet<String>,
        full_command: &str,
    ) -> Result<Result<Rendered, String>, ConfigError> {
        let path = base.path();
        let text = read(path)?;
        let dirs = TemplateDirs {
            dirs: self.template_dirs(globals),
        };

        // The third-document parser (ORIGINAL §1.8) is read first, with the environment only.
        let mut specs: Vec<ArgumentSpec> =
            globals.map(|g| g.arguments(sections)).unwrap_or_default();
        let mut third_specs = 0;
        if let Some(third) = third_document(&text) {
            let ctx = Json::Object(self.env.vars().clone());
            let rendered = template::render(path, &third, &ctx, &dirs)?;
            let source = Arc::new(Source::new(path, rendered));
            let docs = source.documents()?;
            if let Some(doc) = docs.into_iter().next().filter(|d| !d.is_null()) {
                let origin = Origin::new(source, 0, Vec::new());
                let entries: Vec<ArgumentEntry> =
                    origin.deserialize(&doc, "the third document (argument list)")?;
                specs.extend(entries.iter().map(|e| e.spec().clone()));
                third_specs = entries.len();
            }
        }

        let program = format!("dstart run {full_command}");
        // The file that declares the arguments: globals.yaml, unless only the third document
        // of the unit file does.
        let declared_in = match self.conf.globals_file(unit) {
            Some(g) if specs.len() > third_specs => g,
            _ => path.to_path_buf(),
        };
        let args = match args_source {
            ArgsSource::Inherit(map) => map.clone(),
            ArgsSource::Cli(argv) if specs.is_empty() && !argv.is_empty() => {
                return Err(ConfigError::UnitArguments {
                    file: None,
                    message: format!(
                        "`{full_command}` takes no arguments, but got {}",
                        argv.iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    hint: Some(format!(
                        "a unit declares its arguments under `parser` in `units/{unit}/globals.yaml`"
                    )),
                });
            }
            ArgsSource::Cli(argv) => {
                match arguments::parse(&program, &declared_in, &specs, argv)? {
                    ParsedArgs::Values(v) => v,
                    ParsedArgs::Help(h) => return Ok(Err(h)),
                }
            }
            ArgsSource::Defaults => match arguments::parse(&program, &declared_in, &specs, &[])? {
                ParsedArgs::Values(v) => v,
                ParsedArgs::Help(h) => return Ok(Err(h)),
            },
        };

        // Precedence, lowest first: args and modes, the environment, globals `environment`.
        let mut ctx = Map::new();
        ctx.insert("args".into(), Json::Object(args.clone()));
        ctx.insert("modes".into(), modes_json(active));
        for (k, v) in self.env.vars() {
            ctx.insert(k.clone(), v.clone());
        }
        let mut environment = self.env.clone();
        if let Some(g) = globals {
            for (k, v) in &g.environment {
                if let Some(key) = key_string(k) {
                    let json = yaml_to_json(v);
                    ctx.insert(key.clone(), json.clone());
                    environment.set(&key, json);
                }
            }
        }
        let rendered = template::render(path, &text, &Json::Object(ctx), &dirs)?;
        Ok(Ok(Rendered {
            source: Arc::new(Source::new(path, rendered)),
            args,
            environment,
        }))
    }

    fn template_dirs(&self, globals: Option<&Globals>) -> Vec<PathBuf> {
        let mut dirs = vec![self.conf.units_dir()];
        if let Some(extra) = globals
            .and_then(|g| g.jinja.as_ref())
            .and_then(|j| j.macroloader_path.as_ref())
        {
            let p = PathBuf::from(extra);
            dirs.push(if p.is_absolute() {
                p
            } else {
                self.conf.root().join(p)
            });
        }
        dirs
    }

    /// Splits the rendered file into composition and orders and resolves its imports.
    #[allow(clippy::type_complexity)]
    fn documents(
        &self,
        unit: &str,
        rendered: &Rendered,
        active: &BTreeSet<String>,
        stack: &mut Vec<String>,
        top: bool,
    ) -> Result<
        (
            IndexMap<String, (Value, Origin)>,
            Vec<(Value, Origin)>,
            bool,
        ),
        ConfigError,
    > {
        let source = &rendered.source;
        let docs = source.documents()?;
        if docs.len() > 3 {
            return Err(Origin::new(Arc::clone(source), 3, Vec::new()).invalid(format!(
                "a unit file holds at most three YAML documents (composition, orders, arguments), found {}",
                docs.len()
            )));
        }
        let mut docs = docs.into_iter();
        let composition_doc = docs.next().unwrap_or(Value::Null);
        let orders_doc = docs.next();
        let has_orders_document = orders_doc.is_some();
        let corigin = Origin::new(Arc::clone(source), 0, Vec::new());

        let mut own: IndexMap<String, (Value, Origin)> = IndexMap::new();
        let mut imports: Vec<(String, Origin)> = Vec::new();
        match composition_doc {
            Value::Null => {}
            Value::Mapping(map) => {
                for (k, v) in map {
                    let Some(name) = key_string(&k) else {
                        return Err(corigin.invalid("a container name must be a string"));
                    };
                    let origin = corigin.key(&name);
                    if name == "import" {
                        match &v {
                            Value::String(s) => imports.push((s.clone(), origin)),
                            Value::Sequence(items) => {
                                for (i, item) in items.iter().enumerate() {
                                    let Some(s) = item.as_str() else {
                                        return Err(origin.child(PathSeg::Index(i)).invalid(
                                            "`import` lists unit commands like `web/start`",
                                        ));
                                    };
                                    imports.push((s.to_string(), origin.child(PathSeg::Index(i))));
                                }
                            }
                            _ => {
                                return Err(origin.invalid("`import` is a unit command like `web/start`, or a list of them"));
                            }
                        }
                    } else if name.starts_with('.') {
                        // A hidden block, for YAML anchors (`.defaults: &defaults {...}`);
                        // no container name starts with a dot.
                    } else {
                        own.insert(name, (v, origin));
                    }
                }
            }
            other => {
                return Err(corigin.invalid_with_hint(
                    format!(
                        "the composition document (the first one) must be a mapping of containers, found {}",
                        crate::config::environment::json_kind(&yaml_to_json(&other))
                    ),
                    "a unit file is a mapping of containers, then `---`, then the list of orders",
                ));
            }
        }

        let mut merged: IndexMap<String, (Value, Origin)> = IndexMap::new();
        for (target, origin) in imports {
            let imported = self.import(unit, &target, &origin, rendered, active, stack)?;
            for (k, v) in imported {
                merged.insert(k, v);
            }
        }
        for (k, v) in own {
            merged.insert(k, v);
        }

        let mut orders = Vec::new();
        match orders_doc {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    orders.push((
                        item,
                        Origin::new(Arc::clone(source), 1, vec![PathSeg::Index(i)]),
                    ));
                }
            }
            Some(other) if top || !other.is_null() => {
                return Err(Origin::new(Arc::clone(source), 1, Vec::new()).invalid_with_hint(
                    format!(
                        "the orders document (the second one) must be a list of orders, found {}",
                        crate::config::environment::json_kind(&yaml_to_json(&other))
                    ),
                    "write each order as a list item: `- web: {command: start}`",
                ));
            }
            Some(_) => {}
        }
        Ok((merged, orders, has_orders_document))
    }

    /// Reads the composition of an imported unit command.
    fn import(
        &self,
        from_unit: &str,
        target: &str,
        origin: &Origin,
        parent: &Rendered,
        active: &BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Result<IndexMap<String, (Value, Origin)>, ConfigError> {
        let uc = UnitCommand::parse(target).map_err(|_| {
            origin.invalid_with_hint(
                format!("`import: {target}` is not UNIT/COMMAND"),
                "import a unit command such as `web/start`",
            )
        })?;
        if !uc.tokens.is_empty() {
            return Err(
                origin.invalid(format!("`import: {target}`: an import takes no `:` tokens"))
            );
        }
        let key = uc.base();
        if let Some(pos) = stack.iter().position(|s| *s == key) {
            let mut chain: Vec<String> = stack[pos..].to_vec();
            chain.push(key);
            return Err(ConfigError::ImportCycle {
                location: origin.location(),
                chain,
            });
        }
        let base = self.base_file(&uc.unit, &uc.command).map_err(|e| {
            let hint = e.hint();
            ConfigError::Invalid {
                location: origin.location(),
                message: format!("`import: {target}`: {e}"),
                hint,
            }
        })?;
        let sections = sections_for(&base, &uc.command);
        let globals = self.globals(&uc.unit, active)?;
        let args_source = if uc.unit == from_unit {
            ArgsSource::Inherit(parent.args.clone())
        } else {
            ArgsSource::Defaults
        };
        let rendered = self
            .render(
                &uc.unit,
                &base,
                &sections,
                globals.as_ref(),
                &args_source,
                active,
                &key,
            )
            .map_err(|e| match e {
                ConfigError::UnitArguments { .. } | ConfigError::ArgumentSpec { .. } => {
                    ConfigError::ImportArguments {
                        location: origin.location(),
                        importer: stack.last().cloned().unwrap_or_default(),
                        target: key.clone(),
                        source: Box::new(e),
                    }
                }
                other => other,
            })?;
        let Ok(rendered) = rendered else {
            unreachable!("imports never print help")
        };
        stack.push(key);
        let (composition, _orders, _) =
            self.documents(&uc.unit, &rendered, active, stack, false)?;
        stack.pop();
        Ok(composition)
    }
}

/// The parser and mode sections of a command: `start` too for generated commands.
fn sections_for<'a>(base: &BaseFile, command: &'a str) -> Vec<&'a str> {
    match base {
        BaseFile::Explicit(_) => vec![command],
        BaseFile::Generated { .. } => vec!["start", command],
    }
}

fn modes_json(active: &BTreeSet<String>) -> Json {
    Json::Array(active.iter().cloned().map(Json::String).collect())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    crate::config::source::read_text(path)
}

/// The text of the third YAML document, if the file has one.
fn third_document(text: &str) -> Option<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            docs.push(String::new());
            if let Some(rest) = line.strip_prefix("---") {
                let rest = rest.trim();
                if !rest.is_empty() {
                    let last = docs.last_mut().expect("non-empty");
                    last.push_str(rest);
                    last.push('\n');
                }
            }
        } else {
            let last = docs.last_mut().expect("non-empty");
            last.push_str(line);
            last.push('\n');
        }
    }
    // A leading `---` before the first document does not count.
    if text.trim_start().starts_with("---") {
        docs.remove(0);
    }
    docs.into_iter().nth(2).filter(|d| !d.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn third_document_is_found() {
        assert_eq!(
            third_document("a: 1\n---\n- x\n---\n- add_argument: {name: y}\n").as_deref(),
            Some("- add_argument: {name: y}\n")
        );
        assert_eq!(third_document("a: 1\n---\n- x\n"), None);
        assert_eq!(third_document("---\na: 1\n---\n- x\n"), None);
    }
}
