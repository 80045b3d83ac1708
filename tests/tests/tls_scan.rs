//! The gateway's TLS listener (`nginx-conf/tls.conf`) under testssl.sh (Debian's 3.0.8), on
//! loopback with DNS off: no finding above LOW (only TLS 1.2 and 1.3, forward secrecy, no weak
//! cipher or curve, a server cipher order), and client certificates required: without one
//! nginx answers 400, with one the Docker API answers. The scan's summary is printed.

use std::collections::BTreeMap;
use std::process::Command;

use dockgate_tests::nginx::{tls, Flavor, Gateway};
use dockgate_tests::TempDir;

#[test]
fn the_tls_listener_passes_a_scanner_and_requires_client_certificates() {
    let gw = Gateway::start(Flavor::Debian);
    let url = format!("https://127.0.0.1:{}", gw.tls_port);
    let out = TempDir::new("testssl").unwrap();
    let json = out.path().join("scan.json");
    let scan = Command::new("testssl")
        .args([
            "--quiet",
            "--nodns",
            "none",
            "--warnings",
            "off",
            "--color",
            "0",
        ])
        .args(["--ip", "127.0.0.1", "--jsonfile"])
        .arg(&json)
        .arg(&url)
        // The test CA is the trust anchor a client of this gateway has.
        .env("ADDITIONAL_CA_FILES", &tls().ca)
        .output()
        .expect("run testssl (Debian's testssl.sh)");
    let findings: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap_or_default()).unwrap_or_default();
    assert!(
        !findings.is_empty(),
        "testssl wrote no findings: {}",
        String::from_utf8_lossy(&scan.stdout)
    );
    let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
    let mut above_low = Vec::new();
    for f in &findings {
        let severity = f["severity"].as_str().unwrap_or("?").to_string();
        if matches!(severity.as_str(), "MEDIUM" | "HIGH" | "CRITICAL") {
            above_low.push(format!("{severity} {}: {}", f["id"], f["finding"]));
        }
        *by_severity.entry(severity).or_default() += 1;
    }
    let finding = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["finding"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    println!("testssl summary for {url}: {by_severity:?}");
    for id in [
        "TLS1_2",
        "TLS1_3",
        "PFS",
        "PFS_ECDHE_curves",
        "cipher_order",
        "HSTS_time",
    ] {
        println!("  {id}: {}", finding(id));
    }
    for f in findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("LOW" | "WARN")))
    {
        println!("  {} {}: {}", f["severity"], f["id"], f["finding"]);
    }
    assert!(
        above_low.is_empty(),
        "findings above LOW:\n{}",
        above_low.join("\n")
    );
    for id in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert!(finding(id).contains("not offered"), "{id}: {}", finding(id));
    }
    assert!(
        finding("TLS1_3").contains("offered"),
        "TLS 1.3: {}",
        finding("TLS1_3")
    );

    // Client certificates are required: none, a 400; the test client's, the API.
    let curl = |cert: bool| {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&tls().ca);
        if cert {
            c.arg("--cert")
                .arg(tls().client_dir.join("cert.pem"))
                .arg("--key")
                .arg(tls().client_dir.join("key.pem"));
        }
        let out = c.arg(format!("{url}/_ping")).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(false), "400", "without a client certificate");
    assert_eq!(curl(true), "200", "with the test client's certificate");
}
