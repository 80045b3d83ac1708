//! Location configuration of `ngx_http_dockgate_module` and its merge (no unsafe code).

use ngx::http::{Merge, MergeConfigError};

/// Per-location settings. `None` means "not set here": the value comes from the enclosing
/// block, as nginx's `NGX_CONF_UNSET` does, so `dockgate off;` can cancel an inherited `on`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocConf {
    /// `dockgate on|off;` (default `off`): relay Docker hijacks in full duplex with half-close.
    pub enable: Option<bool>,
}

impl LocConf {
    pub fn enabled(&self) -> bool {
        self.enable.unwrap_or(false)
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        self.enable = self.enable.or(prev.enable);
        Ok(())
    }
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
        let parent = LocConf { enable: Some(true) };
        let mut child = LocConf::default();
        child.merge(&parent).unwrap();
        assert!(child.enabled());

        let mut off = LocConf {
            enable: Some(false),
        };
        off.merge(&parent).unwrap();
        assert!(!off.enabled());

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
}
