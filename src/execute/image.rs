//! Image orders: `build`, `remove_image`, `tag`, `commit`, `push`, and the image a `create`
//! needs (built from its `build` spec, else pulled as its `pull:` policy says, see `pull.rs`).
//! No order builds or pulls an image that already exists unless asked.

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::{BuildEvent, BuildParams, ImageInfo};
use crate::execute::buildhash::{
    self, BuildDecision, BuildHash, BuildInputs, LABEL_BUILD_HASH, LABEL_BUILD_PARTS,
    LABEL_BUILD_REPOSITORY,
};
use crate::execute::chain::{self, built_name};
use crate::execute::context::{ContextSpec, tar_stream};
use crate::execute::dockerfile;
use crate::execute::{OrderError, OrderResult, UnitRun, pull, resolve_build_path, retention};
use crate::output;
use crate::unit::container::{ContainerSpec, PullPolicy, split_image, with_default_tag};
use crate::unit::order::{CommitArgs, PushArgs, RemoveImageArgs, TagArgs};

/// The image name `spec` is built as or created from.
fn image_of(spec: &ContainerSpec) -> OrderResult<String> {
    spec.build
        .as_ref()
        .and_then(|b| b.tag.clone())
        .or_else(|| spec.image.clone())
        .ok_or_else(|| OrderError::failed(format!("container `{}` has no image", spec.name)))
}

/// `build`: builds the image when its inputs changed (`dstart.build-hash`), or pulls it
/// unless it exists.
pub async fn build_order(run: &UnitRun<'_>, name: &str) -> OrderResult {
    let spec = run.spec(name)?;
    match built_name(spec) {
        Some(img) => {
            let _guard = run.image_lock(&img).await;
            if spec.build.is_some() {
                return Box::pin(build_if_changed(run, spec, &img)).await;
            }
            Box::pin(pull::refresh(run, spec, &img)).await?;
            if run.engine().image(&img).await?.is_some() {
                output::debug(format!("Image {img} already exists. (skipped)"));
                return Ok(());
            }
            Box::pin(make_image(run, spec, &img)).await
        }
        // An untagged build: always build (nothing names the result).
        None => build(run, spec).await,
    }
}

/// The image of a container to be created, made if it is missing (and rebuilt when it is
/// built by the unit and its inputs changed).
pub async fn ensure_image(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    image: &str,
) -> OrderResult<ImageInfo> {
    let _guard = run.image_lock(image).await;
    if spec.build.is_some() {
        Box::pin(build_if_changed(run, spec, image)).await?;
    } else {
        Box::pin(pull::refresh(run, spec, image)).await?;
        if let Some(info) = run.engine().image(image).await? {
            return Ok(info);
        }
        output::debug(format!(
            "The image {image} to create the container {} did not exist.  Trying to build it...",
            spec.name
        ));
        Box::pin(make_image(run, spec, image)).await?;
    }
    run.engine().image(image).await?.ok_or_else(|| {
        OrderError::failed(format!(
            "the image `{image}` is still missing after it was made"
        ))
    })
}

/// Before `start` compares an existing container with its image: the image rebuilt when its
/// inputs changed, or pulled with `pull: always`.
pub async fn refresh(run: &UnitRun<'_>, spec: &ContainerSpec, image: &str) -> OrderResult {
    let _guard = run.image_lock(image).await;
    if spec.build.is_some() {
        Box::pin(build_if_changed(run, spec, image)).await
    } else {
        Box::pin(pull::refresh(run, spec, image)).await
    }
}

/// Builds `image` from `spec`'s build directory unless the image on the engine carries the
/// build hash of the current inputs, after the bases of the chain it is built from. Once per
/// image and run. The caller holds the image lock.
async fn build_if_changed(run: &UnitRun<'_>, spec: &ContainerSpec, image: &str) -> OrderResult {
    if run.image_locks.built(image) {
        output::debug(format!("Image {image} was built by this run already"));
        return Ok(());
    }
    let prepared = prepare(run, spec)?;
    Box::pin(ensure_bases(run, image, &prepared)).await?;
    build_prepared(run, spec, image, prepared, Asked::Own)
        .await
        .map(|_| ())
}

/// What [`build_prepared`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Built,
    Unchanged,
}

/// Why a build is looked at, besides its own inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked<'a> {
    /// An order or `dstart build` asks for it.
    Own,
    /// It is the base of this image, built first (said at info level).
    BaseOf(&'a str),
    /// `dstart build --pull` just pulled another image under this `FROM` name: it rebuilds
    /// whatever its hash says (the hash holds the IDs of the bases dstart built only).
    Pulled(&'a str),
}

/// Builds `image` from `prepared` unless the image on the engine carries the build hash of
/// these inputs (`--no-cache` rebuilds); old builds go as `BUILD_KEEP` says. The caller holds
/// the image lock.
pub async fn build_prepared(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    image: &str,
    prepared: Prepared,
    asked: Asked<'_>,
) -> OrderResult<Outcome> {
    let hash = input_hash(run, &prepared).await?;
    let existing = run.engine().image(image).await?;
    let label = existing
        .as_ref()
        .map(|i| i.labels.get(LABEL_BUILD_HASH).map(String::as_str));
    let decision = match (
        buildhash::decide(image, label, &hash.full, run.rt.no_cache),
        asked,
    ) {
        (BuildDecision::Skip(_), Asked::Pulled(from)) => {
            BuildDecision::Build(format!("another image was pulled as its FROM image {from}"))
        }
        (decision, _) => decision,
    };
    match decision {
        BuildDecision::Skip(why) => {
            output::debug(why);
            Ok(Outcome::Unchanged)
        }
        BuildDecision::Build(why) => {
            match asked {
                Asked::BaseOf(of) => output::info(format!(
                    "Building the base image {image} of {of} first: {why}"
                )),
                Asked::Own | Asked::Pulled(_) => output::debug(format!("Building because {why}")),
            }
            run_build(run, spec, prepared, Some(hash)).await?;
            run.image_locks.note_built(image);
            Box::pin(retention::after_build(run, image)).await;
            Ok(Outcome::Built)
        }
    }
}

/// Before `image` is built from `prepared`: every `FROM` image that another build of the
/// configuration directory makes is brought up to date first (its own bases before it).
async fn ensure_bases(run: &UnitRun<'_>, image: &str, prepared: &Prepared) -> OrderResult {
    let chain = &run.rt.chain;
    if chain.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&prepared.inputs.dockerfile).into_owned();
    let own = with_default_tag(image);
    for from in dockerfile::from_images(&text, &prepared.inputs.buildargs) {
        let Some(base) = chain.find(&from) else {
            continue;
        };
        if base.tag == own {
            continue;
        }
        let _guard = run.image_lock(&base.tag).await;
        if run.image_locks.built(&base.tag) {
            continue;
        }
        let base_prepared = Prepared::of(base);
        Box::pin(ensure_bases(run, &base.tag, &base_prepared)).await?;
        output::debug(format!(
            "{own} is built from {}, which unit {} builds",
            base.tag, chain.units[base.unit].command.unit
        ));
        build_prepared(
            run,
            &base.spec,
            &base.tag,
            base_prepared,
            Asked::BaseOf(&own),
        )
        .await?;
    }
    Ok(())
}

/// Why `run --plan` says `image` would be built from `spec` (empty: it is up to date): its
/// bases in the chain first (`base IMAGE changed` when one would be built), then its own build
/// hash against the image's labels (`absent`, `not built by dstart`, `Dockerfile changed`,
/// `context changed`, `base IMAGE changed`, `inputs changed`). Read only; `memo` keeps the
/// answers per image.
#[allow(clippy::implicit_hasher)]
pub async fn plan_build(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    image: &str,
    memo: &mut HashMap<String, Vec<String>>,
) -> OrderResult<Vec<String>> {
    let prepared = prepare(run, spec)?;
    plan_prepared(run, image, prepared, memo).await
}

async fn plan_prepared(
    run: &UnitRun<'_>,
    image: &str,
    prepared: Prepared,
    memo: &mut HashMap<String, Vec<String>>,
) -> OrderResult<Vec<String>> {
    let own = with_default_tag(image);
    if let Some(known) = memo.get(&own) {
        return Ok(known.clone());
    }
    let mut reasons: Vec<String> = Vec::new();
    let text = String::from_utf8_lossy(&prepared.inputs.dockerfile).into_owned();
    for from in dockerfile::from_images(&text, &prepared.inputs.buildargs) {
        let Some(base) = run.rt.chain.find(&from) else {
            continue;
        };
        if base.tag == own {
            continue;
        }
        let base_reasons =
            Box::pin(plan_prepared(run, &base.tag, Prepared::of(base), memo)).await?;
        if !base_reasons.is_empty() {
            reasons.push(format!("base {from} changed"));
        }
    }
    let hash = input_hash(run, &prepared).await?;
    match run.engine().image(image).await? {
        None => reasons = vec!["absent".into()],
        Some(info) => match info.labels.get(LABEL_BUILD_HASH) {
            None => reasons.push("not built by dstart".into()),
            Some(old) if *old == hash.full => {}
            Some(_) => {
                let parts = info
                    .labels
                    .get(LABEL_BUILD_PARTS)
                    .map(|l| buildhash::changed_parts(l, &hash))
                    .unwrap_or_default();
                for p in parts {
                    if !reasons.contains(&p) {
                        reasons.push(p);
                    }
                }
                if reasons.is_empty() {
                    reasons.push("inputs changed".into());
                }
            }
        },
    }
    if reasons.is_empty() && run.rt.no_cache {
        reasons.push("--no-cache".into());
    }
    memo.insert(own, reasons.clone());
    Ok(reasons)
}

/// Builds the missing image of `spec`, or pulls it unless its policy is `never`.
async fn make_image(run: &UnitRun<'_>, spec: &ContainerSpec, image: &str) -> OrderResult {
    if spec.build.is_some() {
        return build(run, spec).await;
    }
    if pull::policy(run, spec) == PullPolicy::Never {
        return Err(OrderError::hinted(
            format!(
                "the image `{image}` of `{}` is not on the engine, and `pull: never` forbids pulling it",
                spec.name
            ),
            "load or build the image first, or run with `--pull missing`",
        ));
    }
    if run.image_locks.first_pull(image) {
        pull::pull(run, spec, image).await
    } else {
        Err(OrderError::failed(format!(
            "the image `{image}` of `{}` is missing although this run pulled it",
            spec.name
        )))
    }
}

/// `FROM` lines naming a key of `images` (compared with their tags) name its value instead.
/// Returns the rewritten Dockerfile, or `None` when nothing changed.
#[allow(clippy::implicit_hasher)]
pub fn rewrite_from(text: &str, images: &HashMap<String, String>) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line.split_whitespace().collect();
        let image = words
            .first()
            .filter(|w| w.eq_ignore_ascii_case("FROM"))
            .and_then(|_| words[1..].iter().find(|w| !w.starts_with("--")));
        match image.and_then(|i| images.get(&with_default_tag(i)).map(|new| (i, new))) {
            Some((old, new)) => {
                changed = true;
                let at = line.find(old).unwrap_or(0);
                out.push_str(&line[..at]);
                out.push_str(new);
                out.push_str(&line[at + old.len()..]);
            }
            None => out.push_str(line),
        }
    }
    changed.then_some(out)
}

/// Builds a test's image from the test's images of the unit (see [`rewrite_from`]).
fn rebase(run: &UnitRun<'_>, mut ctx: ContextSpec) -> OrderResult<ContextSpec> {
    if run.naming.images.is_empty() {
        return Ok(ctx);
    }
    let text = if let Some(bytes) = &ctx.rendered {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        let path = ctx.dir.join(&ctx.dockerfile);
        std::fs::read_to_string(&path)
            .map_err(OrderError::io(format!("reading `{}`", path.display())))?
    };
    if let Some(new) = rewrite_from(&text, &run.naming.images) {
        output::debug(format!(
            "Building from the test's images of the unit:\n{new}"
        ));
        ctx.rendered = Some(new.into_bytes());
    }
    Ok(ctx)
}

/// A build ready to hash and run: its context and the inputs besides the context files.
pub struct Prepared {
    pub ctx: ContextSpec,
    pub inputs: BuildInputs,
}

impl Prepared {
    /// A build of the chain, resolved before the run.
    pub fn of(build: &chain::Build) -> Self {
        Prepared {
            ctx: build.ctx.clone(),
            inputs: build.inputs.clone(),
        }
    }
}

/// Resolves the build directory of `spec` and renders its Dockerfile.
fn prepare(run: &UnitRun<'_>, spec: &ContainerSpec) -> OrderResult<Prepared> {
    let b = spec
        .build
        .as_ref()
        .ok_or_else(|| OrderError::failed(format!("container `{}` has no `build`", spec.name)))?;
    let dir = resolve_build_path(run.rt, &b.path);
    if !dir.is_dir() {
        return Err(OrderError::failed(format!(
            "the build directory `{}` of `{}` does not exist",
            dir.display(),
            spec.name
        )));
    }
    let ctx = dockerfile::dockerfile(
        run.unit.environment.vars(),
        &run.rt.conf.units_dir(),
        spec,
        &dir,
    )?;
    if let Some(t) = &ctx.template {
        output::debug(format!(
            "Rendered {} into the Dockerfile",
            dir.join(t).display()
        ));
    }
    let ctx = rebase(run, ctx)?;
    let inputs = dockerfile::inputs(spec, &ctx)?;
    Ok(Prepared { ctx, inputs })
}

/// The build hash of `prepared`: the IDs of the `FROM` images dstart built are looked up on
/// the engine, the context is read on a blocking thread.
async fn input_hash(run: &UnitRun<'_>, prepared: &Prepared) -> OrderResult<BuildHash> {
    let text = String::from_utf8_lossy(&prepared.inputs.dockerfile).into_owned();
    let mut inputs = prepared.inputs.clone();
    for from in dockerfile::from_images(&text, &inputs.buildargs) {
        if let Some(info) = run.engine().image(&from).await? {
            if info.labels.contains_key(LABEL_BUILD_HASH) {
                inputs.from_ids.insert(from, info.id);
            }
        }
    }
    let ctx = prepared.ctx.clone();
    let what = ctx.dir.display().to_string();
    let cache = crate::execute::hashcache::default_dir();
    tokio::task::spawn_blocking(move || {
        buildhash::build_hash_cached(&inputs, &ctx, cache.as_deref())
    })
    .await
    .map_err(|e| OrderError::failed(format!("hashing the build context `{what}`: {e}")))?
    .map_err(OrderError::io(format!(
        "reading the build context `{what}`"
    )))
}

/// Builds the image of `spec` whatever is on the engine (an untagged build).
async fn build(run: &UnitRun<'_>, spec: &ContainerSpec) -> OrderResult {
    let prepared = prepare(run, spec)?;
    let hash = input_hash(run, &prepared).await?;
    run_build(run, spec, prepared, Some(hash)).await
}

/// Builds the image of `spec`, streaming its context and showing progress. The image carries
/// `hash` as its `dstart.build-hash` label.
async fn run_build(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    prepared: Prepared,
    hash: Option<BuildHash>,
) -> OrderResult {
    let b = spec
        .build
        .as_ref()
        .ok_or_else(|| OrderError::failed(format!("container `{}` has no `build`", spec.name)))?;
    let ctx = prepared.ctx;
    let tag = built_name(spec).map(|t| with_default_tag(&t));
    let mut labels: HashMap<String, String> = prepared.inputs.labels.into_iter().collect();
    labels.insert(
        crate::apidoc::LABEL_BUILD_PATH.to_string(),
        b.path.trim_end_matches('/').to_string(),
    );
    if let Some(hash) = hash {
        labels.insert(LABEL_BUILD_PARTS.to_string(), hash.parts_label());
        labels.insert(LABEL_BUILD_HASH.to_string(), hash.full);
    }
    if let Some(t) = &tag {
        labels.insert(LABEL_BUILD_REPOSITORY.to_string(), split_image(t).0);
    }
    let params = BuildParams {
        tag: tag.clone(),
        dockerfile: ctx.dockerfile.clone(),
        rm: b.rm,
        nocache: b.nocache || run.rt.no_cache,
        pull: b.pull,
        forcerm: b.forcerm,
        buildargs: b
            .buildargs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        labels,
        target: b.target.clone(),
        network_mode: b.network_mode.clone(),
    };
    if b.rm {
        output::debug(format!(
            "Setting build flag 'rm' to True in container {}",
            spec.name
        ));
    }
    let what = built_name(spec).unwrap_or_else(|| format!("the image for container {}", spec.name));
    let progress = (output::show_progress() && output::verbosity() == 0).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message(format!("building {what}"));
        bar
    });
    // Checked before the engine is asked: a bad pattern is the configuration's error (exit 2).
    crate::execute::context::Ignore::read(&ctx.dir)?;
    let mut last_lines = crate::execute::Tail::new(10);
    let build = run
        .engine()
        .build(&params, tar_stream(ctx), |event| match event {
            BuildEvent::Line(text) => {
                for line in last_lines.push(text.as_bytes()) {
                    if let Some(bar) = &progress {
                        if line.starts_with("Step ") {
                            bar.set_message(format!("building {what}: {line}"));
                        }
                    }
                    output::output(1, line);
                }
            }
        });
    let result = run.rt.interrupt.race(build).await;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let result = result?;
    match result {
        Ok(_) => {
            match built_name(spec) {
                Some(t) => output::info(format!("Successfully built the image {t}")),
                None => output::info(format!(
                    "Successfully built the image for container {}",
                    spec.name
                )),
            }
            Ok(())
        }
        Err(e) => Err(OrderError::failed(format!("{e}{}", last_lines.render()))),
    }
}

/// `remove_image`.
pub async fn remove_image(run: &UnitRun<'_>, name: &str, args: &RemoveImageArgs) -> OrderResult {
    let image = image_of(run.spec(name)?)?;
    if run.engine().image(&image).await?.is_none() {
        output::debug(format!(
            "Trying to remove image {image}, but it does not exist. (skipping)"
        ));
        return Ok(());
    }
    match run
        .engine()
        .remove_image(&image, args.force, args.noprune)
        .await
    {
        Ok(()) => {
            output::info(format!("Successfully removed the image {image}"));
            Ok(())
        }
        Err(crate::engine::EngineError::Conflict { message, .. }) if !args.force => {
            output::warn(
                "image",
                format!("Not removing the image {image}: {message}"),
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `tag`: tags the container's image.
pub async fn tag(run: &UnitRun<'_>, name: &str, args: &TagArgs) -> OrderResult {
    let source = image_of(run.spec(name)?)?;
    let tag = args.tag.clone().unwrap_or_else(|| "latest".into());
    run.engine()
        .tag_image(&source, &args.repository, &tag)
        .await?;
    output::info(format!(
        "Tagged the image {source} as {}:{tag}",
        args.repository
    ));
    Ok(())
}

/// `commit`: makes an image from the container.
pub async fn commit(run: &UnitRun<'_>, name: &str, args: &CommitArgs) -> OrderResult {
    let tag = args.tag.clone().unwrap_or_else(|| "latest".into());
    let id = run
        .engine()
        .commit(
            name,
            &args.repository,
            &tag,
            args.message.clone(),
            args.author.clone(),
        )
        .await?;
    output::info(format!(
        "Committed container {name} as {}:{tag} ({id})",
        args.repository
    ));
    Ok(())
}

/// `push`: pushes the container's image (or `repository`).
pub async fn push(run: &UnitRun<'_>, name: &str, args: &PushArgs) -> OrderResult {
    let (repo, tag) = match (&args.repository, &args.tag) {
        (Some(r), Some(t)) => (r.clone(), t.clone()),
        (Some(r), None) => split_image(r),
        (None, t) => {
            let (r, own_tag) = split_image(&image_of(run.spec(name)?)?);
            (r, t.clone().unwrap_or(own_tag))
        }
    };
    pull::push(run, &repo, &tag).await?;
    output::info(format!("Pushed the image {repo}:{tag}"));
    Ok(())
}

/// One lock per image name, so that concurrent orders never build the same image twice, and
/// the images this run pulled (pulled once per run).
#[derive(Default)]
pub struct ImageLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pulled: std::sync::Mutex<std::collections::HashSet<String>>,
    built: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl ImageLocks {
    /// Whether `image` is pulled for the first time in this run (and notes that it is).
    pub fn first_pull(&self, image: &str) -> bool {
        self.pulled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(with_default_tag(image))
    }

    /// Whether this run built `image` already.
    pub fn built(&self, image: &str) -> bool {
        self.built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&with_default_tag(image))
    }

    pub fn note_built(&self, image: &str) {
        self.built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(with_default_tag(image));
    }

    pub async fn lock(&self, image: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(with_default_tag(image)).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_follow_the_test_images() {
        let images = HashMap::from([(
            "me/base:latest".to_string(),
            "me/base:latest_0123456789".to_string(),
        )]);
        let text = "# build\nFROM me/base AS b\nRUN x\nfrom --platform=linux/amd64 me/base:latest\nFROM other\n";
        assert_eq!(
            rewrite_from(text, &images).as_deref(),
            Some(
                "# build\nFROM me/base:latest_0123456789 AS b\nRUN x\nfrom --platform=linux/amd64 me/base:latest_0123456789\nFROM other\n"
            )
        );
        assert_eq!(rewrite_from("FROM other\n", &images), None);
    }
}
