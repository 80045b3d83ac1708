//! The package cache's short-lived CA (rcgen, ring backend): two CA generations at a time,
//! `current` (signs the certificate nginx serves) and `next` (already trusted by every
//! container created since it was minted). A rotation promotes `next`, mints a new `next` and
//! re-signs the server certificate, so a container keeps working across one rotation: at
//! least `lifetime × 0.35` after its creation.
//!
//! Timeline of one CA, with lifetime L and period P = 0.35 L: minted as `next` at t, current
//! at t + P, retired at t + 2P (70 % of its lifetime, the renewal point of the style brief),
//! expired at t + L. Each CA is name-constrained to the cached hostnames, so even a stolen
//! key cannot mint a certificate for any other name.
//!
//! Files in the state directory (keys 0600, written by rename so readers never see half a
//! file and containers keep the inode they were given):
//!   state.json                  the generations and the hostnames they cover
//!   ca-<id>.pem / ca-<id>.key   each live CA
//!   server.pem / server.key     the certificate nginx serves (leaf + current CA) and its key
//!   bundle.pem                  system CAs + current + next: what containers trust

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What the CA needs from the configuration.
pub use dockgate_policy::package_cache::CaSettings;

/// Backdating of `not_before`, for clocks slightly behind ours.
const SKEW: i64 = 300;

/// One CA generation as recorded in `state.json` (times in Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub id: String,
    pub minted: i64,
    pub not_after: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub hosts: Vec<String>,
    pub lifetime_secs: u64,
    pub current: Generation,
    /// When `current` became current.
    pub promoted: i64,
    pub next: Generation,
}

/// What [`plan`] decides for a state at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to do until the given time.
    Keep { until: i64 },
    /// Promote `next`, mint a new `next`.
    Rotate,
    /// No usable state (none, other hosts or lifetime, or `next` too old): start afresh.
    Fresh,
}

fn period(lifetime_secs: u64) -> i64 {
    (lifetime_secs as f64 * 0.35) as i64
}

/// The pure rotation rule.
pub fn plan(state: Option<&State>, s: &CaSettings, now: i64) -> Plan {
    let Some(st) = state else { return Plan::Fresh };
    if st.hosts != s.hosts || st.lifetime_secs != s.lifetime.as_secs() {
        return Plan::Fresh;
    }
    let p = period(st.lifetime_secs);
    let due = st.promoted + p;
    if now < due {
        return Plan::Keep { until: due };
    }
    // `next` is promoted only while it has a period of validity left; a sidecar stopped for
    // longer than that starts a new chain.
    if now + p > st.next.not_after {
        return Plan::Fresh;
    }
    Plan::Rotate
}

/// Loads the state, applies [`plan`] (or forces a rotation), writes the files. Returns
/// whether anything changed (then nginx must reload).
pub fn ensure(s: &CaSettings, now: i64, force_rotate: bool) -> anyhow::Result<bool> {
    fs::create_dir_all(&s.dir).with_context(|| format!("create {}", s.dir.display()))?;
    let state = load(&s.dir)?;
    let decided = match plan(state.as_ref(), s, now) {
        Plan::Keep { .. } if force_rotate => Plan::Rotate,
        p => p,
    };
    let new_state = match (decided, state) {
        (Plan::Keep { .. }, Some(st)) => {
            // Rewrite missing outputs (a wiped bundle, a new system bundle) without rotating.
            if !s.dir.join("server.pem").exists() || !s.dir.join("bundle.pem").exists() {
                write_outputs(s, &st)?;
                return Ok(true);
            }
            return Ok(false);
        }
        (Plan::Rotate, Some(st)) => {
            let next = mint_ca(s, now)?;
            State {
                current: st.next,
                promoted: now,
                next,
                ..st
            }
        }
        _ => State {
            hosts: s.hosts.clone(),
            lifetime_secs: s.lifetime.as_secs(),
            current: mint_ca(s, now)?,
            promoted: now,
            next: mint_ca(s, now)?,
        },
    };
    write_outputs(s, &new_state)?;
    write_file(
        &s.dir.join("state.json"),
        serde_json::to_string_pretty(&new_state)?.as_bytes(),
        0o644,
    )?;
    // CAs no longer live: their keys go.
    for entry in fs::read_dir(&s.dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix("ca-")
            .and_then(|n| n.strip_suffix(".key").or_else(|| n.strip_suffix(".pem")))
        {
            if id != new_state.current.id && id != new_state.next.id {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(true)
}

pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
    let path = dir.join("state.json");
    match fs::read_to_string(&path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(st) => Ok(Some(st)),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable CA state: starting afresh");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// A human summary for `dockgate ca show`.
pub fn show(s: &CaSettings, now: i64) -> anyhow::Result<String> {
    let Some(st) = load(&s.dir)? else {
        bail!(
            "no CA in {} yet (`dockgate serve` or `dockgate ca rotate` makes one)",
            s.dir.display()
        );
    };
    let fmt = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .map(|d| {
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    d.year(),
                    d.month() as u8,
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second()
                )
            })
            .unwrap_or_else(|_| t.to_string())
    };
    let left = |t: i64| format!("{:.1} h", (t - now) as f64 / 3600.0);
    let rotate = st.promoted + period(st.lifetime_secs);
    let pem = fs::read_to_string(s.dir.join(format!("ca-{}.pem", st.current.id)))
        .with_context(|| format!("read the current CA in {}", s.dir.display()))?;
    Ok(format!(
        "current CA: {id}  expires {exp} (in {left})\n\
         next CA:    {nid}  expires {nexp}\n\
         rotation:   {rot} (in {rleft}); lifetime {life} h\n\
         hosts:      {hosts}\n\
         bundle:     {bundle}\n{pem}",
        id = st.current.id,
        exp = fmt(st.current.not_after),
        left = left(st.current.not_after),
        nid = st.next.id,
        nexp = fmt(st.next.not_after),
        rot = fmt(rotate),
        rleft = left(rotate),
        life = st.lifetime_secs / 3600,
        hosts = st.hosts.join(" "),
        bundle = s.dir.join("bundle.pem").display(),
    ))
}

fn time_at(t: i64) -> anyhow::Result<OffsetDateTime> {
    Ok(OffsetDateTime::from_unix_timestamp(t)?)
}

fn ca_params(s: &CaSettings, id: &str, minted: i64) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dockgate");
    dn.push(
        DnType::CommonName,
        format!("dockgate package cache CA {id}"),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: s
            .hosts
            .iter()
            .map(|h| GeneralSubtree::DnsName(h.clone()))
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    p.not_before = time_at(minted - SKEW)?;
    p.not_after = time_at(minted + s.lifetime.as_secs() as i64)?;
    p.serial_number = Some(serial(id.as_bytes()));
    Ok(p)
}

fn serial(seed: &[u8]) -> SerialNumber {
    let mut bytes = Sha256::digest(seed)[..16].to_vec();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn mint_ca(s: &CaSettings, now: i64) -> anyhow::Result<Generation> {
    let key = KeyPair::generate()?;
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let digest = Sha256::digest([key.public_key_der(), nanos.to_be_bytes().to_vec()].concat());
    let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let params = ca_params(s, &id, now)?;
    let not_after = params.not_after.unix_timestamp();
    let cert = params.self_signed(&key)?;
    write_file(
        &s.dir.join(format!("ca-{id}.key")),
        key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(
        &s.dir.join(format!("ca-{id}.pem")),
        cert.pem().as_bytes(),
        0o644,
    )?;
    Ok(Generation {
        id,
        minted: now,
        not_after,
    })
}

/// The server certificate (signed by `current`) and the trust bundle.
fn write_outputs(s: &CaSettings, st: &State) -> anyhow::Result<()> {
    let read = |name: String| {
        let path = s.dir.join(name);
        fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let ca_key = KeyPair::from_pem(&read(format!("ca-{}.key", st.current.id))?)?;
    let ca_pem = read(format!("ca-{}.pem", st.current.id))?;
    let next_pem = read(format!("ca-{}.pem", st.next.id))?;
    // The issuer as rcgen needs it: same name and key as the stored certificate.
    let issuer = ca_params(s, &st.current.id, st.current.minted)?.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(s.hosts.clone())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "dockgate package cache");
    leaf.distinguished_name = dn;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    leaf.not_before = time_at(now - SKEW)?;
    leaf.not_after = time_at(st.current.not_after)?;
    leaf.serial_number = Some(serial(format!("{}-{now}", st.current.id).as_bytes()));
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &issuer, &ca_key)?;

    write_file(
        &s.dir.join("server.key"),
        leaf_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(
        &s.dir.join("server.pem"),
        format!("{}{ca_pem}", cert.pem()).as_bytes(),
        0o644,
    )?;
    let mut bundle = fs::read_to_string(&s.system_bundle).unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle += &format!(
        "# dockgate package cache CA {} (current)\n{ca_pem}",
        st.current.id
    );
    bundle += &format!(
        "# dockgate package cache CA {} (next)\n{next_pem}",
        st.next.id
    );
    write_file(&s.dir.join("bundle.pem"), bundle.as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `path` through a temporary file and a rename, created with `mode`.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    // The umask may have narrowed the mode; the bundle must be world-readable.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// Asks the nginx whose master pid is in `pid_file` to reload (SIGHUP: new workers get the
/// new certificate, old ones finish their connections).
pub fn reload_nginx(pid_file: &Path) -> anyhow::Result<()> {
    let pid = fs::read_to_string(pid_file)
        .with_context(|| format!("read {}", pid_file.display()))?
        .trim()
        .to_string();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{}: not a pid: {pid:?}", pid_file.display());
    }
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .context("run kill")?;
    if !status.success() {
        bail!("kill -HUP {pid} failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
