//! `upgrade` on `host` (the generated `UNIT/upgrade`, SPEC "Generated commands"): goes through
//! the containers of one unit in start order and re-creates each running one whose image
//! reference now names another image than the one it runs ([`crate::plan::upgrade::decide`]), carrying
//! its anonymous volumes over, starting it and waiting for its start order's `ready:`. Nothing
//! is built or pulled; stopped containers stay stopped.

use std::collections::BTreeSet;

use crate::execute::preview::{PlanLine, inspect};
use crate::execute::{OrderError, OrderResult, UnitRun, lifecycle};
use crate::generate::commands::creations;
use crate::output;
use crate::plan::{self, Upgrade};
use crate::unit::Unit;
use crate::unit::order::{Action, StartArgs, UpgradeArgs};

/// The first start order of `name` in the unit's start orders: its `ready:` and `timeout`.
fn start_args<'u>(unit: &'u Unit, name: &str) -> Option<&'u StartArgs> {
    unit.orders().find_map(|o| match &o.action {
        Action::Start(a) if o.container == name => Some(a),
        _ => None,
    })
}

/// What `upgrade` decides for every container of `child`'s unit, in start order, from one
/// concurrent inspection.
async fn decisions(child: &UnitRun<'_>) -> OrderResult<Vec<(String, Upgrade)>> {
    let names = creations(&child.unit.steps, &child.unit.containers);
    let state = inspect(child, &names.iter().cloned().collect::<BTreeSet<_>>()).await?;
    let mut out = Vec::new();
    for name in names {
        let spec = child.spec(&name)?;
        let info = state.containers.get(&name).cloned().flatten();
        let image_id = spec
            .image
            .as_ref()
            .and_then(|i| state.images.get(i).cloned().flatten());
        let decision =
            plan::upgrade::decide(info.as_ref(), image_id.as_deref(), &child.naming.unit_label);
        out.push((name, decision));
    }
    Ok(out)
}

/// `upgrade`.
pub async fn upgrade(run: &UnitRun<'_>, args: &UpgradeArgs) -> OrderResult {
    let unit = crate::generate::load_start(&run.rt.conf, &run.rt.env, &args.unit)?;
    let child = UnitRun::new(run.rt, &unit, run.stack.clone());
    let mut recreated = 0;
    for (name, decision) in decisions(&child).await? {
        run.rt.interrupt.check()?;
        if let Upgrade::Keep(why) = decision {
            output::debug(format!("keep {name} ({why})"));
            continue;
        }
        // Inspected again right before: the decision holds for what is replaced.
        let engine = child.engine();
        let spec = child.spec(&name)?;
        let (Some(old), Some(image)) = (
            engine.container(&name).await?,
            match &spec.image {
                Some(i) => engine.image(i).await?,
                None => None,
            },
        ) else {
            return Err(OrderError::failed(format!(
                "container `{name}` or its image vanished while `{}` was upgraded",
                args.unit
            )));
        };
        if plan::upgrade::decide(Some(&old), Some(&image.id), &child.naming.unit_label)
            != Upgrade::Recreate
        {
            output::debug(format!("keep {name} (changed meanwhile)"));
            continue;
        }
        let start = start_args(&unit, &name);
        let timeout = child.stop_timeout(&name, start.and_then(|a| a.timeout));
        let ready = start.and_then(|a| a.ready.as_ref());
        Box::pin(lifecycle::upgrade(
            &child, spec, &old, image, ready, timeout,
        ))
        .await?;
        recreated += 1;
    }
    output::info(format!(
        "Upgraded unit {}: {recreated} container{} recreated",
        args.unit,
        if recreated == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// `run --plan` of an `upgrade` order: one line per container of the unit.
pub async fn plan_lines(run: &UnitRun<'_>, args: &UpgradeArgs) -> OrderResult<Vec<PlanLine>> {
    let unit = crate::generate::load_start(&run.rt.conf, &run.rt.env, &args.unit)?;
    let child = UnitRun::new(run.rt, &unit, Vec::new());
    Ok(decisions(&child)
        .await?
        .into_iter()
        .map(|(name, d)| PlanLine {
            order: "upgrade".into(),
            container: name.clone(),
            action: d.action().into(),
            reasons: vec![d.reason()],
            unit: None,
            subject: name,
        })
        .collect())
}
