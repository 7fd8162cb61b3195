//! The unit command of the command line, `UNIT/COMMAND[:TOKEN...]`, and the tempid of a test
//! run, which is derived from it as typed.

use md5::{Digest, Md5};

use crate::error::ConfigError;

/// `UNIT/COMMAND[:TOKEN...]`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCommand {
    pub unit: String,
    pub command: String,
    pub tokens: Vec<String>,
}

impl UnitCommand {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::ExpectedUnitCommand {
            given: text.to_string(),
        };
        let (unit, rest) = text.rsplit_once('/').ok_or_else(bad)?;
        let mut parts = rest.split(':');
        let command = parts.next().unwrap_or_default();
        if unit.is_empty() || command.is_empty() || unit.starts_with('/') || unit.contains("..") {
            return Err(bad());
        }
        let tokens: Vec<String> = parts.map(str::to_string).collect();
        if let Some(empty) = tokens.iter().find(|t| t.is_empty()) {
            return Err(ConfigError::InvalidMode {
                file: None,
                token: empty.clone(),
                valid: Vec::new(),
            });
        }
        Ok(UnitCommand {
            unit: unit.to_string(),
            command: command.to_string(),
            tokens,
        })
    }

    /// `unit/command` without tokens.
    pub fn base(&self) -> String {
        format!("{}/{}", self.unit, self.command)
    }
}

impl std::fmt::Display for UnitCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.unit, self.command)?;
        for t in &self.tokens {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

/// The first 10 hex digits of the MD5 of the unit command as typed (`web/test:check`): the
/// suffix of a test run's pseudonames (ORIGINAL §6.2).
pub fn tempid(command: &str) -> String {
    crate::text::hex(&Md5::digest(command.as_bytes())[..5])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_command_parsing() {
        let uc = UnitCommand::parse("web/test:check:minimal").unwrap();
        assert_eq!(uc.unit, "web");
        assert_eq!(uc.command, "test");
        assert_eq!(uc.tokens, ["check", "minimal"]);
        assert_eq!(uc.to_string(), "web/test:check:minimal");
        let uc = UnitCommand::parse("a/b/start").unwrap();
        assert_eq!(uc.unit, "a/b");
        assert!(matches!(
            UnitCommand::parse("web"),
            Err(ConfigError::ExpectedUnitCommand { .. })
        ));
        assert!(UnitCommand::parse("/start").is_err());
        assert!(UnitCommand::parse("web/").is_err());
        assert!(UnitCommand::parse("web/start:").is_err());
    }

    #[test]
    fn tempid_is_md5_of_the_command_as_typed() {
        // `printf %s web/test:check | md5sum` = 683b5a2efaab6a327c1bbd5e5c2f715b
        assert_eq!(tempid("web/test:check"), "683b5a2efa");
        assert_eq!(tempid("web/test"), "e351913932");
    }
}
