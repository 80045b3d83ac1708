use super::*;
use crate::uri::canonicalize;

fn lookup(method: &str, raw: &str) -> Option<(&'static str, Option<String>)> {
    let uri = canonicalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    find(Method::parse(method).unwrap(), &uri).map(|m| (m.endpoint.template, m.param))
}

#[test]
fn no_two_rows_share_a_method_and_template() {
    for (i, a) in ENDPOINTS.iter().enumerate() {
        for b in &ENDPOINTS[i + 1..] {
            assert!(
                !(a.method == b.method && a.template == b.template),
                "duplicate row {} {}",
                a.method,
                a.template
            );
        }
    }
}

#[test]
fn every_row_is_reachable() {
    // A row shadowed by an earlier one could never decide anything: build a concrete path
    // from each template and check it finds that very row.
    for e in ENDPOINTS {
        let path = e
            .template
            .replace("{id}", "abc123")
            .replace("{name}", "vol1")
            .replace("{name*}", "registry:5000/team/app");
        let (template, _) = lookup(&e.method.to_string(), &path)
            .unwrap_or_else(|| panic!("{} {path} finds nothing", e.method));
        assert_eq!(template, e.template, "{} {path} is shadowed", e.method);
    }
}

#[test]
fn every_row_has_a_doc_line_and_body_endpoints_are_mediated() {
    for e in ENDPOINTS {
        assert!(!e.doc.is_empty(), "{} {}", e.method, e.template);
    }
    // Endpoints whose JSON body carries privileges must go through the sidecar.
    for (method, template) in [
        (Method::Post, "/containers/create"),
        (Method::Post, "/containers/{id}/update"),
        (Method::Post, "/containers/{id}/exec"),
        (Method::Post, "/networks/create"),
        (Method::Post, "/networks/{id}/connect"),
        (Method::Post, "/volumes/create"),
        (Method::Post, "/services/create"),
        (Method::Post, "/services/{id}/update"),
        (Method::Post, "/plugins/pull"),
        (Method::Post, "/swarm/init"),
        (Method::Post, "/swarm/join"),
        (Method::Post, "/commit"),
    ] {
        let e = ENDPOINTS
            .iter()
            .find(|e| e.method == method && e.template == template)
            .unwrap_or_else(|| panic!("{method} {template} missing"));
        assert_eq!(e.route, Route::Mediated, "{method} {template}");
    }
}

#[test]
fn versioned_and_unversioned_paths_find_the_same_endpoint() {
    for (method, raw, template, param) in [
        ("GET", "/containers/json", "/containers/json", None),
        (
            "POST",
            "/v1.41/containers/create",
            "/containers/create",
            None,
        ),
        (
            "GET",
            "/v1.24/containers/web/json",
            "/containers/{id}/json",
            Some("web"),
        ),
        (
            "POST",
            "/v1.50/exec/e1/start",
            "/exec/{id}/start",
            Some("e1"),
        ),
        (
            "GET",
            "/v1.41/images/library/busybox:latest/json",
            "/images/{name*}/json",
            Some("library/busybox:latest"),
        ),
        (
            "DELETE",
            "/v1.41/images/busybox",
            "/images/{name*}",
            Some("busybox"),
        ),
        ("GET", "/images/json", "/images/json", None),
        ("GET", "/images/get", "/images/get", None),
        ("GET", "/images/x/get", "/images/{name*}/get", Some("x")),
        ("HEAD", "/_ping", "/_ping", None),
        ("POST", "/session", "/session", None),
        (
            "GET",
            "/v1.41/containers/c/attach/ws",
            "/containers/{id}/attach/ws",
            Some("c"),
        ),
    ] {
        let found = lookup(method, raw);
        assert_eq!(
            found,
            Some((template, param.map(str::to_string))),
            "{method} {raw}"
        );
    }
}

#[test]
fn unknown_endpoints_find_nothing() {
    for (method, raw) in [
        ("GET", "/containers"),
        ("POST", "/containers/json"),
        ("PATCH", ""),
        ("GET", "/v1.41/containers/abc/json/extra"),
        ("GET", "/v1.41"),
        ("POST", "/v1.41/containers/abc/attach/extra"),
        ("GET", "/images//json"),
        ("GET", "/debug/pprof/heap"),
        ("GET", "/v1.41/v1.41/info"),
    ] {
        let Some(m) = Method::parse(method) else {
            continue;
        };
        let Ok(uri) = canonicalize(raw) else {
            continue;
        };
        assert!(find(m, &uri).is_none(), "{method} {raw} matched");
    }
}

#[test]
fn kinds_round_trip_through_their_names() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
    }
    assert_eq!(Kind::parse("root"), None);
}
