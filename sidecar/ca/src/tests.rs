use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::*;

const H: i64 = 3600;

fn settings(dir: &Path) -> CaSettings {
    CaSettings {
        dir: dir.to_path_buf(),
        lifetime: Duration::from_secs(24 * H as u64),
        hosts: vec!["deb.test".into(), "pypi.test".into()],
        system_bundle: dir.join("no-system-bundle"),
    }
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dockgate-ca-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn generation(id: &str, minted: i64) -> Generation {
    Generation {
        id: id.into(),
        minted,
        not_after: minted + 24 * H,
    }
}

#[test]
fn plan_rotates_at_a_period_and_starts_afresh_when_next_is_too_old() {
    let s = settings(Path::new("/nonexistent"));
    let st = State {
        hosts: s.hosts.clone(),
        lifetime_secs: 24 * H as u64,
        current: generation("a", 0),
        promoted: 0,
        next: generation("b", 0),
    };
    let p = period(st.lifetime_secs);
    assert_eq!(p, (24.0 * 0.35 * H as f64) as i64);
    assert_eq!(plan(None, &s, 0), Plan::Fresh);
    assert_eq!(plan(Some(&st), &s, 10), Plan::Keep { until: p });
    assert_eq!(plan(Some(&st), &s, p), Plan::Rotate);
    // Down for so long that `next` would not last a period: a new chain.
    assert_eq!(plan(Some(&st), &s, 24 * H - p), Plan::Rotate);
    assert_eq!(plan(Some(&st), &s, 24 * H - p + 1), Plan::Fresh);
    // A short lifetime (tests) rotates the same way.
    let short = CaSettings {
        lifetime: Duration::from_secs(60),
        ..s.clone()
    };
    let st60 = State {
        lifetime_secs: 60,
        current: Generation {
            not_after: 60,
            ..generation("a", 0)
        },
        next: Generation {
            not_after: 60,
            ..generation("b", 0)
        },
        ..st.clone()
    };
    assert_eq!(plan(Some(&st60), &short, 21), Plan::Rotate);
    let other_hosts = CaSettings {
        hosts: vec!["x.test".into()],
        ..s.clone()
    };
    assert_eq!(plan(Some(&st), &other_hosts, 10), Plan::Fresh);
}

fn openssl_verify(bundle: &Path, cert: &Path, name: &str) -> bool {
    Command::new("openssl")
        .args(["verify", "-verify_hostname", name, "-CAfile"])
        .arg(bundle)
        .arg(cert)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn files_are_written_with_modes_and_the_server_certificate_verifies_across_a_rotation() {
    let dir = temp("rotate");
    let s = settings(&dir);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(ensure(&s, now, false).unwrap());
    assert!(!ensure(&s, now + 10, false).unwrap(), "nothing due yet");
    let mode = |f: &str| fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("server.key"), 0o600);
    let st = load(&dir).unwrap().unwrap();
    assert_eq!(mode(&format!("ca-{}.key", st.current.id)), 0o600);
    assert_eq!(mode("bundle.pem"), 0o644);

    // A container created now keeps this bundle (its bind holds the old inode).
    let old_bundle = dir.join("old-bundle.pem");
    fs::copy(dir.join("bundle.pem"), &old_bundle).unwrap();
    assert!(openssl_verify(
        &old_bundle,
        &dir.join("server.pem"),
        "deb.test"
    ));
    assert!(!openssl_verify(
        &old_bundle,
        &dir.join("server.pem"),
        "other.test"
    ));

    assert!(ensure(&s, now + 20, true).unwrap(), "forced rotation");
    let rotated = load(&dir).unwrap().unwrap();
    assert_eq!(rotated.current, st.next, "next was promoted");
    assert_ne!(rotated.next.id, st.next.id);
    assert!(
        openssl_verify(&old_bundle, &dir.join("server.pem"), "pypi.test"),
        "a bundle from before one rotation still trusts the new server certificate"
    );
    assert!(
        !dir.join(format!("ca-{}.key", st.current.id)).exists(),
        "retired key removed"
    );

    assert!(ensure(&s, now + 30, true).unwrap());
    assert!(
        !openssl_verify(&old_bundle, &dir.join("server.pem"), "deb.test"),
        "two rotations later the old bundle is no longer enough"
    );
    assert!(show(&s, now).unwrap().contains("BEGIN CERTIFICATE"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_ca_cannot_vouch_for_names_outside_the_cached_hosts() {
    let dir = temp("constraints");
    let s = settings(&dir);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    ensure(&s, now, false).unwrap();
    let st = load(&dir).unwrap().unwrap();
    // A leaf for another name, signed with the CA's own key: refused by name constraints.
    let ca_key = KeyPair::from_pem(
        &fs::read_to_string(dir.join(format!("ca-{}.key", st.current.id))).unwrap(),
    )
    .unwrap();
    let issuer = ca_params(&s, &st.current.id, st.current.minted)
        .unwrap()
        .self_signed(&ca_key)
        .unwrap();
    let key = KeyPair::generate().unwrap();
    let evil = CertificateParams::new(vec!["bank.example".to_string()])
        .unwrap()
        .signed_by(&key, &issuer, &ca_key)
        .unwrap();
    fs::write(dir.join("evil.pem"), evil.pem()).unwrap();
    assert!(!openssl_verify(
        &dir.join("bundle.pem"),
        &dir.join("evil.pem"),
        "bank.example"
    ));
    let _ = fs::remove_dir_all(&dir);
}
