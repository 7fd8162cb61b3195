//! age encryption of archives (the format the `age` command reads): recipients for a backup
//! (`age1…` keys and ssh-ed25519/ssh-rsa public keys), identities for a restore (an age identity
//! file or an unencrypted ssh private key). age streams in 64 KiB chunks: memory stays flat.

use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;

/// Recipients an archive is encrypted for.
pub struct Recipients(Vec<Box<dyn age::Recipient + Send + Sync>>);

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.0.len())
    }
}

/// Parses `recipients`; the error names the one that is not a key.
pub fn recipients(list: &[String]) -> Result<Recipients, String> {
    if list.is_empty() {
        return Err("no recipients given".into());
    }
    let mut out: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
    for r in list {
        let r = r.trim();
        if r.starts_with("age1") {
            let key = age::x25519::Recipient::from_str(r)
                .map_err(|e| format!("`{}` is not an age recipient: {e}", clip(r)))?;
            out.push(Box::new(key));
        } else if r.starts_with("ssh-") {
            let key = age::ssh::Recipient::from_str(r).map_err(|e| {
                format!(
                    "`{}` is not an ssh-ed25519 or ssh-rsa public key: {e:?}",
                    clip(r)
                )
            })?;
            out.push(Box::new(key));
        } else {
            return Err(format!(
                "`{}` is neither an age recipient (`age1…`) nor an ssh public key (`ssh-ed25519 …`, `ssh-rsa …`)",
                clip(r)
            ));
        }
    }
    Ok(Recipients(out))
}

fn clip(s: &str) -> String {
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(24).collect::<String>())
    } else {
        s.to_string()
    }
}

/// An age writer into `W`; [`Encrypting::finish`] writes the last chunk and returns `W`.
pub struct Encrypting<W: Write>(age::stream::StreamWriter<W>);

impl<W: Write> Encrypting<W> {
    pub fn new(recipients: &Recipients, out: W) -> io::Result<Self> {
        let encryptor = age::Encryptor::with_recipients(
            recipients
                .0
                .iter()
                .map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| io::Error::other(format!("age: {e}")))?;
        encryptor.wrap_output(out).map(Encrypting)
    }

    pub fn finish(self) -> io::Result<W> {
        self.0.finish()
    }
}

impl<W: Write> Write for Encrypting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The identities of a restore, read from a file.
pub struct Identities(Vec<Box<dyn age::Identity>>);

/// Reads the identity file `path`: age identities (`AGE-SECRET-KEY-1…`, `#` comments) or an
/// unencrypted OpenSSH private key.
pub fn identities(path: &Path) -> Result<Identities, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let head = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
    if head.trim_start().starts_with("-----BEGIN") {
        let key = age::ssh::Identity::from_buffer(
            BufReader::new(text.as_slice()),
            Some(path.display().to_string()),
        )
        .map_err(|e| format!("`{}` is not an ssh private key: {e}", path.display()))?;
        return match key {
            age::ssh::Identity::Unencrypted(_) => Ok(Identities(vec![Box::new(key)])),
            age::ssh::Identity::Encrypted(_) => Err(format!(
                "the ssh key `{}` is protected by a passphrase, which a restore cannot ask for",
                path.display()
            )),
            age::ssh::Identity::Unsupported(_) => Err(format!(
                "the ssh key `{}` is of a kind age does not support (ssh-ed25519 and ssh-rsa are)",
                path.display()
            )),
        };
    }
    let file = age::IdentityFile::from_buffer(BufReader::new(text.as_slice()))
        .map_err(|e| format!("`{}` is not an age identity file: {e}", path.display()))?;
    let ids = file
        .into_identities()
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    if ids.is_empty() {
        return Err(format!("`{}` holds no identity", path.display()));
    }
    Ok(Identities(ids))
}

/// Whether `head` (the first bytes of a file) starts an age file.
pub fn is_age(head: &[u8]) -> bool {
    head.starts_with(b"age-encryption.org/v1")
}

/// The plaintext of the age file read from `input`; fails at once when no identity opens it.
pub fn decrypting<R: Read + Send>(
    input: R,
    ids: &Identities,
) -> io::Result<impl Read + Send + use<R>> {
    let fail = |e: age::DecryptError| {
        io::Error::other(match e {
            age::DecryptError::NoMatchingKeys => {
                "none of the identities given can decrypt it (wrong identity)".to_string()
            }
            other => format!("it cannot be decrypted: {other}"),
        })
    };
    let decryptor =
        age::Decryptor::new_buffered(BufReader::with_capacity(1 << 16, input)).map_err(fail)?;
    decryptor
        .decrypt(ids.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(fail)
}

/// Drains `r` (for tests of round trips).
#[cfg(test)]
fn all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_wrong_identity() {
        let key = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let r = recipients(&[key.to_public().to_string()]).unwrap();
        let mut enc = Encrypting::new(&r, Vec::new()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        enc.write_all(&data).unwrap();
        let file = enc.finish().unwrap();
        assert!(is_age(&file));
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("key.txt");
        std::fs::write(
            &id,
            format!("# a comment\n{}\n", key.to_string().expose_secret()),
        )
        .unwrap();
        let ids = identities(&id).unwrap();
        let back = all(BufReader::new(decrypting(file.as_slice(), &ids).unwrap()));
        assert!(back == data);
        std::fs::write(&id, other.to_string().expose_secret()).unwrap();
        let Err(e) = decrypting(file.as_slice(), &identities(&id).unwrap()) else {
            panic!("decrypted with the wrong key")
        };
        assert!(e.to_string().contains("wrong identity"), "{e}");
        assert!(
            recipients(&["age1nope".into()])
                .unwrap_err()
                .contains("not an age recipient")
        );
        assert!(
            recipients(&["hello".into()])
                .unwrap_err()
                .contains("neither")
        );
        std::fs::write(&id, "nothing here").unwrap();
        assert!(identities(&id).is_err());
    }
}
