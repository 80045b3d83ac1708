use super::*;
use std::time::Duration;

fn settings(toml_text: &str) -> (Settings, Vec<String>) {
    parse_table(toml_text).unwrap()
}

#[test]
fn durations() {
    assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
    assert_eq!(parse_duration("3d"), Some(Duration::from_secs(3 * 86400)));
    assert_eq!(parse_duration("90m"), Some(Duration::from_secs(5400)));
    for bad in ["", "h", "12", "1w", "-1h", "0h", "1.5h"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn every_problem_is_reported() {
    let (_, errors) = settings(
        r#"
address = "cache"
ca_lifetime = "10s"
[[hosts]]
name = "bad host"
rules = "cargo"
[[hosts]]
name = "a.test"
rules = "npm"
[[hosts]]
name = "A.test"
rules = "npm"
"#,
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(errors[0].starts_with("package_cache.ca_lifetime"));
    assert!(errors[1].starts_with("package_cache.address"));
    assert!(errors
        .iter()
        .any(|e| e.contains("unknown rule set \"cargo\"")));
    assert!(errors.iter().any(|e| e.contains("listed twice")));
}
