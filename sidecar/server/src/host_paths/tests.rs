use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use dockgate_policy::gojson;

use super::*;

/// A directory (canonical) removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Tree {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("host-paths-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        Tree(fs::canonicalize(&dir).unwrap())
    }

    /// An allow-list of this tree alone.
    fn allow(&self) -> Vec<PathBuf> {
        vec![self.0.clone()]
    }

    fn join(&self, rest: &str) -> PathBuf {
        self.0.join(rest)
    }

    fn text(&self, rest: &str) -> String {
        self.join(rest).display().to_string()
    }

    fn mkdir(&self, rest: &str) -> &Tree {
        fs::create_dir_all(self.join(rest)).unwrap();
        self
    }

    fn link(&self, rest: &str, target: impl AsRef<Path>) -> &Tree {
        symlink(target, self.join(rest)).unwrap();
        self
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A mount table with `/` plain and each of `nosymfollow` mounted on itself with the flag.
fn table(nosymfollow: &[&Path]) -> Vec<u8> {
    let mut t = String::from("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n");
    for (i, p) in nosymfollow.iter().enumerate() {
        let p = p.display();
        t += &format!(
            "{} 27 254:0 {p} {p} rw,relatime,nosymfollow shared:{i} - ext4 /dev/vda rw\n",
            100 + i
        );
    }
    t.into_bytes()
}

fn check(allowlist: &[PathBuf], sources: &[String], nosymfollow: &[&Path]) -> Result<(), String> {
    let t = table(nosymfollow);
    check_with(allowlist, sources, &|| Ok(t.clone()))
}

#[test]
fn the_entry_itself_is_allowed_on_any_mount() {
    let t = Tree::new();
    let allow = t.allow();
    check(&allow, &[t.text("")], &[]).unwrap();
    // Written with `.` and repeated slashes, as dockerd cleans it.
    check(&allow, &[format!("{}/./", t.0.display())], &[]).unwrap();
}

#[test]
fn sources_outside_the_allowlist_are_the_binds_rules() {
    let t = Tree::new();
    check(&t.allow(), &["/etc".into(), "/".into()], &[]).unwrap();
    check(&[], &[t.text("x")], &[]).unwrap();
}

#[test]
fn a_sub_path_needs_a_nosymfollow_mount() {
    let t = Tree::new();
    t.mkdir("sub/deeper");
    let allow = t.allow();
    let e = check(&allow, &[t.text("sub")], &[]).unwrap_err();
    assert!(e.contains("not a nosymfollow mount"), "{e}");
    assert!(
        e.contains(&format!(
            "mount --bind -o nosymfollow {0} {0}",
            t.0.display()
        )),
        "{e}"
    );
    check(&allow, &[t.text("sub"), t.text("sub/deeper")], &[&t.0]).unwrap();
}

#[test]
fn a_mount_inside_the_tree_without_nosymfollow_is_refused() {
    let t = Tree::new();
    t.mkdir("sub/deeper");
    let sub = t.join("sub");
    let mut text = table(&[&t.0]);
    text.extend_from_slice(
        format!(
            "200 100 254:0 /x {} rw,relatime - ext4 /dev/vda rw\n",
            sub.display()
        )
        .as_bytes(),
    );
    let e = check_with(&t.allow(), &[t.text("sub/deeper")], &|| Ok(text.clone())).unwrap_err();
    assert!(
        e.contains(&format!("{} is not on a nosymfollow mount", sub.display())),
        "{e}"
    );
    // `sub` itself is found on the tree's mount.
    check_with(&t.allow(), &[t.text("sub")], &|| Ok(text.clone())).unwrap();
}

#[test]
fn symlinks_below_the_entry_are_refused_wherever_they_are() {
    let t = Tree::new();
    t.mkdir("real/dir")
        .link("middle", "/")
        .link("end", "/")
        .link("dangling", t.join("nothing"))
        .link("inside", t.join("real"))
        .link("relative", "real");
    let allow = t.allow();
    for (source, link) in [
        ("middle/etc", "middle"),
        ("end", "end"),
        ("dangling", "dangling"),
        ("dangling/below", "dangling"),
        ("inside/dir", "inside"),
        ("relative", "relative"),
    ] {
        // With or without nosymfollow: refused at create, naming the symlink.
        for mounts in [&[][..], &[t.0.as_path()][..]] {
            let e = check(&allow, &[t.text(source)], mounts).unwrap_err();
            assert!(
                e.contains(&format!("goes through the symlink {}", t.text(link))),
                "{source}: {e}"
            );
        }
    }
}

#[test]
fn a_symlink_anywhere_in_the_list_refuses_the_create() {
    let t = Tree::new();
    t.mkdir("ok").link("x", "/");
    let e = check(&t.allow(), &[t.text("ok"), t.text("x")], &[&t.0]).unwrap_err();
    assert!(e.contains("symlink"), "{e}");
}

#[test]
fn missing_paths_are_left_to_dockerd_to_create() {
    let t = Tree::new();
    let allow = t.allow();
    check(&allow, &[t.text("new/deeper")], &[&t.0]).unwrap();
    // Still below the entry: without nosymfollow, a container could make it a symlink first.
    assert!(check(&allow, &[t.text("new")], &[]).is_err());
    // A missing entry is the operator's: dockerd creates it.
    let missing = t.join("not-yet");
    check(
        std::slice::from_ref(&missing),
        &[missing.display().to_string()],
        &[],
    )
    .unwrap();
}

#[test]
fn a_file_in_the_middle_is_refused() {
    let t = Tree::new();
    fs::write(t.join("file"), "").unwrap();
    let e = check(&t.allow(), &[t.text("file/x")], &[&t.0]).unwrap_err();
    assert!(e.contains("cannot check"), "{e}");
}

#[test]
fn an_entry_inside_another_is_container_writable() {
    let t = Tree::new();
    t.mkdir("cache");
    let allow = [t.0.clone(), t.join("cache")];
    let e = check(&allow, &[t.text("cache")], &[]).unwrap_err();
    assert!(e.contains("not a nosymfollow mount"), "{e}");
    check(&allow, &[t.text("cache")], &[&t.0]).unwrap();
    // And the inner entry's symlinks are checked from the outer one.
    let inner = Tree::new();
    let u = Tree::new();
    u.link("link", &inner.0);
    let allow = [u.0.clone(), u.join("link")];
    let e = check(&allow, &[u.text("link")], &[&u.0]).unwrap_err();
    assert!(e.contains("goes through the symlink"), "{e}");
}

#[test]
fn an_operators_symlink_to_the_entry_is_resolved_once() {
    let real = Tree::new();
    real.mkdir("sub").link("x", "/");
    let links = Tree::new();
    links.link("ci", &real.0);
    let allow = [links.join("ci")];
    // The entry through the operator's symlink: allowed; below it, the real tree's mount
    // counts.
    check(&allow, &[links.text("ci")], &[]).unwrap();
    check(&allow, &[links.text("ci/sub")], &[&real.0]).unwrap();
    assert!(check(&allow, &[links.text("ci/sub")], &[&links.0]).is_err());
    let e = check(&allow, &[links.text("ci/x")], &[&real.0]).unwrap_err();
    assert!(e.contains(&real.text("x")), "{e}");
}

#[test]
fn an_unreadable_mount_table_refuses_sub_paths() {
    let t = Tree::new();
    t.mkdir("sub");
    let e = check_with(&t.allow(), &[t.text("sub")], &|| {
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    })
    .unwrap_err();
    assert!(e.contains("/proc/self/mountinfo"), "{e}");
    check_with(&t.allow(), &[t.text("")], &|| {
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    })
    .unwrap();
}

#[test]
fn relative_and_climbing_sources_are_refused() {
    let t = Tree::new();
    for source in ["relative/path", &format!("{}/../etc", t.0.display())] {
        assert!(check(&t.allow(), &[source.to_string()], &[&t.0]).is_err());
    }
}

const MOUNTINFO_TEXT: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,nosymfollow
47 27 254:0 /srv/ci /srv/ci rw,relatime,nosymfollow shared:5 - ext4 /dev/vda rw
48 47 0:40 / /srv/ci/tmp rw,nosuid - tmpfs tmpfs rw
49 27 254:0 /srv/plain /srv/plain rw,relatime - ext4 /dev/vda rw
50 49 254:0 /srv/plain /srv/plain rw,nosymfollow - ext4 /dev/vda rw
51 27 254:0 /a /srv/with\\040space ro,nosymfollow - ext4 /dev/vda rw
52 27 254:0 /b /srv/stacked rw,nosymfollow - ext4 /dev/vda rw
53 52 254:0 /c /srv/stacked rw - ext4 /dev/vda rw
";

#[test]
fn nosymfollow_is_read_from_the_mount_holding_the_directory() {
    let t = MOUNTINFO_TEXT.as_bytes();
    let yes = |p: &str| tree_is_nosymfollow(t, Path::new(p));
    assert!(yes("/srv/ci"));
    assert!(yes("/srv/ci/sub/deeper"));
    // A mount below has its own options.
    assert!(!yes("/srv/ci/tmp"));
    assert!(!yes("/srv/ci/tmp/x"));
    // Prefixes are by component; super-block options do not count.
    assert!(!yes("/srv/ci2"));
    assert!(!yes("/"));
    assert!(!yes("/srv"));
    // Stacked on one mount point: the top one counts, in either order.
    assert!(yes("/srv/plain/x"));
    assert!(!yes("/srv/stacked"));
    // Mount points are octal-escaped.
    assert!(yes("/srv/with space/x"));
    assert!(!yes("/srv/with\\040space"));
    assert!(!tree_is_nosymfollow(b"", Path::new("/srv/ci")));
    assert!(!tree_is_nosymfollow(
        b"garbage\n\n1 2\n",
        Path::new("/srv/ci")
    ));
}

#[test]
fn unescape_decodes_only_octal_escapes() {
    assert_eq!(unescape(br"a\040b\134c\011"), b"a b\\c\t");
    assert_eq!(unescape(br"\x\04\999\"), br"\x\04\999\");
}

fn body(json: &str) -> Value {
    let v = gojson::parse(json.as_bytes()).unwrap();
    v.validate().unwrap();
    v
}

#[test]
fn create_bodies_give_binds_and_bind_mounts() {
    let t = Tree::new();
    t.mkdir("sub").link("x", "/");
    let allow = t.allow();
    let refused = |json: String| {
        let e = check_create(&allow, &body(&json)).unwrap_err();
        assert!(e.contains("symlink"), "{json}: {e}");
    };
    let x = t.text("x");
    refused(format!(r#"{{"HostConfig":{{"Binds":["{x}:/h:ro"]}}}}"#));
    refused(format!(r#"{{"hostconfig":{{"binds":["{x}:/h"]}}}}"#));
    refused(format!(r#"{{"HostConfig":{{"Binds":"{x}:/h"}}}}"#));
    refused(format!(
        r#"{{"HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{x}","Target":"/h"}}]}}}}"#
    ));
    refused(format!(
        r#"{{"HostConfig":{{"mounts":[{{"type":"bind","source":"{x}/etc","target":"/h"}}]}}}}"#
    ));
    // Volumes, tmpfs and other types are not host paths.
    check_create(
        &allow,
        &body(&format!(
            r#"{{"HostConfig":{{"Binds":["vol:/v","{0}:/t"],"Mounts":[{{"Type":"volume","Source":"x","Target":"/v"}},{{"Type":"tmpfs","Target":"/tmp"}}]}}}}"#,
            t.0.display()
        )),
    )
    .unwrap();
    check_create(&allow, &body(r#"{"Image":"busybox"}"#)).unwrap();
}
