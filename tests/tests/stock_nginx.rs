//! The suite catches the bug it exists for: with the same config but without the module,
//! stock nginx loses the output and exit codes of half-closing CLI streams.

use dockgate_tests::docker::{Cli, Container, Endpoint, Transport};
use dockgate_tests::nginx::{Flavor, Gateway, GatewayOptions};
use dockgate_tests::scenarios::{all, direct_outcome, run};

#[test]
fn half_close_scenarios_fail_through_stock_nginx() {
    let gw = Gateway::start_with(GatewayOptions {
        module: false,
        ..GatewayOptions::new(Flavor::Debian)
    });
    let endpoint = Endpoint::gateway(&gw, Transport::Tcp);
    let container = Container::start("stock");
    let mut passed_anyway = Vec::new();
    let mut checked = 0;
    for scenario in all().into_iter().filter(|s| s.half_close) {
        let direct = direct_outcome(&scenario, Cli::Current);
        let through = run(&scenario, Cli::Current, &endpoint, &container);
        checked += 1;
        if through == direct {
            passed_anyway.push(scenario.name);
        }
    }
    assert!(checked >= 8, "too few half-close scenarios: {checked}");
    assert!(
        passed_anyway.is_empty(),
        "these half-close scenarios pass through stock nginx, so they prove nothing about \
         the module: {passed_anyway:?}"
    );
}
