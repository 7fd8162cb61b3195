//! `dstart build [UNIT...]`: the builds of a [`Chain`] in its order, each after its bases,
//! independent ones concurrently (at most [`CONCURRENT`] at a time), one line per image:
//! `built`, `unchanged`, `failed` (with the reason) or `skipped` (its base failed). Optionally
//! pulls the `FROM` images the directory does not build first, and pushes what it built.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::execute::chain::{Build, Chain};
use crate::execute::image::{self, Asked, ImageLocks, Outcome, Prepared};
use crate::execute::{OrderError, OrderResult, Runtime, UnitRun, pull};
use crate::output;
use crate::unit::container::{PullPolicy, split_image};

/// How many images are built at the same time.
pub const CONCURRENT: usize = 4;

/// What `dstart build` was asked for besides the units.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Push every image it built.
    pub push: bool,
    /// Pull the `FROM` images that no build of the directory makes: always, when missing.
    pub pull: Option<PullPolicy>,
}

/// Where one build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Ok,
    /// Failed, or skipped because a base failed: its dependents are skipped.
    Failed,
}

/// Builds `order` (indices into `chain.builds`, bases first). Fails when any build failed.
pub async fn build_all(
    rt: &Runtime,
    chain: &Chain,
    order: &[usize],
    options: Options,
) -> OrderResult {
    let runs: Vec<UnitRun<'_>> = chain
        .units
        .iter()
        .map(|u| UnitRun::new(rt, u, Vec::new()))
        .collect();
    // Per `FROM` image: one pull at a time, pulled once (`always`), and whether the pull
    // brought another image than the engine had (noted as "built").
    let pulls = ImageLocks::default();
    let mut states: HashMap<usize, State> = order.iter().map(|&i| (i, State::Waiting)).collect();
    let mut running = FuturesUnordered::new();
    let mut failed = 0usize;
    loop {
        for &i in order {
            if states[&i] != State::Waiting {
                continue;
            }
            let bases = chain.bases(i);
            if let Some(&bad) = bases.iter().find(|b| states.get(b) == Some(&State::Failed)) {
                states.insert(i, State::Failed);
                failed += 1;
                output::result(format!(
                    "skipped {} (its base {} failed)\n",
                    chain.builds[i].tag, chain.builds[bad].tag
                ));
                continue;
            }
            let ready = bases
                .iter()
                .all(|b| states.get(b).is_none_or(|s| *s == State::Ok));
            if ready && running.len() < CONCURRENT {
                states.insert(i, State::Running);
                let build = &chain.builds[i];
                let run = &runs[build.unit];
                let pulls = &pulls;
                running.push(async move {
                    let started = Instant::now();
                    let result = one(run, chain, build, options, pulls).await;
                    (i, result, started.elapsed())
                });
            }
        }
        let Some((i, result, took)) = running.next().await else {
            break;
        };
        let tag = &chain.builds[i].tag;
        match result {
            Ok(outcome) => {
                states.insert(i, State::Ok);
                if !output::quiet() {
                    let word = match outcome {
                        Outcome::Built => "built",
                        Outcome::Unchanged => "unchanged",
                    };
                    output::result(format!("{word} {tag} ({})\n", seconds(took)));
                }
            }
            Err(OrderError::Interrupted) => return Err(OrderError::Interrupted),
            Err(e) => {
                states.insert(i, State::Failed);
                failed += 1;
                let text = e.to_string();
                let mut lines = text.lines();
                let first = lines.next().unwrap_or_default();
                let rest: Vec<&str> = lines.collect();
                output::result(format!("failed {tag} ({first})\n"));
                if !rest.is_empty() {
                    output::error("build", rest.join("\n"));
                }
            }
        }
    }
    if failed > 0 {
        return Err(OrderError::failed(format!(
            "{failed} of {} images were not built",
            order.len()
        )));
    }
    Ok(())
}

/// `12.3 s`.
fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// One build: its `FROM` images pulled as `options.pull` says (those no build of the chain
/// makes), the image built unless unchanged, pushed when built and asked to.
async fn one(
    run: &UnitRun<'_>,
    chain: &Chain,
    build: &Build,
    options: Options,
    pulls: &ImageLocks,
) -> OrderResult<Outcome> {
    let mut pulled_anew: Option<&str> = None;
    if let Some(policy) = options.pull {
        for (from, _) in &build.froms {
            if chain.find(from).is_some() {
                continue;
            }
            let _guard = pulls.lock(from).await;
            let before = run.engine().image(from).await?.map(|i| i.id);
            let wanted = match policy {
                PullPolicy::Always => pulls.first_pull(from),
                PullPolicy::Missing => before.is_none(),
                PullPolicy::Never => false,
            };
            if wanted {
                pull::pull(run, &build.spec, from).await?;
                let after = run.engine().image(from).await?.map(|i| i.id);
                if before.is_some() && after != before {
                    pulls.note_built(from);
                }
            }
            // Another image under this name since this run began (also when another build
            // of the run pulled it): the builds from it rebuild.
            if pulls.built(from) {
                pulled_anew = Some(from);
            }
        }
    }
    let asked = pulled_anew.map_or(Asked::Own, Asked::Pulled);
    let _guard = run.image_lock(&build.tag).await;
    let outcome =
        image::build_prepared(run, &build.spec, &build.tag, Prepared::of(build), asked).await?;
    if outcome == Outcome::Built && options.push {
        let (repo, tag) = split_image(&build.tag);
        pull::push(run, &repo, &tag).await?;
        output::info(format!("Pushed the image {repo}:{tag}"));
    }
    Ok(outcome)
}
