use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn target(uri: &str) -> Target {
    parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}")).0
}

fn code(uri: &str) -> &'static str {
    parse(uri).unwrap_err().code
}

#[test]
fn every_kind_of_path() {
    assert_eq!(target("/v2/"), Target::Base);
    assert_eq!(target("/v2/_catalog?n=10").name(), None);
    assert_eq!(
        target("/v2/a/b/tags/list?n=5"),
        Target::Tags { name: "a/b".into() }
    );
    assert_eq!(
        target("/v2/library/busybox/manifests/1.36.1"),
        Target::Manifest {
            name: "library/busybox".into(),
            reference: Reference::Tag("1.36.1".into())
        }
    );
    assert_eq!(
        target(&format!("/v2/x/manifests/{D}")),
        Target::Manifest {
            name: "x".into(),
            reference: Reference::Digest(D.into())
        }
    );
    assert_eq!(
        target(&format!("/v2/x/blobs/{D}")),
        Target::Blob {
            name: "x".into(),
            digest: D.into()
        }
    );
    assert_eq!(
        target("/v2/team/app/blobs/uploads/"),
        Target::UploadStart {
            name: "team/app".into()
        }
    );
    assert_eq!(
        target("/v2/app/blobs/uploads/3f2a-11ee_b.c=?_state=abc"),
        Target::Upload {
            name: "app".into(),
            uuid: "3f2a-11ee_b.c=".into()
        }
    );
}

#[test]
fn names_may_contain_the_route_words() {
    assert_eq!(
        target("/v2/blobs/manifests/tags/manifests/v1").name(),
        Some("blobs/manifests/tags")
    );
    assert_eq!(
        target(&format!("/v2/uploads/blobs/blobs/{D}")).name(),
        Some("uploads/blobs")
    );
}

#[test]
fn the_name_grammar_of_the_spec() {
    for ok in [
        "a", "a0", "a.b", "a_b", "a__b", "a-b", "a---b", "a/b/c", "0",
    ] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "A", "a..b", "a___b", "-a", "a-", ".a", "a.", "a//b", "a/", "/a", "..", ".", "a/../b",
        "a b", "a:b", "_a",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_name(&"a".repeat(255)).is_ok());
    assert!(check_name(&"a".repeat(256)).is_err());
}

#[test]
fn path_traversal_and_encoding_games_are_refused() {
    assert_eq!(code("/v2/../etc/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/a/../b/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/a/./b/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/a//b/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/%2e%2e/b/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/a%2fb/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v2/Team/manifests/x"), "NAME_INVALID");
    assert_eq!(code("/v1/_ping"), "UNSUPPORTED");
    assert_eq!(code("/v2/a/b"), "UNSUPPORTED");
    assert_eq!(code("/v2/a/manifests"), "UNSUPPORTED");
}

#[test]
fn digests_and_tags_are_checked() {
    assert_eq!(code("/v2/a/blobs/sha256:abc"), "DIGEST_INVALID");
    assert_eq!(
        code(&format!("/v2/a/blobs/{}", D.to_uppercase())),
        "DIGEST_INVALID"
    );
    assert_eq!(
        code(&format!("/v2/a/blobs/md5:{}", &D[7..])),
        "DIGEST_INVALID"
    );
    assert_eq!(code("/v2/a/blobs/latest"), "DIGEST_INVALID");
    assert_eq!(code("/v2/a/manifests/sha256:zz"), "DIGEST_INVALID");
    assert!(check_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
    assert_eq!(code("/v2/a/manifests/.hidden"), "TAG_INVALID");
    assert_eq!(
        code(&format!("/v2/a/manifests/{}", "t".repeat(129))),
        "TAG_INVALID"
    );
    assert!(check_tag(&"t".repeat(128)).is_ok());
    assert_eq!(code("/v2/a/blobs/uploads/..."), "BLOB_UPLOAD_INVALID");
}

#[test]
fn queries_pass_through_but_not_control_characters() {
    assert_eq!(
        parse("/v2/a/tags/list?n=1&last=b").unwrap().1,
        Some("n=1&last=b")
    );
    assert_eq!(code("/v2/a/tags/list?n=1\x7f"), "UNSUPPORTED");
}

#[test]
fn a_target_moves_to_another_repository() {
    let t = target(&format!("/v2/app/blobs/{D}"));
    assert_eq!(
        t.path_for("team-a/app"),
        format!("/v2/team-a/app/blobs/{D}")
    );
    let t = target("/v2/app/blobs/uploads/u1");
    assert_eq!(t.path_for("t/app"), "/v2/t/app/blobs/uploads/u1");
    assert_eq!(target("/v2/").path_for("x"), "/v2/");
}
