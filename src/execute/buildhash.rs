//! The `dstart.build-hash` label of the images dstart builds (SPEC "Images and build chains"),
//! and the decision whether an existing image is rebuilt. The hash covers the rendered
//! Dockerfile and its path, the build context after `.dockerignore` (paths, kinds, modes,
//! contents, link targets), build args, target, labels, and the image ID of every `FROM` image
//! that dstart built. File contents are streamed through the hasher, never held in memory.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use crate::execute::context::{ContextSpec, context_files};
use crate::execute::hashcache::{HashCache, Stamp};

/// The label holding the hash of an image's inputs.
pub const LABEL_BUILD_HASH: &str = "dstart.build-hash";
/// The repository (name without tag) an image was built as: it stays when a rebuild takes
/// the tag away, so that retention finds the dangling image.
pub const LABEL_BUILD_REPOSITORY: &str = "dstart.build-repository";

/// What, besides the context files, makes an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildInputs {
    /// The Dockerfile's path inside the context.
    pub dockerfile_path: String,
    /// The Dockerfile as sent (rendered from its template when there is one).
    pub dockerfile: Vec<u8>,
    pub buildargs: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `FROM` image name → the ID of that image, for the images dstart built.
    pub from_ids: BTreeMap<String, String>,
}

/// One context entry as the hash sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// Feeds length-prefixed fields into SHA-256, so that no two different inputs share a stream.
struct Fields(Sha256);

impl Fields {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn map(&mut self, name: &str, map: &BTreeMap<String, String>) {
        self.field(name.as_bytes());
        self.field(&(map.len() as u64).to_le_bytes());
        for (k, v) in map {
            self.field(k.as_bytes());
            self.field(v.as_bytes());
        }
    }

    fn entry(&mut self, rel: &str, kind: Kind, mode: u32, content: &[u8]) {
        self.field(rel.as_bytes());
        self.field(&[kind as u8]);
        self.field(&mode.to_le_bytes());
        self.field(content);
    }
}

/// The SHA-256 of a file's content, read in chunks.
fn file_digest(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(sha.finalize().into())
}

/// The label holding what the build hash is made of, so that `run --plan` can say which input
/// changed: `{"dockerfile": …, "context": …, "from": {IMAGE: ID}}` (digests, never contents).
pub const LABEL_BUILD_PARTS: &str = "dstart.build-parts";

/// The build hash of an image and the digests it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildHash {
    /// `sha256:<hex>`: the `dstart.build-hash` label.
    pub full: String,
    /// The Dockerfile, its path, build args, target and labels.
    pub dockerfile: String,
    /// The context files after `.dockerignore`.
    pub context: String,
    /// `FROM` image → its ID, for the images dstart built.
    pub from: BTreeMap<String, String>,
}

impl BuildHash {
    /// The value of the `dstart.build-parts` label.
    pub fn parts_label(&self) -> String {
        serde_json::json!({
            "dockerfile": self.dockerfile,
            "context": self.context,
            "from": self.from,
        })
        .to_string()
    }
}

/// Which inputs differ between the `dstart.build-parts` label `old` and `new`: `base IMAGE
/// changed` for each `FROM` image whose ID differs, `Dockerfile changed`, `context changed`;
/// empty when the label cannot be read.
pub fn changed_parts(old: &str, new: &BuildHash) -> Vec<String> {
    let Ok(old) = serde_json::from_str::<serde_json::Value>(old) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let old_from = old.get("from").and_then(serde_json::Value::as_object);
    for (image, id) in &new.from {
        let was = old_from.and_then(|f| f.get(image)).and_then(|v| v.as_str());
        if was != Some(id.as_str()) {
            out.push(format!("base {image} changed"));
        }
    }
    let differs = |key: &str, now: &str| old.get(key).and_then(|v| v.as_str()) != Some(now);
    if differs("dockerfile", &new.dockerfile) {
        out.push("Dockerfile changed".into());
    }
    if differs("context", &new.context) {
        out.push("context changed".into());
    }
    out
}

/// Per hashing thread: (index into the entries, digest) of the files it read.
type Digests = std::io::Result<Vec<(usize, [u8; 32])>>;

/// One context entry as hashed: its path, kind, permission bits and content (a file's SHA-256,
/// a link's target, nothing for a directory).
type Entry = (String, Kind, u32, Vec<u8>);

/// The entries of the context `ctx`, in order. Files are digested by a few threads at once
/// (the digests, not the contents, go into the hash, so the order they finish in is no
/// matter): a large context is read at the speed of the disk and the CPUs, not of one core.
fn context_entries(ctx: &ContextSpec, cache: &mut HashCache) -> std::io::Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut files: Vec<(usize, std::path::PathBuf, Stamp)> = Vec::new();
    for (rel, path) in context_files(ctx)? {
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else if meta.file_type().is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        let content = match kind {
            Kind::File => {
                let stamp = Stamp::of(&meta);
                if let Some(digest) = cache.get(&rel, &stamp) {
                    digest.to_vec()
                } else {
                    files.push((entries.len(), path, stamp));
                    Vec::new()
                }
            }
            Kind::Symlink => std::fs::read_link(&path)?
                .as_os_str()
                .as_encoded_bytes()
                .to_vec(),
            Kind::Dir | Kind::Other => Vec::new(),
        };
        entries.push((rel, kind, mode, content));
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4)
        .min(files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let digests: Vec<Digests> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((at, path, _)) = files.get(i) else {
                            return Ok(out);
                        };
                        out.push((*at, file_digest(path)?));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a hashing thread panicked")))
            })
            .collect()
    });
    let stamps: HashMap<usize, Stamp> = files.iter().map(|(at, _, s)| (*at, *s)).collect();
    for part in digests {
        for (at, digest) in part? {
            if let Some(stamp) = stamps.get(&at) {
                cache.put(&entries[at].0, *stamp, &digest);
            }
            entries[at].3 = digest.to_vec();
        }
    }
    let keep: std::collections::HashSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    cache.retain(&keep);
    Ok(entries)
}

/// The build hash of `inputs` over the context `ctx` (the files the build would send), as
/// `sha256:<hex>`.
pub fn build_hash(inputs: &BuildInputs, ctx: &ContextSpec) -> std::io::Result<String> {
    build_hash_parts(inputs, ctx).map(|h| h.full)
}

/// [`build_hash`] and the digests of its parts. The parts are digests of their own; the full
/// hash is one stream over all inputs (as it always was, so that no image rebuilds for it).
pub fn build_hash_parts(inputs: &BuildInputs, ctx: &ContextSpec) -> std::io::Result<BuildHash> {
    build_hash_cached(inputs, ctx, None)
}

/// [`build_hash_parts`] with the file digests remembered in `cache_dir` ([`HashCache`]).
pub fn build_hash_cached(
    inputs: &BuildInputs,
    ctx: &ContextSpec,
    cache_dir: Option<&std::path::Path>,
) -> std::io::Result<BuildHash> {
    let mut cache = HashCache::open(cache_dir, &ctx.dir);
    let mut h = Fields(Sha256::new());
    let mut df = Fields(Sha256::new());
    let mut cx = Fields(Sha256::new());
    h.field(b"dstart build-hash 1");
    for f in [&mut h, &mut df] {
        f.field(inputs.dockerfile_path.as_bytes());
        f.field(&inputs.dockerfile);
        f.map("buildargs", &inputs.buildargs);
        f.field(inputs.target.as_deref().unwrap_or_default().as_bytes());
        f.field(&[u8::from(inputs.target.is_some())]);
        f.map("labels", &inputs.labels);
    }
    h.map("from", &inputs.from_ids);
    let entries = context_entries(ctx, &mut cache)?;
    cache.save();
    for (rel, kind, mode, content) in entries {
        h.entry(&rel, kind, mode, &content);
        // The Dockerfile is a context file, but its change is the Dockerfile's.
        if rel != inputs.dockerfile_path {
            cx.entry(&rel, kind, mode, &content);
        }
    }
    let digest = |f: Fields| format!("sha256:{}", &crate::text::hex(&f.0.finalize())[..16]);
    Ok(BuildHash {
        full: format!("sha256:{}", crate::text::hex(&h.0.finalize())),
        dockerfile: digest(df),
        context: digest(cx),
        from: inputs.from_ids.clone(),
    })
}

/// Whether an image is (re)built, and why (shown at `-d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildDecision {
    Build(String),
    Skip(String),
}

/// Decides for image `image` whose inputs hash to `hash`: `existing` is the `dstart.build-hash`
/// label of the image on the engine (`Some(None)`: the image has no such label); `no_cache`
/// (`--no-cache`) rebuilds whatever the labels say.
pub fn decide(
    image: &str,
    existing: Option<Option<&str>>,
    hash: &str,
    no_cache: bool,
) -> BuildDecision {
    match existing {
        None => BuildDecision::Build(format!("the image {image} does not exist")),
        Some(_) if no_cache => BuildDecision::Build(format!(
            "--no-cache rebuilds the image {image} without the engine's cache"
        )),
        Some(None) => BuildDecision::Build(format!(
            "the image {image} has no {LABEL_BUILD_HASH} label (dstart did not build it)"
        )),
        Some(Some(old)) if old != hash => BuildDecision::Build(format!(
            "the inputs of the image {image} changed ({LABEL_BUILD_HASH} {} → {})",
            short(old),
            short(hash)
        )),
        Some(Some(_)) => BuildDecision::Skip(format!(
            "The image {image} is up to date with its build directory (skipped)"
        )),
    }
}

fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    type InputChange = fn(&mut BuildInputs);
    type DirChange = fn(&std::path::Path);

    fn context(files: &[(&str, &str)]) -> (tempfile::TempDir, ContextSpec) {
        let tmp = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = tmp.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let spec = ContextSpec {
            dir: tmp.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            rendered: None,
            template: None,
        };
        (tmp, spec)
    }

    fn inputs() -> BuildInputs {
        BuildInputs {
            dockerfile_path: "Dockerfile".into(),
            dockerfile: b"FROM base\nCOPY . /app\n".to_vec(),
            buildargs: BTreeMap::from([("V".into(), "1".into())]),
            target: None,
            labels: BTreeMap::new(),
            from_ids: BTreeMap::new(),
        }
    }

    const FILES: &[(&str, &str)] = &[
        ("Dockerfile", "FROM base\nCOPY . /app\n"),
        (".dockerignore", "*.log\n"),
        ("app/main.sh", "echo hi\n"),
        ("debug.log", "noise\n"),
    ];

    #[test]
    fn every_input_changes_the_hash() {
        let (_tmp, ctx) = context(FILES);
        let base = build_hash(&inputs(), &ctx).unwrap();
        assert!(base.starts_with("sha256:") && base.len() == 71, "{base}");
        assert_eq!(base, build_hash(&inputs(), &ctx).unwrap(), "deterministic");
        let changes: &[(&str, InputChange)] = &[
            ("dockerfile", |i| i.dockerfile.push(b'\n')),
            ("dockerfile path", |i| {
                i.dockerfile_path = "Dockerfile.prod".into();
            }),
            ("build arg value", |i| {
                i.buildargs.insert("V".into(), "2".into());
            }),
            ("build arg added", |i| {
                i.buildargs.insert("W".into(), String::new());
            }),
            ("target", |i| i.target = Some("prod".into())),
            ("empty target", |i| i.target = Some(String::new())),
            ("label", |i| {
                i.labels.insert("a".into(), "b".into());
            }),
            ("FROM image id", |i| {
                i.from_ids.insert("base".into(), "sha256:1".into());
            }),
        ];
        for (what, change) in changes {
            let mut changed = inputs();
            change(&mut changed);
            assert_ne!(build_hash(&changed, &ctx).unwrap(), base, "{what}");
        }
    }

    #[test]
    fn context_changes_change_the_hash_and_ignored_files_do_not() {
        let (tmp, ctx) = context(FILES);
        let base = build_hash(&inputs(), &ctx).unwrap();
        let d = tmp.path();
        std::fs::write(d.join("debug.log"), "other noise\n").unwrap();
        std::fs::write(d.join("new.log"), "x").unwrap();
        assert_eq!(
            build_hash(&inputs(), &ctx).unwrap(),
            base,
            "a .dockerignored file"
        );
        let changes: &[(&str, DirChange)] = &[
            ("content", |d| {
                std::fs::write(d.join("app/main.sh"), "echo ho\n").unwrap();
            }),
            ("new file", |d| {
                std::fs::write(d.join("app/more"), "").unwrap();
            }),
            ("empty dir", |d| {
                std::fs::create_dir(d.join("empty")).unwrap();
            }),
            ("mode", |d| {
                std::fs::set_permissions(
                    d.join("app/main.sh"),
                    std::fs::Permissions::from_mode(0o755),
                )
                .unwrap();
            }),
            ("rename", |d| {
                std::fs::rename(d.join("app/main.sh"), d.join("app/main2.sh")).unwrap();
            }),
            ("symlink", |d| {
                std::os::unix::fs::symlink("main.sh", d.join("app/link")).unwrap();
            }),
            (".dockerignore", |d| {
                std::fs::write(d.join(".dockerignore"), "").unwrap();
            }),
        ];
        for (what, change) in changes {
            let (tmp, ctx) = context(FILES);
            change(tmp.path());
            assert_ne!(build_hash(&inputs(), &ctx).unwrap(), base, "{what}");
        }
    }

    #[test]
    fn a_rendered_dockerfile_is_hashed_and_its_template_is_not_a_context_file() {
        let (tmp, mut ctx) = context(&[("Dockerfile.tera", "FROM {{ B }}\n"), ("a", "x")]);
        ctx.rendered = Some(b"FROM one\n".to_vec());
        ctx.template = Some("Dockerfile.tera".into());
        let mut i = inputs();
        i.dockerfile = b"FROM one\n".to_vec();
        let base = build_hash(&i, &ctx).unwrap();
        std::fs::write(tmp.path().join("Dockerfile.tera"), "FROM {{ B }} \n").unwrap();
        assert_eq!(build_hash(&i, &ctx).unwrap(), base);
    }

    #[test]
    fn remembered_digests_give_the_same_hash_and_never_hide_a_change() {
        let (tmp, ctx) = context(FILES);
        let cache = tmp.path().join(".cache");
        std::fs::write(tmp.path().join(".dockerignore"), "*.log\n.cache\n").unwrap();
        // Files are remembered once their times are older than the racy window.
        std::thread::sleep(crate::execute::hashcache::RACY + std::time::Duration::from_millis(100));
        let plain = build_hash_parts(&inputs(), &ctx).unwrap();
        let first = build_hash_cached(&inputs(), &ctx, Some(&cache)).unwrap();
        assert!(cache.read_dir().unwrap().next().is_some(), "a cache file");
        let second = build_hash_cached(&inputs(), &ctx, Some(&cache)).unwrap();
        assert_eq!((&first, &second), (&plain, &plain));

        // The same size and modification time, other content: seen.
        crate::execute::hashcache::rewrite_keeping_mtime(
            &tmp.path().join("app/main.sh"),
            "echo HI\n",
        );
        let changed = build_hash_cached(&inputs(), &ctx, Some(&cache)).unwrap();
        assert_ne!(changed.full, plain.full);
        assert_eq!(changed, build_hash_parts(&inputs(), &ctx).unwrap());
    }

    #[test]
    fn the_parts_name_what_changed() {
        let (tmp, ctx) = context(FILES);
        let mut i = inputs();
        i.from_ids.insert("base".into(), "sha256:1".into());
        let old = build_hash_parts(&i, &ctx).unwrap();
        assert_eq!(old.full, build_hash(&i, &ctx).unwrap());
        let label = old.parts_label();
        assert!(!label.contains("echo hi"), "digests only: {label}");
        assert_eq!(changed_parts(&label, &old), Vec::<String>::new());
        std::fs::write(tmp.path().join("app/main.sh"), "echo ho\n").unwrap();
        i.from_ids.insert("base".into(), "sha256:2".into());
        let new = build_hash_parts(&i, &ctx).unwrap();
        assert_eq!(
            changed_parts(&label, &new),
            ["base base changed", "context changed"]
        );
        i.dockerfile.push(b'\n');
        let new = build_hash_parts(&i, &ctx).unwrap();
        assert_eq!(changed_parts(&label, &new).len(), 3);
        std::fs::write(tmp.path().join("Dockerfile"), "FROM other\n").unwrap();
        i.dockerfile = b"FROM other\n".to_vec();
        let only = build_hash_parts(&i, &ctx).unwrap();
        assert_eq!(
            only.context, new.context,
            "the Dockerfile is not the context's"
        );
        assert_ne!(only.dockerfile, new.dockerfile);
        assert_eq!(changed_parts("not json", &new), Vec::<String>::new());
    }

    #[test]
    fn decisions() {
        use BuildDecision::{Build, Skip};
        let h = "sha256:aaaaaaaaaaaaaaaa";
        let cases: &[(Option<Option<&str>>, bool, bool)] = &[
            (None, false, true),
            (None, true, true),
            (Some(None), false, true),
            (Some(Some("sha256:bbbb")), false, true),
            (Some(Some(h)), false, false),
            (Some(Some(h)), true, true),
        ];
        for (existing, no_cache, builds) in cases {
            let d = decide("me/app:latest", *existing, h, *no_cache);
            assert_eq!(
                matches!(d, Build(_)),
                *builds,
                "{existing:?} {no_cache}: {d:?}"
            );
            assert!(matches!(d, Build(_) | Skip(_)));
        }
        assert_eq!(
            decide("i", Some(Some("sha256:bbbb")), h, false),
            Build(
                "the inputs of the image i changed (dstart.build-hash bbbb → aaaaaaaaaaaa)".into()
            )
        );
    }
}
