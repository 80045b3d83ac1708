use super::*;

fn canon(raw: &str) -> String {
    canonicalize(raw)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .to_string()
}

#[test]
fn ordinary_docker_uris_are_unchanged() {
    for raw in [
        "/_ping",
        "/v1.41/containers/json",
        "/v1.41/containers/json?all=1",
        "/v1.41/containers/create?name=web",
        "/v1.41/images/library/busybox:latest/json",
        "/v1.41/images/create?fromImage=busybox&tag=latest",
        "/v1.50/exec/0123abcd/start",
        "/containers/abc/attach?stream=1&stdin=1&stdout=1&stderr=1",
        "/images/registry.example:5000/team/app@sha256:00ff/json",
    ] {
        assert_eq!(canon(raw), raw);
    }
}

#[test]
fn encodings_are_decoded_once_and_re_encoded_one_way() {
    assert_eq!(canon("/v%31.41/containers/json"), "/v1.41/containers/json");
    assert_eq!(canon("/containers/%6a%73%6f%6e"), "/containers/json");
    // An encoded slash becomes a separator, as in Go's URL.Path.
    assert_eq!(canon("/containers/a%2Fb/json"), "/containers/a/b/json");
    assert_eq!(
        canon("/containers/json?filters=%7B%22name%22%3A%5B%22x%22%5D%7D"),
        "/containers/json?filters=%7B%22name%22%3A%5B%22x%22%5D%7D"
    );
    assert_eq!(canon("/build?t=a+b"), "/build?t=a%20b");
    assert_eq!(canon("/containers/json?all"), "/containers/json?all=");
}

#[test]
fn version_prefix_is_parsed_only_in_its_exact_shape() {
    let c = canonicalize("/v1.41/info").unwrap();
    assert_eq!(
        c.version,
        Some(Version {
            major: 1,
            minor: 41
        })
    );
    assert_eq!(c.path(), "/info");
    for raw in [
        "/v1/info",
        "/v1.41.2/info",
        "/V1.41/info",
        "/v1.x/info",
        "/v+1.41/info",
    ] {
        let c = canonicalize(raw).unwrap();
        assert_eq!(c.version, None, "{raw}");
        assert_eq!(c.segments.len(), 2, "{raw}");
    }
}

#[test]
fn ambiguous_paths_are_refused() {
    for raw in [
        "/",
        "//containers/json",
        "/containers//json",
        "/containers/json/",
        "/containers/./json",
        "/containers/../containers/json",
        "/v1.41/%2e%2e/containers/json",
        "/containers/%2E/json",
        "/containers/a%2F%2Fb/json",
    ] {
        assert_eq!(
            canonicalize(raw),
            Err(UriError::NonCanonicalPath),
            "{raw} was accepted"
        );
    }
}

#[test]
fn malformed_targets_are_refused() {
    let cases: &[(&str, UriError)] = &[
        ("http://dockerd/containers/json", UriError::NotOriginForm),
        ("*", UriError::NotOriginForm),
        ("", UriError::NotOriginForm),
        ("/containers/%zz/json", UriError::BadPercentEncoding),
        ("/containers/%4", UriError::BadPercentEncoding),
        ("/containers/%+1/json", UriError::BadPercentEncoding),
        ("/containers/a%00b/json", UriError::BadCharacter),
        ("/containers/a%0d%0aX: y/json", UriError::BadCharacter),
        ("/containers/%ff/json", UriError::BadCharacter),
        ("/containers/json#frag", UriError::BadCharacter),
        ("/containers/json?all=1;x=2", UriError::SemicolonInQuery),
    ];
    for (raw, err) in cases {
        assert_eq!(canonicalize(raw).as_ref(), Err(err), "{raw}");
    }
    assert_eq!(
        canonicalize(&format!("/{}", "a".repeat(MAX_URI_LEN))),
        Err(UriError::TooLong)
    );
}

/// A small deterministic generator (xorshift) for the property tests below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Random request targets built from the pieces that make URIs ambiguous.
fn random_target(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "/",
        "//",
        "/v1.41",
        "/v%31.41",
        "containers",
        "json",
        "a",
        "%2F",
        "%2f",
        "%2e",
        ".",
        "..",
        "%25",
        "%",
        "%0a",
        "%00",
        "?",
        "&",
        "=",
        "+",
        ";",
        "#",
        "x",
        "%41",
        "%ff",
        "name",
        "%3D",
        "%26",
        ":",
        "@",
        " ",
        "é",
        "%C3%A9",
    ];
    let mut s = String::from("/");
    for _ in 0..(rng.next() % 12) {
        s.push_str(rng.pick(PIECES));
    }
    s
}

#[test]
fn property_canonical_form_is_a_fixed_point() {
    let mut rng = Rng(0x5eed_d0c6_ea7e_0001);
    let mut accepted = 0;
    for _ in 0..200_000 {
        let raw = random_target(&mut rng);
        let Ok(c) = canonicalize(&raw) else {
            continue;
        };
        accepted += 1;
        let text = c.to_string();
        // Canonicalising the canonical string changes nothing: nginx forwards it, dockerd
        // reads it, and both see what the sidecar decided on.
        let again = canonicalize(&text).unwrap_or_else(|e| panic!("{raw} -> {text}: {e}"));
        assert_eq!(again, c, "{raw} -> {text}");
        assert_eq!(again.to_string(), text);
        // The canonical string needs no interpretation: nothing a proxy could normalise.
        assert!(!text.contains("//") && !text.contains("/./") && !text.contains("/../"));
        assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
        assert!(!text.contains('#') && !text.contains(';') && !text.contains('+'));
    }
    assert!(accepted > 10_000, "only {accepted} targets were accepted");
}

#[test]
fn property_segments_survive_the_round_trip() {
    let mut rng = Rng(0xfeed_beef_0000_0042);
    for _ in 0..50_000 {
        let seg: String = (0..1 + rng.next() % 8)
            .map(|_| {
                let c = char::from_u32((rng.next() % 0x250) as u32).unwrap_or('x');
                if c.is_control() || c == '/' {
                    'y'
                } else {
                    c
                }
            })
            .collect();
        if seg == "." || seg == ".." {
            continue;
        }
        let c = CanonicalUri {
            version: Some(Version {
                major: 1,
                minor: 41,
            }),
            segments: vec!["containers".into(), seg.clone(), "json".into()],
            query: vec![(seg.clone(), seg.clone())],
        };
        assert_eq!(canonicalize(&c.to_string()), Ok(c), "{seg:?}");
    }
}

#[test]
fn repeated_keys_are_kept_in_order_and_found_unless_listed() {
    let u = canonicalize("/build?t=a&extrahosts=x:1&t=b&n%61me=c&name=d").unwrap();
    assert_eq!(u.query_values("t").collect::<Vec<_>>(), ["a", "b"]);
    // dockerd's `FormValue` reads the first value.
    assert_eq!(u.query_value("name"), Some("c"));
    assert_eq!(u.repeated_key(&["t", "name"]), None);
    assert_eq!(u.repeated_key(&["t"]), Some("name"));
    assert_eq!(u.repeated_key(&[]), Some("t"));
    assert_eq!(
        u.to_string(),
        "/build?t=a&extrahosts=x%3A1&t=b&name=c&name=d"
    );
}
