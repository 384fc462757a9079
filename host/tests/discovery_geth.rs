//! Discovery against a real Ethereum JSON-RPC node: `geth --dev` (built by
//! tests/l1-node/setup.sh) with the Solidity test doubles of tests/l1-node/contracts deployed.

mod discovery_support;

use std::time::Duration;

use alloy_primitives::Address;
use alloy_sol_types::SolValue;
use discovery_support::{DEV_CHAIN_ID, TestChain, deploy_chain, deploy_legacy_chain, geth};
use k8s_openapi::jiff::Timestamp;
use opstack_crds::network::DiscoveryMethod;
use opstack_operator::discovery::l1::AlloyL1;
use opstack_operator::discovery::reread::{PinDecision, RereadDecision, decide_pin};
use opstack_operator::discovery::system_config::SYSTEM_CONFIG_GETTERS;
use opstack_operator::discovery::{
    Contracts, Discovery, DiscoveryError, DiscoveryRequest, Field, Method, Options, discover,
};

fn l1() -> AlloyL1 {
    AlloyL1::new(&geth().url, Duration::from_secs(10)).unwrap()
}

fn request(method: DiscoveryMethod, given: Contracts) -> DiscoveryRequest {
    DiscoveryRequest {
        l1_chain_id: DEV_CHAIN_ID,
        chain_id: Some(901),
        network_name: None,
        method,
        given,
        registry: None,
    }
}

fn system_config_only(chain: &TestChain) -> Contracts {
    Contracts {
        system_config: Some(chain.system_config),
        ..Contracts::default()
    }
}

async fn run(request: &DiscoveryRequest) -> Result<Discovery, DiscoveryError> {
    discover(&l1(), request, &Options::default()).await
}

fn assert_finds_every_address(found: &Discovery, chain: &TestChain) {
    let c = &found.contracts;
    assert_eq!(c.system_config, Some(chain.system_config));
    assert_eq!(c.optimism_portal, Some(chain.portal));
    assert_eq!(c.dispute_game_factory, Some(chain.dispute_game_factory));
    assert_eq!(c.l1_cross_domain_messenger, Some(chain.messenger));
    assert_eq!(c.l1_standard_bridge, Some(chain.standard_bridge));
    assert_eq!(c.l1_erc721_bridge, chain.erc721_bridge);
    assert_eq!(c.optimism_mintable_erc20_factory, chain.erc20_factory);
    assert_eq!(c.batch_inbox, Some(chain.batch_inbox));
    assert_eq!(c.unsafe_block_signer, Some(chain.unsafe_block_signer));
    assert_eq!(c.start_block, Some(chain.start_block));
    assert_eq!(c.system_config_version.as_deref(), Some(chain.version));
}

#[test]
fn test_doubles_expose_the_real_systemconfig_selectors() {
    // The contracts are only useful if solc gave their getters the selectors of the real
    // SystemConfig ABI that discovery calls (`SYSTEM_CONFIG_GETTERS`).
    let ids = discovery_support::method_identifiers("FakeSystemConfig");
    for getter in &SYSTEM_CONFIG_GETTERS {
        let expected = format!("0x{}", alloy_primitives::hex::encode(getter.selector));
        assert_eq!(
            ids[getter.signature],
            expected.as_str(),
            "{}",
            getter.signature
        );
    }
    let portal = discovery_support::method_identifiers("FakePortal");
    assert_eq!(portal["disputeGameFactory()"], "0xf2b4e617");
}

#[tokio::test]
async fn system_config_discovery_finds_every_address_at_a_pinned_deep_block() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    let head_before = geth().block_number();
    let found = run(&request(DiscoveryMethod::Auto, system_config_only(&chain)))
        .await
        .unwrap();
    assert_eq!(found.method, Method::SystemConfig);
    assert_eq!(found.l1_chain_id, DEV_CHAIN_ID);
    assert!(
        found.block + 2 <= geth().block_number(),
        "read at least 2 blocks deep"
    );
    assert!(
        found.block + 2 >= head_before,
        "read at the head minus 2 when discovery ran"
    );
    assert_eq!(found.second_read_block, Some(found.block - 1));
    assert_finds_every_address(&found, &chain);

    let status = found.to_status(Timestamp::now());
    assert_eq!(status.discovery_method.as_deref(), Some("system-config"));
    assert_eq!(status.l1_block_number, Some(found.block as i64));
    assert_eq!(
        status.dispute_game_factory_addr.as_deref(),
        Some(chain.dispute_game_factory.to_checksum(None).as_str())
    );
}

#[tokio::test]
async fn wrong_l1_chain_id_pins_nothing() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    let mut req = request(DiscoveryMethod::Auto, system_config_only(&chain));
    req.l1_chain_id = 1;
    let result = run(&req).await;
    let err = result.as_ref().unwrap_err();
    assert_eq!(err.reason(), "WrongChainId");
    assert!(err.to_string().contains("reports chain id 1337"), "{err}");
    assert!(matches!(
        decide_pin(None, &result, Timestamp::now()),
        PinDecision::KeepPinned {
            reason: "WrongChainId",
            ..
        }
    ));
}

#[tokio::test]
async fn an_address_without_code_is_rejected_with_the_field_named() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    // Manual: the DisputeGameFactory given is an account with no code (the dev account).
    let eoa: Address = geth().account.parse().unwrap();
    let given = Contracts {
        system_config: Some(chain.system_config),
        optimism_portal: Some(chain.portal),
        dispute_game_factory: Some(eoa),
        ..Contracts::default()
    };
    let err = run(&request(DiscoveryMethod::Manual, given))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "NoCode");
    let message = err.to_string();
    assert!(message.contains("disputeGameFactoryAddr"), "{message}");
    assert!(message.contains(&eoa.to_checksum(None)), "{message}");

    // From L1: a SystemConfig whose messenger getter points at an address without code.
    let g = geth();
    let nowhere = alloy_primitives::address!("0x00000000000000000000000000000000DeaDBeef");
    let system_config = g.deploy(
        "FakeSystemConfig",
        (
            chain.portal,
            nowhere,
            chain.standard_bridge,
            chain.standard_bridge,
            chain.standard_bridge,
            chain.batch_inbox,
            chain.unsafe_block_signer,
            alloy_primitives::U256::from(1u64),
        )
            .abi_encode_params(),
    );
    g.mine(4);
    let given = Contracts {
        system_config: Some(system_config),
        ..Contracts::default()
    };
    let err = run(&request(DiscoveryMethod::Auto, given))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "NoCode");
    assert!(
        err.to_string().contains("l1CrossDomainMessengerAddr"),
        "{err}"
    );
}

#[tokio::test]
async fn a_system_config_address_without_code_finds_nothing_and_says_why() {
    let _serial = discovery_support::SERIAL.lock().await;
    let _ = deploy_chain(geth());
    let given = Contracts {
        system_config: Some(alloy_primitives::address!(
            "0x00000000000000000000000000000000DeaDBeef"
        )),
        ..Contracts::default()
    };
    let err = run(&request(DiscoveryMethod::Auto, given))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "NotFound");
    assert!(err.to_string().contains("optimismPortalAddr"), "{err}");
}

#[tokio::test]
async fn an_older_system_config_lacking_getters_is_tolerated_and_the_gap_named() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_legacy_chain(geth());
    let err = run(&request(DiscoveryMethod::Auto, system_config_only(&chain)))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "NotFound");
    let message = err.to_string();
    assert!(message.contains("disputeGameFactoryAddr"), "{message}");
    assert!(message.contains("1.12.0"), "{message}");

    // With the missing address given in the spec, the rest still comes from L1.
    let factory = geth().deploy("Stub", vec![]);
    geth().mine(4);
    let mut given = system_config_only(&chain);
    given.dispute_game_factory = Some(factory);
    let found = run(&request(DiscoveryMethod::Auto, given)).await.unwrap();
    assert_eq!(found.method, Method::SystemConfig);
    assert_eq!(found.overridden, vec![Field::DisputeGameFactory]);
    let expected = TestChain {
        dispute_game_factory: factory,
        ..chain
    };
    assert_finds_every_address(&found, &expected);
}

#[tokio::test]
async fn registry_discovery_reports_its_method_and_is_checked_on_l1() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    let registry = serde_json::json!({
        "901": {
            "SystemConfigProxy": chain.system_config.to_string(),
            "OptimismPortalProxy": chain.portal.to_string(),
            "DisputeGameFactoryProxy": chain.dispute_game_factory.to_string(),
            "L1StandardBridgeProxy": chain.standard_bridge.to_string(),
        }
    });
    // auto without systemConfigAddr: the registry copy answers, and says what was skipped.
    let mut req = request(DiscoveryMethod::Auto, Contracts::default());
    req.registry = Some(registry.to_string().into_bytes());
    let found = run(&req).await.unwrap();
    assert_eq!(found.method, Method::SuperchainRegistry);
    assert_eq!(found.attempts.len(), 1);
    assert_eq!(found.attempts[0].method, Method::SystemConfig);
    assert_eq!(
        found.contracts.dispute_game_factory,
        Some(chain.dispute_game_factory)
    );

    // A registry entry naming an address without code is not pinned.
    let mut stale = registry.clone();
    stale["901"]["DisputeGameFactoryProxy"] =
        serde_json::json!("0x00000000000000000000000000000000DeaDBeef");
    req.registry = Some(stale.to_string().into_bytes());
    req.method = DiscoveryMethod::SuperchainRegistry;
    assert_eq!(run(&req).await.unwrap_err().reason(), "NoCode");

    // And system-config answers that contradict the registry copy are refused.
    req.method = DiscoveryMethod::Auto;
    req.given.system_config = Some(chain.system_config);
    let err = run(&req).await.unwrap_err();
    assert_eq!(err.reason(), "Inconsistent");
}

#[tokio::test]
async fn the_well_known_table_is_not_used_for_a_chain_on_another_l1() {
    let _serial = discovery_support::SERIAL.lock().await;
    let mut req = request(DiscoveryMethod::WellKnown, Contracts::default());
    req.network_name = Some("op-sepolia".into());
    req.chain_id = None;
    let err = run(&req).await.unwrap_err();
    assert_eq!(err.reason(), "NetworkMismatch");
    assert!(err.to_string().contains("spec.l1ChainID is 1337"), "{err}");
}

#[tokio::test]
async fn a_value_changed_on_l1_after_pinning_is_reported_not_rewired() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    let req = request(DiscoveryMethod::Auto, system_config_only(&chain));
    let first = run(&req).await;
    let PinDecision::Pin(pinned) = decide_pin(None, &first, Timestamp::now()) else {
        panic!("expected a first pin, got {first:?}");
    };

    // Same chain, read again later: unchanged.
    geth().mine(1);
    let again = run(&req).await;
    assert!(matches!(
        decide_pin(Some(&pinned), &again, Timestamp::now()),
        PinDecision::Refresh(_)
    ));

    // The chain's owner rotates the unsafe block signer on L1.
    let new_signer = alloy_primitives::address!("0x2222222222222222222222222222222222222222");
    let mut call = alloy_primitives::hex::decode("18d13918").unwrap(); // setUnsafeBlockSigner(address)
    call.extend(new_signer.abi_encode());
    geth().transact(Some(chain.system_config), call);

    // Right after the change, the two reads straddle it or the change is too shallow: either
    // way nothing new is pinned. Once it is deep, the re-read reports it.
    geth().mine(4);
    let changed = run(&req).await;
    let decision = decide_pin(Some(&pinned), &changed, Timestamp::now());
    let PinDecision::ReportChange(RereadDecision::Changed { changes }) = &decision else {
        panic!("expected a reported change, got {decision:?}");
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, Field::UnsafeBlockSigner);
    assert_eq!(
        changes[0].observed.as_deref(),
        Some(new_signer.to_checksum(None).as_str())
    );
}

#[tokio::test]
async fn a_change_between_the_two_reads_is_not_trusted() {
    let _serial = discovery_support::SERIAL.lock().await;
    let chain = deploy_chain(geth());
    let new_signer = alloy_primitives::address!("0x3333333333333333333333333333333333333333");
    let mut call = alloy_primitives::hex::decode("18d13918").unwrap();
    call.extend(new_signer.abi_encode());
    let receipt = geth().transact(Some(chain.system_config), call);
    let changed_at = discovery_support::hex_u64(&receipt["blockNumber"]);
    // Make the changing block exactly the pinned one, so the second read (one block earlier)
    // still sees the old signer.
    while geth().block_number() < changed_at + 2 {
        geth().mine(1);
    }
    let head = geth().block_number();
    let confirmations = head - changed_at;
    let options = Options {
        confirmations,
        ..Options::default()
    };
    let result = discover(
        &l1(),
        &request(DiscoveryMethod::Auto, system_config_only(&chain)),
        &options,
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.reason(), "ValueChanged");
    let message = err.to_string();
    assert!(message.contains("unsafeBlockSignerAddr"), "{message}");
    assert!(message.contains(&new_signer.to_checksum(None)), "{message}");
}
