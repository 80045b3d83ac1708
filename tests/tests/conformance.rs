//! Conformance: every scenario of `dockgate_tests::scenarios` gives the same exit code, stdout
//! and stderr through the gateway as on dockerd's socket, for both docker CLIs, over TCP, a
//! unix socket and TLS, on both nginx builds; and through the full gateway (the sidecar
//! deciding every request with its default configuration): no false refusals.

use dockgate_tests::docker::{Cli, Endpoint, Transport};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions};
use dockgate_tests::scenarios::{compare_all, report};

fn conformance(flavor: Flavor, cli: Cli) {
    conformance_with(GatewayOptions::new(flavor), cli);
}

fn conformance_with(opts: GatewayOptions, cli: Cli) {
    let flavor = opts.flavor;
    let gw = Gateway::start_with(opts);
    let mut report_text = String::new();
    for transport in Transport::ALL {
        let failures = compare_all(cli, &Endpoint::gateway(&gw, transport));
        if !failures.is_empty() {
            report_text += &format!(
                "### {flavor} ({}) {transport} with {cli} ({}): {} scenario(s) differ\n{}",
                flavor.version(),
                cli.version(),
                failures.len(),
                report(&failures)
            );
        }
    }
    assert!(
        report_text.is_empty(),
        "{report_text}\nerror log:\n{}\nsidecar log:\n{}",
        gw.error_log(),
        gw.sidecar_log()
    );
    // Every hijacked stream was counted and ended.
    assert_eq!(gw.metric("dockgate_hijacked_streams_active"), 0);
    assert!(gw.metric("dockgate_half_closes_total{direction=\"to_upstream\"}") > 0);
}

#[test]
fn debian_nginx_current_cli() {
    conformance(Flavor::Debian, Cli::Current);
}

#[test]
fn debian_nginx_debian_cli() {
    conformance(Flavor::Debian, Cli::Debian);
}

#[test]
fn vendored_nginx_current_cli() {
    conformance(Flavor::Vendored, Cli::Current);
}

#[test]
fn vendored_nginx_debian_cli() {
    conformance(Flavor::Vendored, Cli::Debian);
}

#[test]
fn full_gateway_current_cli() {
    conformance_with(GatewayOptions::policy(Flavor::Debian), Cli::Current);
}

#[test]
fn full_gateway_debian_cli() {
    conformance_with(GatewayOptions::policy(Flavor::Debian), Cli::Debian);
}
