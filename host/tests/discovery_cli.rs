//! `opstack-operator discover` from the command line, against `geth --dev` (see
//! discovery_support): the built binary, as a chain operator would run it.

mod discovery_support;

use std::process::{Command, Output};

use discovery_support::{deploy_chain, geth};

fn discover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opstack-operator"))
        .arg("discover")
        .args(args)
        .output()
        .expect("run opstack-operator")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn discover_prints_what_was_found_how_and_at_which_block() {
    let chain = deploy_chain(geth());
    let system_config = chain.system_config.to_checksum(None);
    let output = discover(&[
        "--l1-rpc",
        &geth().url,
        "--system-config",
        &system_config,
        "--l1-chain-id",
        "1337",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("method: system-config"), "{stdout}");
    assert!(
        stdout.contains("l1 chain id: 1337 (eth_chainId checked)"),
        "{stdout}"
    );
    assert!(stdout.contains("l1 block: "), "{stdout}");
    assert!(stdout.contains("confirmed at block"), "{stdout}");
    for address in [
        chain.system_config,
        chain.portal,
        chain.dispute_game_factory,
        chain.messenger,
        chain.standard_bridge,
        chain.batch_inbox,
        chain.unsafe_block_signer,
    ] {
        assert!(
            stdout.contains(&address.to_checksum(None)),
            "{address} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("3.14.2"), "{stdout}");
}

#[test]
fn discover_json_is_the_status_the_operator_would_pin() {
    let chain = deploy_chain(geth());
    let output = discover(&[
        "--l1-rpc",
        &geth().url,
        "--system-config",
        &chain.system_config.to_string(),
        "--output",
        "json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status: opstack_crds::network::DiscoveredContracts =
        serde_json::from_slice(&output.stdout).expect("stdout is DiscoveredContracts JSON");
    assert_eq!(status.discovery_method.as_deref(), Some("system-config"));
    assert_eq!(
        status.dispute_game_factory_addr,
        Some(chain.dispute_game_factory.to_checksum(None))
    );
    assert_eq!(status.start_block, Some(chain.start_block as i64));
    assert!(status.l1_block_number.is_some() && status.last_discovery_time.is_some());
    // No --l1-chain-id: the endpoint's answer is used and the user is told it was not checked.
    assert!(
        text(&output.stderr).contains("was not checked"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn discover_refuses_a_wrong_l1_chain_id_with_its_reason() {
    let chain = deploy_chain(geth());
    let output = discover(&[
        "--l1-rpc",
        &geth().url,
        "--system-config",
        &chain.system_config.to_string(),
        "--l1-chain-id",
        "1",
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("(WrongChainId)"), "{stderr}");
    assert!(stderr.contains("reports chain id 1337"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing is printed as found");
}

#[test]
fn discover_by_network_name_checks_the_networks_l1() {
    // op-mainnet lives on L1 chain 1; a dev node (1337) must not be taken for it.
    let output = discover(&["--l1-rpc", &geth().url, "--network", "op-mainnet"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("(WrongChainId)"), "{stderr}");
}

#[test]
fn discover_needs_a_system_config_or_a_network() {
    let output = discover(&["--l1-rpc", "http://127.0.0.1:1"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--system-config") && stderr.contains("--network"),
        "{stderr}"
    );
}

#[test]
fn discover_refuses_a_mistyped_address_before_calling_l1() {
    let output = discover(&[
        "--l1-rpc",
        "http://127.0.0.1:1",
        "--system-config",
        "0x229047fed2591dbec1ef1118d64F7aF3dB9EB290",
        "--l1-chain-id",
        "1",
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--system-config") && stderr.contains("EIP-55"),
        "{stderr}"
    );
}
