//! Which timestamped archives `keep` keeps, with restic `forget`'s meaning: `last: N` keeps the
//! newest N; `hourly: N` the newest archive of each of the last N hours that have one, counted
//! back from the newest archive (not from now); likewise `daily`, `weekly` (ISO weeks),
//! `monthly` and `yearly`. An archive kept by any rule stays. Times are UTC, as in the names.

use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::unit::backup::{Keep, KeepPolicy};

/// For archives stamped `stamps` (newest first), whether `keep` keeps each.
pub fn kept(stamps: &[NaiveDateTime], keep: &Keep) -> Vec<bool> {
    let policy = match keep {
        Keep::Last(n) => KeepPolicy {
            last: *n,
            ..KeepPolicy::default()
        },
        Keep::Policy(p) => p.clone(),
    };
    let mut keep = vec![false; stamps.len()];
    for (rule, count) in policy.rules() {
        let mut left = count;
        let mut last: Option<i64> = None;
        for (i, t) in stamps.iter().enumerate() {
            if left == 0 {
                break;
            }
            let bucket = match rule {
                "last" => i64::try_from(i).unwrap_or(i64::MAX),
                "hourly" => {
                    i64::from(t.year()) * 1_000_000
                        + i64::from(t.ordinal()) * 100
                        + i64::from(t.hour())
                }
                "daily" => i64::from(t.year()) * 1000 + i64::from(t.ordinal()),
                "weekly" => {
                    let w = t.iso_week();
                    i64::from(w.year()) * 100 + i64::from(w.week())
                }
                "monthly" => i64::from(t.year()) * 100 + i64::from(t.month()),
                _ => i64::from(t.year()),
            };
            if last != Some(bucket) {
                keep[i] = true;
                left -= 1;
                last = Some(bucket);
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn policy(text: &str) -> Keep {
        Keep::parse_text(text).unwrap()
    }

    /// The kept stamps of `stamps` (newest first) under `keep`.
    fn kept_of(stamps: &[&str], keep: &Keep) -> Vec<String> {
        let times: Vec<NaiveDateTime> = stamps.iter().map(|s| at(s)).collect();
        kept(&times, keep)
            .iter()
            .zip(stamps)
            .filter(|(k, _)| **k)
            .map(|(_, s)| (*s).to_string())
            .collect()
    }

    #[test]
    fn restic_forget_rules() {
        // Nightly at 02:30 for three weeks, and two extra runs on the newest day.
        let mut nightly: Vec<String> = (1..=21)
            .rev()
            .map(|d| format!("2026-03-{d:02} 02:30"))
            .collect();
        nightly.insert(0, "2026-03-21 14:00".into());
        nightly.insert(0, "2026-03-21 14:20".into());
        let nightly: Vec<&str> = nightly.iter().map(String::as_str).collect();
        let cases: &[(&[&str], Keep, &[&str])] = &[
            (
                &nightly,
                Keep::Last(3),
                &["2026-03-21 14:20", "2026-03-21 14:00", "2026-03-21 02:30"],
            ),
            // The newest of each of the last 3 days that have archives.
            (
                &nightly,
                policy("daily=3"),
                &["2026-03-21 14:20", "2026-03-20 02:30", "2026-03-19 02:30"],
            ),
            // 14:20 and 14:00 share an hour: the newest of each hour.
            (
                &nightly,
                policy("hourly=2"),
                &["2026-03-21 14:20", "2026-03-21 02:30"],
            ),
            // ISO weeks: 2026-03-16 is a Monday.
            (
                &nightly,
                policy("weekly=3"),
                &["2026-03-21 14:20", "2026-03-15 02:30", "2026-03-08 02:30"],
            ),
            // Rules add up; an archive kept by two rules counts for both.
            (
                &nightly,
                policy("last=1 daily=2 monthly=5"),
                &["2026-03-21 14:20", "2026-03-20 02:30"],
            ),
            (
                &[
                    "2026-01-02 00:00",
                    "2025-12-31 23:59",
                    "2025-06-01 00:00",
                    "2024-01-01 00:00",
                ],
                policy("yearly=2 monthly=1"),
                &["2026-01-02 00:00", "2025-12-31 23:59"],
            ),
            // Fewer archives than the rule asks for: all stay.
            (
                &["2026-01-02 00:00"],
                policy("daily=7"),
                &["2026-01-02 00:00"],
            ),
            (&[], Keep::Last(3), &[]),
        ];
        for (stamps, keep, want) in cases {
            assert_eq!(kept_of(stamps, keep), *want, "{keep:?}");
        }
    }
}
