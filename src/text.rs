//! Text helpers every stage shares, kept below all of them: the hex digits of a digest and the
//! characters Docker accepts in a name.

use std::fmt::Write as _;

/// `bytes` as lower-case hex digits, two per byte.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whether Docker accepts `c` in a container, network or volume name (`[a-zA-Z0-9_.-]`).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `name` can be a Docker container name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(is_name_char)
}

/// `text` with every character that `keep` refuses replaced by `with`.
pub fn replace_unless(text: &str, keep: impl Fn(char) -> bool, with: char) -> String {
    text.chars()
        .map(|c| if keep(c) { c } else { with })
        .collect()
}

/// `text` as a Docker name: characters Docker does not accept become `-`.
pub fn docker_name(text: &str) -> String {
    replace_unless(text, is_name_char, '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn container_names_follow_docker() {
        for good in ["ab", "web_1", "a.b-c", "0x"] {
            assert!(valid_container_name(good), "{good}");
        }
        for bad in ["", "a", "-ab", "_ab", ".ab", "a b", "a/b", "é1", "ab:1"] {
            assert!(!valid_container_name(bad), "{bad}");
        }
    }

    #[test]
    fn docker_names_replace_what_docker_refuses() {
        assert_eq!(docker_name("web"), "web");
        assert_eq!(docker_name("a/b c"), "a-b-c");
        assert_eq!(docker_name("x_y.z-1"), "x_y.z-1");
        assert_eq!(
            replace_unless("db-1.x", |c| c.is_ascii_alphanumeric(), '_'),
            "db_1_x"
        );
    }
}
