//! Configuration of `ngx_http_dockgate_module`: the `http` block's policy and the variables
//! the decisions write, and per-location settings with their merge (no unsafe code).

use dockgate_decision::config::Config;
use ngx::http::{Merge, MergeConfigError};

/// The `http` block's settings.
#[derive(Debug, Default)]
pub struct MainConf {
    /// `dockgate_policy FILE;`: the gateway's configuration, as the sidecar reads it.
    pub policy: Option<Config>,
    /// Indices of the variables the decisions read and write (set in postconfiguration).
    pub vars: Vars,
}

/// Indices (in the cycle's variables) of the module's decision variables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vars {
    pub listener: usize,
    pub uri: usize,
    pub upstream: usize,
    pub user: usize,
    pub role: usize,
    pub status: usize,
    pub error: usize,
    pub decision: usize,
}

/// Per-location settings. `None` means "not set here": the value comes from the enclosing
/// block, as nginx's `NGX_CONF_UNSET` does, so `dockgate off;` can cancel an inherited `on`.
#[derive(Clone, Debug, Default)]
pub struct LocConf {
    /// `dockgate on|off;` (default `off`): relay Docker hijacks in full duplex with half-close.
    pub enable: Option<bool>,
    /// `dockgate_decide @name|off;`: decide each request here; those that need the engine
    /// go to the named location (`Some(None)`: `off`).
    pub decide: Option<Option<String>>,
}

impl LocConf {
    pub fn enabled(&self) -> bool {
        self.enable.unwrap_or(false)
    }

    /// The named location requests that need the engine go to, when this location decides.
    pub fn hand_over(&self) -> Option<&str> {
        self.decide.as_ref()?.as_deref()
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        self.enable = self.enable.or(prev.enable);
        if self.decide.is_none() {
            self.decide.clone_from(&prev.decide);
        }
        Ok(())
    }
}

/// Parses the argument of `dockgate_decide`: a named location, or `off`.
pub fn parse_hand_over(value: &[u8]) -> Option<Option<String>> {
    if value.eq_ignore_ascii_case(b"off") {
        return Some(None);
    }
    let name = core::str::from_utf8(value).ok()?;
    (name.len() > 1 && name.starts_with('@')).then(|| Some(name.to_string()))
}

/// Parses the argument of a flag directive, accepting exactly what nginx's own
/// `ngx_conf_set_flag_slot` accepts.
pub fn parse_flag(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_inherits_unless_set() {
        let parent = LocConf {
            enable: Some(true),
            decide: Some(Some("@ask".into())),
        };
        let mut child = LocConf::default();
        child.merge(&parent).unwrap();
        assert!(child.enabled());
        assert_eq!(child.hand_over(), Some("@ask"));

        let mut off = LocConf {
            enable: Some(false),
            decide: Some(None),
        };
        off.merge(&parent).unwrap();
        assert!(!off.enabled());
        assert_eq!(off.hand_over(), None);

        let mut unset = LocConf::default();
        unset.merge(&LocConf::default()).unwrap();
        assert!(!unset.enabled());
    }

    #[test]
    fn flags_parse_like_nginx() {
        assert_eq!(parse_flag(b"on"), Some(true));
        assert_eq!(parse_flag(b"OFF"), Some(false));
        assert_eq!(parse_flag(b"yes"), None);
        assert_eq!(parse_flag(b""), None);
    }

    #[test]
    fn hand_over_names_a_named_location() {
        assert_eq!(parse_hand_over(b"@ask"), Some(Some("@ask".into())));
        assert_eq!(parse_hand_over(b"off"), Some(None));
        assert_eq!(parse_hand_over(b"/ask"), None);
        assert_eq!(parse_hand_over(b"@"), None);
    }
}
