//! Runtime substitution `[[FORMULA]](CONTAINER)` in order arguments and check URLs (SPEC
//! "Templates", ORIGINAL §2.3). FORMULA is a dotted path into the engine's inspect document
//! (`.NetworkSettings.Ports`), `ip` (the address on the unit network) or `port N[/udp]` (the
//! published host port). CONTAINER defaults to the order's container; `image://NAME` inspects an
//! image. Nothing is ever evaluated as code.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::unit::order::HOST;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([^\]]+)\]\](?:\(([^)]*)\))?").expect("valid regex"));

/// Whether `text` holds a runtime substitution.
pub fn has_placeholder(text: &str) -> bool {
    PLACEHOLDER.is_match(text)
}

/// Walks a dotted path (`.A.B.0.C`) into a JSON document.
pub fn lookup<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = doc;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = match cur {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value of one placeholder.
async fn resolve(
    run: &UnitRun<'_>,
    formula: &str,
    container: &str,
    whole: &str,
) -> OrderResult<Value> {
    let formula = formula.trim();
    let fail = |why: String| OrderError::failed(format!("`{whole}`: {why}"));
    if let Some(image) = container.strip_prefix("image://") {
        let info = run
            .engine()
            .image(image)
            .await?
            .ok_or_else(|| fail(format!("the image `{image}` does not exist")))?;
        return lookup(&info.raw, formula).cloned().ok_or_else(|| {
            fail(format!(
                "no value at `{formula}` in the inspect of image `{image}`"
            ))
        });
    }
    if container.is_empty() || container == HOST {
        return Err(fail("name the container, like `[[ip]](web)`".into()));
    }
    let mut found = run.engine().container(container).await?;
    if found.is_none() && run.swarm() {
        // In swarm mode `container` is a service: its running task's container answers.
        match crate::execute::swarm_checks::running_task(run, container).await? {
            Ok(task) => found = run.engine().container(&task).await?,
            Err(why) => return Err(fail(why)),
        }
    }
    let info = found.ok_or_else(|| fail(format!("the container `{container}` does not exist")))?;
    if formula == "ip" {
        let ip = info
            .networks
            .iter()
            .find(|(n, ip)| *n == run.naming.network && !ip.is_empty())
            .or_else(|| info.networks.iter().find(|(_, ip)| !ip.is_empty()))
            .map(|(_, ip)| ip.clone())
            .ok_or_else(|| fail(format!("`{container}` has no IP address (is it running?)")))?;
        return Ok(Value::String(ip));
    }
    if let Some(port) = formula.strip_prefix("port ") {
        let port = port.trim();
        let key = if port.contains('/') {
            port.to_string()
        } else {
            format!("{port}/tcp")
        };
        let host = info
            .ports
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, p)| *p)
            .ok_or_else(|| {
                fail(format!(
                    "`{container}` publishes no host port for {key} (is it running?)"
                ))
            })?;
        return Ok(Value::String(host.to_string()));
    }
    if formula.starts_with('.') {
        return lookup(&info.raw, formula).cloned().ok_or_else(|| {
            fail(format!(
                "no value at `{formula}` in the inspect of `{container}`"
            ))
        });
    }
    Err(fail(format!(
        "unknown formula `{formula}` (use a dotted path like `.NetworkSettings.IPAddress`, `ip` or `port 80`)"
    )))
}

/// Substitutes every placeholder in `text`; `default` is the container when none is named.
pub async fn substitute_text(run: &UnitRun<'_>, text: &str, default: &str) -> OrderResult<String> {
    if !has_placeholder(text) {
        return Ok(text.to_string());
    }
    let mut out = String::new();
    let mut last = 0;
    for cap in PLACEHOLDER.captures_iter(text) {
        let m = cap.get(0).expect("whole match");
        out.push_str(&text[last..m.start()]);
        let container = cap.get(2).map_or(default, |c| c.as_str());
        let value = resolve(run, &cap[1], container, m.as_str()).await?;
        out.push_str(&render(&value));
        last = m.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Substitutes in a list of arguments: an argument that is exactly one placeholder whose value
/// is a list becomes several arguments.
pub async fn substitute_args(
    run: &UnitRun<'_>,
    args: &[String],
    default: &str,
) -> OrderResult<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        if let Some(cap) = PLACEHOLDER.captures(arg) {
            let m = cap.get(0).expect("whole match");
            if m.start() == 0 && m.end() == arg.len() {
                let container = cap.get(2).map_or(default, |c| c.as_str());
                match resolve(run, &cap[1], container, arg).await? {
                    Value::Array(items) => out.extend(items.iter().map(render)),
                    v => out.push(render(&v)),
                }
                continue;
            }
        }
        out.push(substitute_text(run, arg, default).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths() {
        let doc = json!({"NetworkSettings": {"Networks": {"n": {"IPAddress": "10.0.0.2"}}, "List": [1, 2]}});
        assert_eq!(
            lookup(&doc, ".NetworkSettings.Networks.n.IPAddress"),
            Some(&json!("10.0.0.2"))
        );
        assert_eq!(lookup(&doc, ".NetworkSettings.List.1"), Some(&json!(2)));
        assert_eq!(lookup(&doc, ".Nope"), None);
    }

    #[test]
    fn placeholders_are_found() {
        assert!(has_placeholder("http://[[ip]](web):80/"));
        assert!(has_placeholder("[[.Id]]"));
        assert!(!has_placeholder("[x](y)"));
        let caps = PLACEHOLDER.captures("x [[port 80]](web) y").unwrap();
        assert_eq!(&caps[1], "port 80");
        assert_eq!(&caps[2], "web");
    }
}
