//! Pulls and pushes: the registry credentials the Docker CLI would send, a log line before a
//! pull, progress (a spinner on a terminal, a plain line at most every 10 s off one, nothing
//! at `-q`), the `pull:` policy of a container (`run --pull` overrides it), and the check,
//! before any order runs, that no `pull: never` container lacks its image.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::engine::registry::{self, Found};
use crate::engine::{EngineError, Progress};
use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::output;
use crate::unit::container::{ContainerSpec, PullPolicy, with_default_tag};
use crate::unit::order::{Action, Step};

/// How often a plain progress line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The pull policy of `spec` in this run.
pub fn policy(run: &UnitRun<'_>, spec: &ContainerSpec) -> PullPolicy {
    run.rt.pull.unwrap_or(spec.pull)
}

/// The credentials for `image`, logged (never shown) at `-d`.
async fn credentials(run: &UnitRun<'_>, image: &str) -> OrderResult<Found> {
    let dir = crate::engine::context::DockerConfigDir::from_env();
    let found = registry::credentials(&dir, image, run.engine().timeout())
        .await
        .map_err(OrderError::failed)?;
    if let Some(auth) = &found.auth {
        output::add_secrets(|s| {
            for value in [&auth.password, &auth.identity_token].into_iter().flatten() {
                s.add(value);
            }
        });
    }
    output::debug(match &found.auth {
        Some(_) => format!(
            "Sending the credentials for {} from {}",
            found.key, found.source
        ),
        None => format!(
            "No credentials for {} in {}; going without",
            found.key, found.source
        ),
    });
    Ok(found)
}

/// What to tell the user when the registry refused the credentials (or their absence).
fn auth_hint(err: &EngineError, found: &Found) -> Option<String> {
    let message = err.message().to_lowercase();
    let refused = [
        "unauthorized",
        "authentication required",
        "no basic auth",
        "denied",
    ]
    .iter()
    .any(|m| message.contains(m));
    if !refused {
        return err.hint();
    }
    // Docker Hub is `docker login`'s default.
    let login = if found.key == registry::DOCKER_HUB_KEY {
        "docker login".to_string()
    } else {
        format!("docker login {}", found.key)
    };
    Some(match &found.auth {
        Some(_) => format!(
            "the credentials for `{}` came from {}; `{login}` replaces them",
            found.key, found.source
        ),
        None => format!(
            "no credentials for `{}` were found ({}); `{login}` stores them",
            found.key, found.source
        ),
    })
}

/// Pulls `image` for container `spec`, showing progress.
pub async fn pull(run: &UnitRun<'_>, spec: &ContainerSpec, image: &str) -> OrderResult {
    let found = credentials(run, image).await?;
    output::info(format!("Pulling the image {image}"));
    let mut progress = Transfer::new(format!("pulling {image}"));
    let result = run
        .engine()
        .pull(image, found.auth.as_ref(), |p| progress.update(&p))
        .await;
    progress.finish();
    match result {
        Ok(()) => {
            output::info(format!("Successfully pulled the image {image}"));
            Ok(())
        }
        Err(e) => Err(OrderError::Failed {
            hint: auth_hint(&e, &found),
            message: format!(
                "the image `{image}` of `{}` could not be pulled: {e}",
                spec.name
            ),
        }),
    }
}

/// Pushes `repo:tag`, showing progress.
pub async fn push(run: &UnitRun<'_>, repo: &str, tag: &str) -> OrderResult {
    let found = credentials(run, repo).await?;
    output::info(format!("Pushing the image {repo}:{tag}"));
    let mut progress = Transfer::new(format!("pushing {repo}:{tag}"));
    let result = run
        .engine()
        .push(repo, tag, found.auth.as_ref(), |p| progress.update(&p))
        .await;
    progress.finish();
    result.map_err(|e| OrderError::Failed {
        hint: auth_hint(&e, &found),
        message: e.to_string(),
    })
}

/// With `pull: always`, pulls the image of `spec` (once per run) before a create or start
/// looks at it. Images that `build` makes are built, not pulled.
pub async fn refresh(run: &UnitRun<'_>, spec: &ContainerSpec, image: &str) -> OrderResult {
    if spec.build.is_some() || policy(run, spec) != PullPolicy::Always {
        return Ok(());
    }
    if !run.image_locks.first_pull(image) {
        output::debug(format!("Image {image} was pulled by this run already"));
        return Ok(());
    }
    pull(run, spec, image).await
}

/// Images the orders of `steps` make themselves (`build` tags, `tag`, `commit`): a
/// `pull: never` container may use them before they exist.
fn made_by_unit(run: &UnitRun<'_>, orders: &[&crate::unit::order::Order]) -> HashSet<String> {
    let mut made: HashSet<String> = run
        .unit
        .containers
        .values()
        .filter_map(|c| c.spec.build.as_ref().and_then(|b| b.tag.clone()))
        .map(|t| with_default_tag(&t))
        .collect();
    for order in orders {
        let (repo, tag) = match &order.action {
            Action::Tag(a) => (&a.repository, &a.tag),
            Action::Commit(a) => (&a.repository, &a.tag),
            _ => continue,
        };
        made.insert(with_default_tag(&match tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.clone(),
        }));
    }
    made
}

/// Before any order runs: every container a `create` or `start` order of `steps` makes with
/// `pull: never` has its image on the engine (or the unit makes it).
pub async fn check_never(run: &UnitRun<'_>, steps: &[Step]) -> OrderResult {
    let orders: Vec<&crate::unit::order::Order> = steps
        .iter()
        .flat_map(|s| match s {
            Step::Order(o) => vec![o.as_ref()],
            Step::Parallel { orders, .. } => orders.iter().collect(),
        })
        .collect();
    let made = made_by_unit(run, &orders);
    let mut missing: Vec<String> = Vec::new();
    let mut seen: HashMap<String, bool> = HashMap::new();
    for order in &orders {
        if !matches!(order.action, Action::Create | Action::Start(_)) {
            continue;
        }
        let Some(container) = run.unit.containers.get(&order.container) else {
            continue;
        };
        let spec = &container.spec;
        let Some(image) = spec.image.as_deref() else {
            continue;
        };
        if spec.build.is_some()
            || policy(run, spec) != PullPolicy::Never
            || made.contains(&with_default_tag(image))
        {
            continue;
        }
        let present = if let Some(p) = seen.get(image) {
            *p
        } else {
            let p = run.engine().image(image).await?.is_some();
            seen.insert(image.to_string(), p);
            p
        };
        if !present {
            missing.push(format!("`{image}` (container `{}`)", spec.name));
        }
    }
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    Err(OrderError::hinted(
        format!(
            "`pull: never` and not on the engine: {}; no order ran",
            missing.join(", ")
        ),
        "load or build the image first, or run with `--pull missing`",
    ))
}

/// The progress of one pull or push.
struct Transfer {
    what: String,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    last_plain: Instant,
    plain: bool,
    /// Per layer (pulls only: a push's progress names no layer): bytes done and in all.
    layers: HashMap<String, (i64, i64)>,
    done: HashSet<String>,
    last_status: String,
    log: output::ProgressLog,
}

impl Transfer {
    fn new(what: String) -> Transfer {
        let bar = (output::show_progress() && output::verbosity() == 0).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(what.clone());
            bar
        });
        Transfer {
            plain: !output::quiet() && !output::show_progress(),
            what,
            started: Instant::now(),
            bar,
            last_plain: Instant::now(),
            layers: HashMap::new(),
            done: HashSet::new(),
            last_status: String::new(),
            log: output::ProgressLog::default(),
        }
    }

    fn update(&mut self, p: &Progress) {
        self.log.show(&p.key(), &p.line());
        if let Some(id) = &p.id {
            if let (Some(current), Some(total)) = (p.current, p.total) {
                self.layers.insert(id.clone(), (current, total));
            }
            if matches!(
                p.status.as_str(),
                "Pull complete" | "Already exists" | "Download complete"
            ) {
                self.done.insert(id.clone());
            }
        }
        self.last_status = p.line();
        let summary = self.summary();
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {summary}", self.what));
        }
        if self.plain && self.last_plain.elapsed() >= PLAIN_EVERY {
            self.last_plain = Instant::now();
            output::info(format!(
                "Still {} after {} s: {summary}",
                self.what,
                self.started.elapsed().as_secs()
            ));
        }
    }

    /// Bytes so far (pulls), else the last status line (pushes).
    fn summary(&self) -> String {
        if self.layers.is_empty() {
            return self.last_status.clone();
        }
        let mb = |b: i64| {
            #[allow(clippy::cast_precision_loss)]
            let mb = b as f64 / 1e6;
            mb
        };
        let (mut current, mut total) = (0, 0);
        for (id, (c, t)) in &self.layers {
            total += t;
            current += if self.done.contains(id) { t } else { c };
        }
        format!(
            "{:.1} of {:.1} MB, {} of {} layers done",
            mb(current),
            mb(total),
            self.done.len(),
            self.layers.len().max(self.done.len())
        )
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: &str, status: &str, current: i64, total: i64) -> Progress {
        Progress {
            id: Some(id.into()),
            status: status.into(),
            current: Some(current),
            total: Some(total),
        }
    }

    #[test]
    fn a_pull_is_summed_over_its_layers() {
        let mut t = Transfer::new("pulling x".into());
        t.update(&progress("a", "Downloading", 1_000_000, 4_000_000));
        t.update(&progress("b", "Downloading", 500_000, 1_000_000));
        assert_eq!(t.summary(), "1.5 of 5.0 MB, 0 of 2 layers done");
        t.update(&Progress {
            id: Some("b".into()),
            status: "Pull complete".into(),
            ..Progress::default()
        });
        assert_eq!(t.summary(), "2.0 of 5.0 MB, 1 of 2 layers done");
    }

    #[test]
    fn off_a_terminal_a_plain_line_comes_at_most_every_10_s() {
        let mut t = Transfer::new("pulling plain/x:1".into());
        t.plain = true;
        crate::output::start_capture(true);
        t.update(&progress("a", "Downloading", 1, 2));
        // Ten seconds later: one line; right after it: none.
        t.last_plain = Instant::now().checked_sub(PLAIN_EVERY).unwrap();
        t.update(&progress("a", "Downloading", 2, 4));
        t.update(&progress("a", "Downloading", 3, 4));
        let lines: Vec<String> = crate::output::stop_capture()
            .into_iter()
            .filter(|l| l.contains("plain/x:1"))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0]
                .contains("Still pulling plain/x:1 after 0 s: 0.0 of 0.0 MB, 0 of 1 layers done"),
            "{lines:?}"
        );
    }
}
