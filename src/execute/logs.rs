//! `dstart logs`: the output of a unit's containers, each line prefixed with its container and
//! interleaved in the order the engine logged the lines (by its timestamps).

use std::collections::HashMap;

use futures_util::StreamExt;

use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::output;

/// What `dstart logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Engine names of the containers, with the name each line is prefixed with.
    pub containers: Vec<(String, String)>,
    pub follow: bool,
    /// UNIX seconds (0: from the start).
    pub since: i64,
    pub tail: Option<usize>,
    /// Keep the engine's timestamps.
    pub timestamps: bool,
}

/// One logged line: when, whose, what (the timestamp still in front).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    at: Option<chrono::DateTime<chrono::Utc>>,
    container: String,
    text: String,
}

/// Splits `2026-01-02T03:04:05.000000001Z text` into its time and text.
fn split_stamp(line: &str) -> (Option<chrono::DateTime<chrono::Utc>>, &str) {
    match line.split_once(' ') {
        Some((stamp, rest)) => match chrono::DateTime::parse_from_rfc3339(stamp) {
            Ok(t) => (Some(t.to_utc()), rest),
            Err(_) => (None, line),
        },
        None => match chrono::DateTime::parse_from_rfc3339(line) {
            Ok(t) => (Some(t.to_utc()), ""),
            Err(_) => (None, line),
        },
    }
}

/// The printed form of a line: `web | text`, with the timestamp when asked.
fn render(container: &str, raw: &str, width: usize, timestamps: bool) -> String {
    let text = if timestamps { raw } else { split_stamp(raw).1 };
    format!("{container:<width$} | {text}")
}

/// The lines of several containers in time order; lines without a timestamp keep their place
/// after the ones before them (the sort is stable).
fn interleave(mut lines: Vec<Line>) -> Vec<Line> {
    lines.sort_by_key(|l| l.at);
    lines
}

/// Complete lines of `buffer`, leaving an unfinished one in it.
fn take_lines(buffer: &mut String) -> Vec<String> {
    let Some(end) = buffer.rfind('\n') else {
        return Vec::new();
    };
    let rest = buffer.split_off(end + 1);
    let done = std::mem::replace(buffer, rest);
    done.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// Prints the logs; with `follow`, the logged output first (interleaved), then new lines as
/// they come, until every container stopped or an interrupt.
pub async fn logs(run: &UnitRun<'_>, req: &LogsRequest) -> OrderResult {
    let width = req
        .containers
        .iter()
        .map(|(_, s)| s.len())
        .max()
        .unwrap_or(0);
    let engine = run.engine();
    let streams = req.containers.iter().map(|(name, shown)| {
        let shown = shown.clone();
        engine
            .logs_stamped(name, req.follow, req.since, req.tail)
            .map(move |chunk| (shown.clone(), chunk))
    });
    let mut merged = futures_util::stream::select_all(streams);
    let mut buffers: HashMap<String, String> = HashMap::new();
    if !req.follow {
        let mut lines = Vec::new();
        while let Some((shown, chunk)) = merged.next().await {
            let chunk = chunk?;
            let buffer = buffers.entry(shown.clone()).or_default();
            buffer.push_str(&String::from_utf8_lossy(&chunk.data));
            for text in take_lines(buffer) {
                lines.push(Line {
                    at: split_stamp(&text).0,
                    container: shown.clone(),
                    text,
                });
            }
        }
        for (shown, rest) in buffers {
            if !rest.is_empty() {
                lines.push(Line {
                    at: split_stamp(&rest).0,
                    container: shown,
                    text: rest,
                });
            }
        }
        for l in interleave(lines) {
            output::result(format!(
                "{}\n",
                render(&l.container, &l.text, width, req.timestamps)
            ));
        }
        return Ok(());
    }
    let follow = async {
        while let Some((shown, chunk)) = merged.next().await {
            let chunk = chunk?;
            let buffer = buffers.entry(shown.clone()).or_default();
            buffer.push_str(&String::from_utf8_lossy(&chunk.data));
            for text in take_lines(buffer) {
                output::result(format!(
                    "{}\n",
                    render(&shown, &text, width, req.timestamps)
                ));
            }
        }
        Ok::<(), OrderError>(())
    };
    run.rt.interrupt.race(follow).await?
}

/// `--since`: RFC 3339 or UNIX seconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n.max(0));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp().max(0))
        .map_err(|_| {
            format!("`--since {text}`: expected a time like 2026-01-02T03:04:05Z or UNIX seconds")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_interleave_by_the_engines_timestamps() {
        let line = |c: &str, text: &str| Line {
            at: split_stamp(text).0,
            container: c.into(),
            text: text.into(),
        };
        let sorted = interleave(vec![
            line("a", "2026-01-02T03:04:05.000000001Z one"),
            line("a", "2026-01-02T03:04:07.000000000Z three"),
            line("b", "2026-01-02T03:04:06.500000000Z two"),
            line("b", "2026-01-02T03:04:05.000000000Z zero"),
        ]);
        let shown: Vec<String> = sorted
            .iter()
            .map(|l| render(&l.container, &l.text, 1, false))
            .collect();
        assert_eq!(shown, ["b | zero", "a | one", "b | two", "a | three"]);
        assert_eq!(
            render("web", "2026-01-02T03:04:05.000000001Z hi", 4, true),
            "web  | 2026-01-02T03:04:05.000000001Z hi"
        );
        assert_eq!(render("x", "no stamp", 1, false), "x | no stamp");
    }

    #[test]
    fn only_whole_lines_are_taken() {
        let mut b = "one\ntwo\r\nthr".to_string();
        assert_eq!(take_lines(&mut b), ["one", "two"]);
        assert_eq!(b, "thr");
        assert!(take_lines(&mut b).is_empty());
    }

    #[test]
    fn since_takes_rfc3339_or_seconds() {
        assert_eq!(parse_since("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_since("1970-01-01T00:01:00Z"), Ok(60));
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .contains("--since yesterday")
        );
    }
}
