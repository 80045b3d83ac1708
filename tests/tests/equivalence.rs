//! nginx's worker, the sidecar and `dockgate explain` decide with the same code and the same
//! configuration file. On one corpus of requests, from every kind of caller (anonymous on
//! loopback and on the relayed unix socket, tokens of three roles and of a tenant, a client
//! certificate, a wrong token), the three give the same answer: allowed or refused, with the
//! same status and words, the same URI and route forwarded, the same user and role. nginx
//! hands exactly the requests that need the engine to the sidecar, and decides the rest
//! itself (both kinds must occur).
//!
//! Every request is harmless on a shared engine: reads, objects that do not exist, and
//! prunes narrowed to a label nothing has.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use dockgate_tests::nginx::{sidecar_binary, tls, token_sha256, Flavor, Gateway, GatewayOptions};
use dockgate_tests::raw::{dechunk, Conn, Target};
use dockgate_tests::tenants::tenant_name;
use dockgate_tests::{unique_name, wait_until};

/// How a caller reaches the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Tcp,
    Tls,
    Unix,
}

#[derive(Clone, Debug)]
struct Caller {
    label: &'static str,
    via: Via,
    token: Option<&'static str>,
    /// `dockgate explain --as` for this caller, if it can name it.
    explain_as: Option<&'static str>,
}

const CALLERS: &[Caller] = &[
    Caller {
        label: "anonymous developer",
        via: Via::Tcp,
        token: None,
        explain_as: Some("anonymous@loopback"),
    },
    Caller {
        label: "admin token",
        via: Via::Tcp,
        token: Some("eq-admin-token"),
        explain_as: Some("eq-admin"),
    },
    Caller {
        label: "reader token",
        via: Via::Tcp,
        token: Some("eq-reader-token"),
        explain_as: Some("eq-reader"),
    },
    Caller {
        label: "tenant token",
        via: Via::Tcp,
        token: Some("eq-tenant-token"),
        explain_as: Some("eq-tenant"),
    },
    Caller {
        label: "wrong token",
        via: Via::Tcp,
        token: Some("eq-no-such-token"),
        explain_as: None,
    },
    Caller {
        label: "client certificate",
        via: Via::Tls,
        token: None,
        explain_as: Some("tester"),
    },
    Caller {
        label: "unix peer",
        via: Via::Unix,
        token: None,
        explain_as: None,
    },
];

/// One request: method, URI, extra header lines, JSON body.
type Case = (&'static str, String, &'static [&'static str], &'static str);

fn corpus(missing: &str) -> Vec<Case> {
    let none = r#"{"label":["dockgate-equivalence-nothing=1"]}"#;
    let m = missing;
    let mut c: Vec<Case> = vec![
        ("GET", "/_ping".into(), &[], ""),
        ("GET", "/v1.41/_ping".into(), &[], ""),
        ("GET", "/v1.41/version".into(), &[], ""),
        ("GET", "/v1.41/info".into(), &[], ""),
        ("GET", "/v1.41/containers/json".into(), &[], ""),
        ("GET", "/v1.41/containers/json?all=1&size=0".into(), &[], ""),
        (
            "GET",
            format!("/v1.41/containers/json?filters={none}"),
            &[],
            "",
        ),
        ("GET", "/v1.41/images/json".into(), &[], ""),
        ("GET", "/v1.41/images/busybox/json".into(), &[], ""),
        ("GET", "/v1.41/networks".into(), &[], ""),
        ("GET", "/v1.41/volumes".into(), &[], ""),
        ("GET", "/v1.41/system/df".into(), &[], ""),
        ("GET", "/v1.41/events?since=0&until=1".into(), &[], ""),
        ("GET", "/v1.41/swarm".into(), &[], ""),
        ("GET", "/v1.41/plugins".into(), &[], ""),
        ("GET", format!("/v1.41/containers/{m}/json"), &[], ""),
        (
            "GET",
            format!("/v1.41/containers/{m}/logs?stdout=1"),
            &[],
            "",
        ),
        ("POST", format!("/v1.41/containers/{m}/kill"), &[], ""),
        ("POST", format!("/v1.41/containers/{m}/start"), &[], ""),
        ("DELETE", format!("/v1.41/containers/{m}?force=1"), &[], ""),
        (
            "POST",
            format!("/v1.41/containers/{m}/attach?stream=1"),
            &[],
            "",
        ),
        ("POST", format!("/v1.41/exec/{m}/resize?h=1&w=1"), &[], ""),
        ("GET", format!("/v1.41/volumes/{m}"), &[], ""),
        ("GET", format!("/v1.41/networks/{m}"), &[], ""),
        ("POST", format!("/v1.41/commit?container={m}"), &[], ""),
        (
            "POST",
            format!("/v1.41/containers/prune?filters={none}"),
            &[],
            "",
        ),
        (
            "POST",
            format!("/v1.41/volumes/prune?filters={none}"),
            &[],
            "",
        ),
        (
            "POST",
            format!("/v1.41/containers/create?name={m}"),
            &[],
            r#"{"Image":"dockgate-equivalence-missing:none"}"#,
        ),
        (
            "POST",
            format!("/v1.41/containers/create?name={m}"),
            &[],
            r#"{"Image":"dockgate-equivalence-missing:none","HostConfig":{"Privileged":true}}"#,
        ),
        // Refused from the head, for every role or by role.
        ("GET", "/v1.41/nodes".into(), &[], ""),
        ("DELETE", format!("/v1.41/services/{m}"), &[], ""),
        ("POST", format!("/v1.41/plugins/{m}/enable"), &[], ""),
        ("GET", "/v1.41/debug/pprof/heap".into(), &[], ""),
        ("GET", "/v1.41/containers/../info".into(), &[], ""),
        ("GET", "/v1.41/containers//json".into(), &[], ""),
        ("GET", "/v1.41/containers/json?all=1&all=0".into(), &[], ""),
        ("GET", "/v1.41/containers/json?all=1;x=2".into(), &[], ""),
        ("GET", "/v1.41/containers/%2e%2e/json".into(), &[], ""),
        (
            "POST",
            format!("/v1.41/containers/create?name={m}&name=other"),
            &[],
            "{}",
        ),
        (
            "POST",
            format!("/v1.41/containers/{m}/start"),
            &["Content-Type: application/x-www-form-urlencoded"],
            "",
        ),
        ("POST", format!("/v1.23/containers/{m}/start"), &[], "{}"),
        ("POST", format!("/v1.41/containers/{m}/exec"), &[], "{}"),
    ];
    // Privileged query parameters of a conservative role, refused from the head.
    c.push((
        "POST",
        "/v1.41/images/create?fromImage=busybox&fromImage=other".into(),
        &[],
        "",
    ));
    c
}

/// What one decider said about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Said {
    Allow {
        upstream: String,
        uri: String,
        user: String,
        role: String,
    },
    Refuse {
        status: u16,
        answer: String,
    },
}

/// The sidecar's `auth_request` answer, asked as nginx asks it.
fn sidecar_says(gw: &Gateway, caller: &Caller, case: &Case) -> Said {
    let (method, uri, extra, body) = case;
    let listener = match caller.via {
        Via::Tcp => "loopback",
        Via::Tls => "tls",
        Via::Unix => "unix",
    };
    let mut headers = vec![
        format!("X-Dockgate-Listener: {listener}"),
        format!("X-Original-Method: {method}"),
        format!("X-Original-URI: {uri}"),
        format!("X-Original-Content-Length: {}", body.len()),
    ];
    if let Some(t) = caller.token {
        headers.push(format!("Authorization: Bearer {t}"));
    }
    match caller.via {
        Via::Tls => {
            headers.push("X-Dockgate-Client-Verify: SUCCESS".into());
            headers.push(format!(
                "X-Dockgate-Client-Fingerprint: {}",
                tls().client_fingerprint
            ));
        }
        Via::Unix => {
            let (uid, gid) = ids();
            headers.push(format!(
                "X-Dockgate-Peer: {}",
                dockgate_decision::peer::peer_address(uid, gid)
            ));
        }
        Via::Tcp => {}
    }
    headers.extend(extra.iter().map(|h| h.to_string()));
    if !body.is_empty() && extra.is_empty() {
        headers.push("Content-Type: application/json".into());
    }
    headers.push("Connection: close".into());
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut conn = Conn::connect(&Target::Unix(gw.dir.path().join("sidecar.sock"))).unwrap();
    conn.send_request("GET", "/_dockgate/auth", &refs, "")
        .unwrap();
    let head = conn.read_head().unwrap();
    let h = |name: &str| head.header(name).unwrap_or("").to_string();
    match head.status {
        204 => Said::Allow {
            upstream: h("x-dockgate-upstream"),
            uri: h("x-dockgate-uri"),
            user: h("x-dockgate-user"),
            role: h("x-dockgate-role"),
        },
        401 | 403 => Said::Refuse {
            status: h("x-dockgate-status").parse().unwrap_or(0),
            answer: h("x-dockgate-error"),
        },
        other => panic!("the sidecar answered {other}: {}", head.raw),
    }
}

fn ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// What nginx did: its answer, and its access log's account of the decision.
struct Through {
    status: u16,
    body: String,
    decision: String,
    user: String,
    role: String,
    forward: String,
}

fn through_nginx(gw: &Gateway, caller: &Caller, case: &Case) -> Through {
    let (method, uri, extra, body) = case;
    let log = gw.dir.path().join("logs/dockgate-access.log");
    let lines_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let (status, answer) = match caller.via {
        Via::Tls => curl_tls(gw, method, uri, extra, body),
        Via::Tcp | Via::Unix => {
            let target = if caller.via == Via::Tcp {
                Target::Tcp(gw.port)
            } else {
                Target::Unix(gw.unix_socket.clone())
            };
            let mut headers: Vec<String> = extra.iter().map(|h| h.to_string()).collect();
            if let Some(t) = caller.token {
                headers.push(format!("Authorization: Bearer {t}"));
            }
            headers.push("Connection: close".into());
            let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let mut conn = Conn::connect(&target).unwrap();
            conn.set_timeout(Some(Duration::from_secs(20))).unwrap();
            conn.send_request(method, uri, &refs, body).unwrap();
            let head = conn.read_head().unwrap();
            // A hijack to a missing container answers and closes; nothing streams.
            let rest = conn.read_all().unwrap_or_default();
            let rest = if head.header("transfer-encoding") == Some("chunked") {
                dechunk(&rest)
            } else {
                rest
            };
            (head.status, String::from_utf8_lossy(&rest).into_owned())
        }
    };
    let mut line = String::new();
    wait_until(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // Complete lines only: nginx may be writing the last one.
        let lines: Vec<&str> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        let request = format!("\"{method} {uri} ");
        line = lines
            .get(lines_before..)
            .unwrap_or_default()
            .iter()
            .rev()
            .map(|l| unescape(l))
            .find(|l| l.contains(&request))
            .unwrap_or_default();
        !line.is_empty()
    });
    // `name="value"` (quoted values hold no `"`: nginx escapes them).
    let field = |name: &str| {
        line.split_once(&format!(" {name}=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_string())
            .unwrap_or_default()
    };
    Through {
        status,
        body: answer,
        decision: field("decision"),
        user: field("user"),
        role: field("role"),
        forward: field("forward"),
    }
}

/// nginx's access log escapes `"`, `\` and unprintable bytes as `\xHH`.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() + 1 {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..(i + 4).min(s.len())], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn curl_tls(gw: &Gateway, method: &str, uri: &str, extra: &[&str], body: &str) -> (u16, String) {
    let t = tls();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-g",
        "--path-as-is",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .arg("--cacert")
    .arg(&t.ca)
    .arg("--cert")
    .arg(t.client_dir.join("cert.pem"))
    .arg("--key")
    .arg(t.client_dir.join("key.pem"))
    .args(["--max-time", "20"]);
    for h in extra {
        cmd.args(["-H", h]);
    }
    if !body.is_empty() {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    cmd.arg(format!("https://127.0.0.1:{}{uri}", gw.tls_port));
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.trim().parse().unwrap_or(0), answer.to_string())
}

/// `dockgate explain`'s account: its verdict, and which of nginx and the sidecar decides.
fn explain_says(gw: &Gateway, who: &str, case: &Case) -> (Said, String) {
    let (method, uri, _, _) = case;
    let out = Command::new(sidecar_binary())
        .args(["explain", "--config"])
        .arg(gw.dir.path().join("sidecar.toml"))
        .args(["--as", who, method, uri])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let decided = line("decided").split(' ').next().unwrap_or("").to_string();
    let verdict = line("verdict");
    let said = if verdict == "allow" {
        Said::Allow {
            upstream: if line("route").starts_with("mediated") {
                "dockgate_sidecar".into()
            } else {
                "dockerd".into()
            },
            uri: line("forward"),
            user: String::new(),
            role: String::new(),
        }
    } else {
        let status = verdict
            .strip_prefix("refuse (")
            .and_then(|v| v.strip_suffix(')'))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Said::Refuse {
            status,
            answer: line("answer"),
        }
    };
    (said, decided)
}

/// `explain` reads no request headers, and a body only to check it: cases whose head answer
/// depends on either are compared between nginx and the sidecar only.
fn explainable((_, uri, extra, body): &Case) -> bool {
    extra.is_empty() && (body.is_empty() || !uri.ends_with("/start"))
}

fn without_identity(said: &Said) -> Said {
    match said {
        Said::Allow { upstream, uri, .. } => Said::Allow {
            upstream: upstream.clone(),
            uri: uri.clone(),
            user: String::new(),
            role: String::new(),
        },
        refused => refused.clone(),
    }
}

#[test]
fn nginx_the_sidecar_and_explain_decide_alike_debian() {
    decide_alike(Flavor::Debian);
}

#[test]
fn nginx_the_sidecar_and_explain_decide_alike_vendored() {
    decide_alike(Flavor::Vendored);
}

fn decide_alike(flavor: Flavor) {
    let tenant = tenant_name("eqteam");
    let policy = format!(
        "[[users]]\nname = \"eq-admin\"\nrole = \"admin\"\ntoken_sha256 = [\"{}\"]\n\
         [[users]]\nname = \"eq-reader\"\nrole = \"reader\"\ntoken_sha256 = [\"{}\"]\n\
         [tenants.{tenant}]\n\
         [[users]]\nname = \"eq-tenant\"\nrole = \"developer\"\ntenant = \"{tenant}\"\n\
         token_sha256 = [\"{}\"]\n",
        token_sha256("eq-admin-token"),
        token_sha256("eq-reader-token"),
        token_sha256("eq-tenant-token"),
    );
    let gw = Gateway::start_with(GatewayOptions {
        policy: Some(policy),
        ..GatewayOptions::new(flavor)
    });
    let missing = unique_name("eq-missing");
    let corpus = corpus(&missing);
    let before = worker_decisions(&gw);
    let mut failures = Vec::new();
    let mut decided_by: BTreeMap<String, usize> = BTreeMap::new();
    for caller in CALLERS {
        for case in &corpus {
            let (method, uri, _, _) = case;
            let what = format!("{} {method} {uri}", caller.label);
            let sidecar = sidecar_says(&gw, caller, case);
            let nginx = through_nginx(&gw, caller, case);
            *decided_by.entry(nginx.decision.clone()).or_default() += 1;
            match (&sidecar, nginx.decision.as_str()) {
                (
                    Said::Allow {
                        upstream,
                        uri,
                        user,
                        role,
                    },
                    "nginx",
                ) => {
                    let expected = format!("{upstream}{uri}");
                    if nginx.forward != expected || &nginx.user != user || &nginx.role != role {
                        failures.push(format!(
                            "{what}: the sidecar allows {expected} for {user} ({role}); nginx \
                             forwarded {:?} for {} ({}), answering {} {}",
                            nginx.forward,
                            nginx.user,
                            nginx.role,
                            nginx.status,
                            nginx.body.trim()
                        ));
                    }
                }
                (Said::Refuse { status, answer }, "nginx") => {
                    if nginx.status != *status || nginx.body.trim() != answer {
                        failures.push(format!(
                            "{what}: the sidecar refuses {status} {answer}; nginx answered {} {}",
                            nginx.status,
                            nginx.body.trim()
                        ));
                    }
                }
                // The sidecar's answer is nginx's by construction; that it needed the engine
                // is checked against explain below.
                (_, "sidecar") => {}
                (_, other) => failures.push(format!(
                    "{what}: nginx logged decision={other:?} (answered {} {})",
                    nginx.status,
                    nginx.body.trim()
                )),
            }
            if let Some(who) = caller.explain_as.filter(|_| explainable(case)) {
                let (explained, decided) = explain_says(&gw, who, case);
                if without_identity(&explained) != without_identity(&sidecar) {
                    failures.push(format!(
                        "{what}: explain says {explained:?}, the sidecar {sidecar:?}"
                    ));
                }
                if decided != nginx.decision {
                    failures.push(format!(
                        "{what}: explain says {decided} decides, nginx's log {}",
                        nginx.decision
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{flavor}: {} disagreements:\n{}\n\nsidecar log:\n{}",
        failures.len(),
        failures.join("\n"),
        gw.sidecar_log()
    );
    // Both kinds of decision happened, so the comparison compared something.
    let nginx = decided_by.get("nginx").copied().unwrap_or(0) as u64;
    let sidecar = decided_by.get("sidecar").copied().unwrap_or(0) as u64;
    assert!(nginx > 100 && sidecar > 20, "{decided_by:?}");
    // The module's counters agree with its access log.
    let after = worker_decisions(&gw);
    assert_eq!(
        (
            after[0] + after[1] - before[0] - before[1],
            after[2] - before[2]
        ),
        (nginx, sidecar),
        "counted by the module (allowed + refused, sidecar) against the access log"
    );
}

/// The module's `dockgate_worker_decisions_total`: allowed, refused, handed to the sidecar.
fn worker_decisions(gw: &Gateway) -> [u64; 3] {
    ["allowed", "refused", "sidecar"].map(|outcome| {
        gw.metric(&format!(
            "dockgate_worker_decisions_total{{outcome=\"{outcome}\"}}"
        ))
    })
}

/// nginx reads the configuration file again when it reloads: a token added to it works for
/// what nginx decides as soon as nginx has reloaded.
#[test]
fn a_reload_reads_the_policy_again() {
    let gw = Gateway::start_with(GatewayOptions::policy(Flavor::Debian));
    let ask = || {
        let mut conn = Conn::connect(&Target::Tcp(gw.port)).unwrap();
        conn.send_request(
            "GET",
            "/v1.41/info",
            &["Authorization: Bearer eq-reload-token", "Connection: close"],
            "",
        )
        .unwrap();
        conn.read_head().unwrap().status
    };
    assert_eq!(ask(), 401);
    let config = gw.dir.path().join("sidecar.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += &format!(
        "\n[[users]]\nname = \"eq-reloaded\"\nrole = \"reader\"\ntoken_sha256 = [\"{}\"]\n",
        token_sha256("eq-reload-token")
    );
    std::fs::write(&config, text).unwrap();
    gw.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || ask() == 200),
        "the new token is still refused after the reload:\n{}",
        gw.error_log()
    );
    // (nginx logs a request once it has answered it.)
    assert!(
        wait_until(Duration::from_secs(5), || gw.access_log().contains(
            "user=\"eq-reloaded\" role=\"reader\" decision=\"nginx\""
        )),
        "{}",
        gw.access_log()
    );
}
