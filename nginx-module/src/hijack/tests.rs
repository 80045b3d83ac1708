use super::*;

fn resp<'a>(status: usize, content_type: &'a str, path: &'a str) -> Response<'a> {
    Response {
        status,
        upgrade_accepted: false,
        content_type: content_type.as_bytes(),
        has_content_length: false,
        chunked: false,
        path: path.as_bytes(),
    }
}

#[test]
fn upgrade_only_when_nginx_accepted_it() {
    let mut r = resp(
        101,
        "application/vnd.docker.raw-stream",
        "/v1.41/exec/ab/start",
    );
    assert_eq!(classify(&r), None);
    r.upgrade_accepted = true;
    assert_eq!(classify(&r), Some(Hijack::Upgrade));
    // BuildKit's h2c session is a 101 as well, on another path.
    r.path = b"/session";
    assert_eq!(classify(&r), Some(Hijack::Upgrade));
}

#[test]
fn plain_200_hijacks_on_attach_and_exec_start() {
    let raw = "application/vnd.docker.raw-stream";
    let mux = "application/vnd.docker.multiplexed-stream";
    for path in [
        "/containers/abc/attach",
        "/v1.24/containers/abc/attach",
        "/v1.41/containers/my-name/attach/",
        "/docker/v1.41/containers/abc/attach",
    ] {
        assert_eq!(
            classify(&resp(200, raw, path)),
            Some(Hijack::RawStream),
            "{path}"
        );
        assert_eq!(
            classify(&resp(200, mux, path)),
            Some(Hijack::MultiplexedStream),
            "{path}"
        );
    }
    assert_eq!(
        classify(&resp(200, raw, "/v1.41/exec/0123/start")),
        Some(Hijack::RawStream)
    );
}

#[test]
fn media_type_parameters_and_case_are_ignored() {
    let r = resp(
        200,
        " Application/VND.docker.raw-stream ; charset=binary",
        "/exec/x/start",
    );
    assert_eq!(classify(&r), Some(Hijack::RawStream));
}

#[test]
fn logs_and_other_streams_are_left_alone() {
    let mux = "application/vnd.docker.multiplexed-stream";
    // `docker logs -f`: same media type, chunked.
    let mut logs = resp(200, mux, "/v1.41/containers/abc/logs");
    logs.chunked = true;
    assert_eq!(classify(&logs), None);
    // Even unchunked, logs is not a hijacking endpoint.
    assert_eq!(
        classify(&resp(200, mux, "/v1.41/containers/abc/logs")),
        None
    );
    // A hijack media type with a length is an ordinary body.
    let mut sized = resp(200, mux, "/containers/abc/attach");
    sized.has_content_length = true;
    assert_eq!(classify(&sized), None);
    let mut chunked = resp(200, mux, "/containers/abc/attach");
    chunked.chunked = true;
    assert_eq!(classify(&chunked), None);
    // Errors from the hijacking endpoints are JSON.
    assert_eq!(
        classify(&resp(404, "application/json", "/containers/x/attach")),
        None
    );
    assert_eq!(
        classify(&resp(200, "application/json", "/containers/x/attach")),
        None
    );
}

#[test]
fn endpoint_matching_is_exact_on_segments() {
    for path in [
        "/containers/attach",
        "/containers//attach",
        "/containers/abc/attach/ws",
        "/containers/abc/attachx",
        "/xcontainers/abc/attach",
        "/exec/abc/resize",
        "/exec/start",
        "attach",
        "",
    ] {
        assert!(!is_hijacking_endpoint(path.as_bytes()), "{path}");
    }
}

#[test]
fn kinds_have_stable_names_and_indices() {
    for (i, kind) in Hijack::ALL.iter().enumerate() {
        assert_eq!(kind.index(), i);
    }
    assert_eq!(Hijack::MultiplexedStream.as_str(), "multiplexed-stream");
}
