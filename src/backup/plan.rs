//! What a backup writes and what it removes, decided before the first byte is read (STYLE.md
//! "Decide, then do"): [`backup_plan`] is a pure function of the order's arguments, the archives
//! of that name in the directory (read with the directory-and-name lock held) and the time. The
//! executor only carries the plan out.

use chrono::{DateTime, Duration, Utc};

use crate::backup::store::{self, Format, Found};
use crate::backup::{pending, retention};
use crate::unit::backup::Keep;

/// The arguments of a backup that decide its file names.
#[derive(Debug, Clone)]
pub struct PlanArgs<'a> {
    /// The archive name without extension.
    pub name: &'a str,
    pub format: Format,
    pub timestamp: bool,
    pub overwrite: bool,
    pub keep: Option<&'a Keep>,
}

/// What one backup writes and removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    /// The final name of the new archive: a name no archive of the directory has.
    pub file_name: String,
    /// The temporary name of the new archive while it is written (when it needs a name).
    pub temp_name: String,
    /// The FIFO a helper's `tar` writes into, in the backup directory.
    pub fifo_name: String,
    /// The second of the stamp when it lies ahead of `now` (an archive of this second exists):
    /// the backup starts only then, so that a stamp never names a time before the backup.
    pub not_before: Option<DateTime<Utc>>,
    /// The fixed name pointed at the new archive (`timestamp: true`).
    pub link: Option<String>,
    /// Archives removed once the new one is in place: fixed names in other formats
    /// (`overwrite`) and what `keep` does not keep, oldest last.
    pub remove: Vec<String>,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// A fixed-name archive exists and `overwrite` is not set.
    Exists { file: String },
}

/// The plan of a backup. `existing` are the archives of the name in the directory, fixed names
/// that are links included ([`store::list_all`]); `pid` names the temporary files.
pub fn backup_plan(
    args: &PlanArgs,
    existing: &[Found],
    now: DateTime<Utc>,
    pid: u32,
) -> Result<BackupPlan, PlanError> {
    let name = args.name;
    let (file_name, not_before, link, mut remove) = if args.timestamp {
        let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
        // The first second from now that no archive of the name has, in any format: one stamp
        // is one archive, and the newest stamp is the archive written last.
        let mut at = now;
        while existing
            .iter()
            .any(|f| f.stamp.as_deref() == Some(store::stamp(at).as_str()))
        {
            at += Duration::seconds(1);
        }
        let file = store::stamped_name(name, &store::stamp(at), args.format);
        (
            file,
            (at > now).then_some(at),
            Some(store::fixed_name(name, args.format)),
            Vec::new(),
        )
    } else {
        let file = store::fixed_name(name, args.format);
        let fixed: Vec<&Found> = existing.iter().filter(|f| f.stamp.is_none()).collect();
        if let (Some(first), false) = (fixed.first(), args.overwrite) {
            return Err(PlanError::Exists {
                file: first.file_name.clone(),
            });
        }
        // `overwrite` is about the name, whatever the format: the others go.
        let others = fixed
            .iter()
            .filter(|f| f.file_name != file)
            .map(|f| f.file_name.clone())
            .collect();
        (file, None, None, others)
    };
    if let (Some(keep), true) = (args.keep, args.timestamp) {
        remove.extend(pruned(existing, &file_name, keep));
    }
    Ok(BackupPlan {
        temp_name: pending::temp_name_for(&file_name, pid),
        fifo_name: pending::temp_name_for(&format!("{file_name}.fifo"), pid),
        file_name,
        not_before,
        link,
        remove,
    })
}

/// The timestamped archives of `existing` that `keep` removes once `new` (the newest) is there.
fn pruned(existing: &[Found], new: &str, keep: &Keep) -> Vec<String> {
    let mut stamped: Vec<(chrono::NaiveDateTime, &str)> = existing
        .iter()
        .filter_map(|f| {
            let at = store::parse_stamp(f.stamp.as_deref()?)?;
            Some((at, f.file_name.as_str()))
        })
        .collect();
    let new_stamp = new
        .rsplit_once('-')
        .and_then(|(_, rest)| rest.split_once('.'))
        .and_then(|(s, _)| store::parse_stamp(s));
    if let Some(at) = new_stamp {
        stamped.push((at, new));
    }
    // Newest first; two formats of one second: the later name first, as `newest` does.
    stamped.sort_by(|a, b| b.cmp(a));
    let times: Vec<chrono::NaiveDateTime> = stamped.iter().map(|(t, _)| *t).collect();
    retention::kept(&times, keep)
        .into_iter()
        .zip(&stamped)
        .filter(|(kept, (_, file))| !kept && *file != new)
        .map(|(_, (_, file))| (*file).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::order::Compression;

    fn found(file: &str) -> Found {
        // `existing` holds only archives of the plan's name (`store::list_all`).
        let (name, stamp, format) = store::ALL_FORMATS
            .iter()
            .find_map(|f| {
                let base = file.strip_suffix(&format!(".{}", f.extension()))?;
                Some(match base.rsplit_once('-') {
                    Some((n, s)) if store::parse_stamp(s).is_some() => (n, Some(s.to_string()), *f),
                    _ => (base, None, *f),
                })
            })
            .unwrap();
        assert_eq!(name, "db");
        Found {
            path: file.into(),
            file_name: file.into(),
            stamp,
            format,
            link: file.starts_with("link:"),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const GZ: Format = Format {
        compression: Compression::Gzip,
        encrypted: false,
    };

    fn args(timestamp: bool, overwrite: bool, keep: Option<&Keep>) -> PlanArgs<'_> {
        PlanArgs {
            name: "db",
            format: GZ,
            timestamp,
            overwrite,
            keep,
        }
    }

    #[test]
    fn timestamped_names_never_collide() {
        let now = at("2026-05-24T02:30:00.700Z");
        // (existing archives, the new name, whether it waits for its second)
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "db-20260524T023000Z.tar.gz", false),
            // Same second, any format: the next free second, waited for.
            (
                &["db-20260524T023000Z.tar.zst"],
                "db-20260524T023001Z.tar.gz",
                true,
            ),
            (
                &[
                    "db-20260524T023000Z.tar.gz",
                    "db-20260524T023001Z.tar.gz.age",
                ],
                "db-20260524T023002Z.tar.gz",
                true,
            ),
            // Older seconds and fixed names are no obstacle.
            (
                &["db.tar.gz", "db-20260524T022959Z.tar.gz"],
                "db-20260524T023000Z.tar.gz",
                false,
            ),
        ];
        for (existing, want, waits) in cases {
            let existing: Vec<Found> = existing.iter().map(|f| found(f)).collect();
            let plan = backup_plan(&args(true, false, None), &existing, now, 42).unwrap();
            assert_eq!(plan.file_name, *want);
            assert_eq!(plan.not_before.is_some(), *waits, "{want}");
            assert_eq!(plan.temp_name, format!(".{want}.dstart-tmp-42"));
            assert_eq!(plan.link.as_deref(), Some("db.tar.gz"));
            assert!(plan.remove.is_empty());
        }
        // Two runs one after the other in one second, each seeing what the other wrote.
        let first = backup_plan(&args(true, false, None), &[], now, 1).unwrap();
        let second =
            backup_plan(&args(true, false, None), &[found(&first.file_name)], now, 2).unwrap();
        assert_ne!(first.file_name, second.file_name);
    }

    #[test]
    fn fixed_names_need_overwrite_and_replace_other_formats() {
        let now = at("2026-05-24T02:30:00Z");
        let existing = [found("db.tar.zst"), found("db.tar.gz")];
        assert_eq!(
            backup_plan(&args(false, false, None), &existing, now, 1),
            Err(PlanError::Exists {
                file: "db.tar.zst".into()
            })
        );
        let plan = backup_plan(&args(false, true, None), &existing, now, 1).unwrap();
        assert_eq!(plan.file_name, "db.tar.gz");
        assert_eq!(plan.remove, ["db.tar.zst"]);
        assert_eq!(plan.link, None);
        // Timestamped archives of the name do not stop a fixed-name backup.
        let plan = backup_plan(
            &args(false, false, None),
            &[found("db-20260101T000000Z.tar.gz")],
            now,
            1,
        )
        .unwrap();
        assert!(plan.remove.is_empty());
    }

    #[test]
    fn keep_prunes_counting_the_new_archive() {
        let now = at("2026-05-24T02:30:00Z");
        let existing: Vec<Found> = [
            "db-20260523T023000Z.tar.gz",
            "db-20260522T023000Z.tar.zst",
            "db-20260521T023000Z.tar.gz",
            "db-20260521T010000Z.tar.gz",
            "db.tar.gz",
        ]
        .iter()
        .map(|f| found(f))
        .collect();
        let cases: &[(Keep, &[&str])] = &[
            (
                Keep::Last(2),
                &[
                    "db-20260522T023000Z.tar.zst",
                    "db-20260521T023000Z.tar.gz",
                    "db-20260521T010000Z.tar.gz",
                ],
            ),
            (Keep::Last(9), &[]),
            // The newest of each of the last 3 days: the 21st keeps its 02:30 archive only.
            (
                Keep::parse_text("daily=4").unwrap(),
                &["db-20260521T010000Z.tar.gz"],
            ),
            (
                Keep::parse_text("last=1 weekly=1").unwrap(),
                &[
                    "db-20260523T023000Z.tar.gz",
                    "db-20260522T023000Z.tar.zst",
                    "db-20260521T023000Z.tar.gz",
                    "db-20260521T010000Z.tar.gz",
                ],
            ),
        ];
        for (keep, want) in cases {
            let plan = backup_plan(&args(true, false, Some(keep)), &existing, now, 1).unwrap();
            assert_eq!(plan.file_name, "db-20260524T023000Z.tar.gz");
            assert_eq!(plan.remove, *want, "{keep:?}");
        }
    }
}
