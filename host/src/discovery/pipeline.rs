//! The discovery pipeline: the only place that sequences L1 reads and the pure checks.

use alloy_primitives::Address;
use opstack_crds::network::DiscoveryMethod;

use super::l1::L1Reader;
use super::{
    Attempt, Contracts, Discovery, DiscoveryError, DiscoveryRequest, Field, Method, Options,
    registry, system_config, trust, well_known,
};

/// Finds the L1 contracts `request` asks for and checks them against L1 (module docs of
/// `discovery`). Returns only what passed every check; on any error nothing may be pinned.
pub async fn discover<L: L1Reader>(
    l1: &L,
    request: &DiscoveryRequest,
    options: &Options,
) -> Result<Discovery, DiscoveryError> {
    trust::check_chain_id(request.l1_chain_id, l1.chain_id().await?)?;
    let head = l1.block_number().await?;
    let block = trust::pin_block(head, options.confirmations)?;

    let mut attempts = Vec::new();
    let answer = match request.method {
        DiscoveryMethod::Manual => settle(Method::Manual, request.given.clone(), request)?,
        DiscoveryMethod::WellKnown => {
            settle(Method::WellKnown, from_well_known(request)?, request)?
        }
        DiscoveryMethod::SuperchainRegistry => {
            let found = from_registry(request)?.ok_or_else(|| DiscoveryError::NotFound {
                what: not_in_registry(request),
                fix: "update the registry copy, or choose another \
                      spec.contractAddresses.discoveryMethod"
                    .to_string(),
            })?;
            settle(Method::SuperchainRegistry, found, request)?
        }
        DiscoveryMethod::Auto => auto(l1, request, block, &mut attempts).await?,
    };

    for (field, address) in trust::contract_addresses(&answer.contracts) {
        if l1.code_at(address, block).await?.is_empty() {
            return Err(DiscoveryError::NoCode {
                field,
                addr: address,
                block,
            });
        }
    }

    Ok(Discovery {
        method: answer.method,
        l1_chain_id: request.l1_chain_id,
        block,
        second_read_block: (answer.method == Method::SystemConfig).then(|| block - 1),
        contracts: answer.contracts,
        overridden: answer.overridden,
        attempts,
    })
}

struct Answer {
    method: Method,
    contracts: Contracts,
    overridden: Vec<Field>,
}

/// Overrides from the spec, then the required-field and zero checks.
fn settle(
    method: Method,
    found: Contracts,
    request: &DiscoveryRequest,
) -> Result<Answer, DiscoveryError> {
    let (contracts, overridden) = trust::apply_overrides(found, &request.given);
    let contracts = trust::finalize(contracts, method)?;
    Ok(Answer {
        method,
        contracts,
        overridden,
    })
}

/// `auto`: SystemConfig on L1, then the registry copy, then the well-known table.
///
/// Only "this method does not apply here" moves on to the next one: no input for it, or it did
/// not find a required address (an old SystemConfig, a chain not in the registry). A method
/// that was answered with something suspicious (wrong chain, values changing, garbage, an
/// endpoint failing) stops discovery: falling back to a table after L1 lied would hide the lie.
async fn auto<L: L1Reader>(
    l1: &L,
    request: &DiscoveryRequest,
    block: u64,
    attempts: &mut Vec<Attempt>,
) -> Result<Answer, DiscoveryError> {
    let mut skip = |method: Method, outcome: String| attempts.push(Attempt { method, outcome });

    match request.given.system_config {
        Some(system_config) => {
            let found = read_twice(l1, system_config, block).await?;
            match settle(Method::SystemConfig, found.clone(), request) {
                Ok(answer) => {
                    if let Some((reference, source)) = reference_copy(request)? {
                        let l1_source = format!("SystemConfig {system_config} at L1 block {block}");
                        trust::cross_check(&found, &l1_source, &reference, &source)?;
                    }
                    return Ok(answer);
                }
                Err(DiscoveryError::NotFound { what, .. }) => skip(Method::SystemConfig, what),
                Err(other) => return Err(other),
            }
        }
        None => skip(
            Method::SystemConfig,
            "skipped: spec.contractAddresses.systemConfigAddr is not set".to_string(),
        ),
    }

    if request.registry.is_none() {
        skip(
            Method::SuperchainRegistry,
            "skipped: no spec.contractAddresses.superchainRegistry".to_string(),
        );
    } else {
        match from_registry(request)? {
            None => skip(Method::SuperchainRegistry, not_in_registry(request)),
            Some(found) => match settle(Method::SuperchainRegistry, found, request) {
                Ok(answer) => return Ok(answer),
                Err(DiscoveryError::NotFound { what, .. }) => {
                    skip(Method::SuperchainRegistry, what)
                }
                Err(other) => return Err(other),
            },
        }
    }

    match from_well_known(request) {
        Ok(found) => match settle(Method::WellKnown, found, request) {
            Ok(answer) => return Ok(answer),
            Err(DiscoveryError::NotFound { what, .. }) => skip(Method::WellKnown, what),
            Err(other) => return Err(other),
        },
        Err(DiscoveryError::NotFound { what, .. }) => skip(Method::WellKnown, what),
        Err(other) => return Err(other),
    }

    let tried: Vec<String> = attempts
        .iter()
        .map(|a| format!("{}: {}", a.method, a.outcome))
        .collect();
    Err(DiscoveryError::NotFound {
        what: format!("no discovery method found the contracts ({})", tried.join("; ")),
        fix: "set spec.contractAddresses.systemConfigAddr (every other address is read from it), \
              or give a superchainRegistry copy that lists this chain, or use discoveryMethod manual"
            .to_string(),
    })
}

/// Every SystemConfig value at `block`, confirmed by a second read at `block − 1`.
async fn read_twice<L: L1Reader>(
    l1: &L,
    system_config: Address,
    block: u64,
) -> Result<Contracts, DiscoveryError> {
    let first = system_config::read(l1, system_config, block).await?;
    let second = system_config::read(l1, system_config, block - 1).await?;
    trust::compare_reads(&first, block, &second, block - 1)?;
    Ok(first)
}

fn from_registry(request: &DiscoveryRequest) -> Result<Option<Contracts>, DiscoveryError> {
    let Some(bytes) = &request.registry else {
        return Err(DiscoveryError::NotFound {
            what: "discovery method superchain-registry has no registry data".to_string(),
            fix: "set spec.contractAddresses.superchainRegistry to the ConfigMap key holding \
                  the registry's addresses.json"
                .to_string(),
        });
    };
    let Some(chain_id) = request.chain_id else {
        return Ok(None);
    };
    registry::parse(bytes, chain_id)
}

fn not_in_registry(request: &DiscoveryRequest) -> String {
    match request.chain_id {
        Some(id) => format!("the superchain-registry copy does not list L2 chain {id}"),
        None => "no L2 chain id to look up in the superchain-registry copy".to_string(),
    }
}

/// The table's entry for the request's network name, or else its L2 chain id; the entry must
/// agree with the request's chain ids.
fn from_well_known(request: &DiscoveryRequest) -> Result<Contracts, DiscoveryError> {
    let entry = match (&request.network_name, request.chain_id) {
        (Some(name), _) if well_known::by_name(name).is_some() => well_known::by_name(name),
        (_, Some(id)) => well_known::by_chain_id(id),
        _ => None,
    };
    let Some(entry) = entry else {
        let known: Vec<&str> = well_known::NETWORKS.iter().map(|n| n.name).collect();
        return Err(DiscoveryError::NotFound {
            what: format!(
                "the well-known table has no network {} (it knows {})",
                request
                    .network_name
                    .clone()
                    .or(request.chain_id.map(|id| format!("with L2 chain id {id}")))
                    .unwrap_or_else(|| "without a name or chain id".to_string()),
                known.join(", ")
            ),
            fix: "set spec.contractAddresses.systemConfigAddr, or use discoveryMethod \
                  superchain-registry or manual"
                .to_string(),
        });
    };
    let mismatch = |detail: String| DiscoveryError::NetworkMismatch {
        network: entry.name.to_string(),
        chain_id: entry.chain_id,
        l1_chain_id: entry.l1_chain_id,
        detail,
    };
    if entry.l1_chain_id != request.l1_chain_id {
        return Err(mismatch(format!(
            "spec.l1ChainID is {}",
            request.l1_chain_id
        )));
    }
    if let Some(id) = request.chain_id
        && id != entry.chain_id
    {
        return Err(mismatch(format!("spec.chainID is {id}")));
    }
    entry.pinnable_contracts()
}

/// An independent copy of this chain's addresses to check an L1 answer against: the user's
/// registry copy if it lists the chain (newer than our table), else our table's current entry.
fn reference_copy(
    request: &DiscoveryRequest,
) -> Result<Option<(Contracts, String)>, DiscoveryError> {
    if request.registry.is_some()
        && let Some(found) = from_registry(request)?
    {
        return Ok(Some((found, "the superchain-registry copy".to_string())));
    }
    Ok(request
        .chain_id
        .and_then(well_known::by_chain_id)
        .filter(|entry| !entry.historical && entry.l1_chain_id == request.l1_chain_id)
        .map(|entry| {
            (
                entry.contracts(),
                format!("the well-known entry of {}", entry.name),
            )
        }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use alloy_primitives::{Bytes, address};
    use alloy_sol_types::SolValue;

    use super::*;
    use crate::discovery::l1::CallOutcome;
    use crate::discovery::system_config::{PORTAL_DISPUTE_GAME_FACTORY, SYSTEM_CONFIG_GETTERS};

    /// An in-memory L1: code and getter answers per address, the same at every block unless a
    /// test overrides one block.
    #[derive(Default)]
    struct FakeL1 {
        chain_id: u64,
        head: u64,
        code: HashMap<Address, Bytes>,
        answers: HashMap<(Address, [u8; 4]), Bytes>,
        at_block: HashMap<(Address, [u8; 4], u64), Bytes>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeL1 {
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl L1Reader for FakeL1 {
        async fn chain_id(&self) -> Result<u64, DiscoveryError> {
            self.log("eth_chainId".into());
            Ok(self.chain_id)
        }
        async fn block_number(&self) -> Result<u64, DiscoveryError> {
            self.log("eth_blockNumber".into());
            Ok(self.head)
        }
        async fn code_at(&self, address: Address, _block: u64) -> Result<Bytes, DiscoveryError> {
            self.log(format!("eth_getCode {address}"));
            Ok(self.code.get(&address).cloned().unwrap_or_default())
        }
        async fn call(
            &self,
            to: Address,
            input: Bytes,
            block: u64,
            _label: &str,
        ) -> Result<CallOutcome, DiscoveryError> {
            self.log(format!("eth_call {to}"));
            let selector: [u8; 4] = input[..4].try_into().unwrap();
            let answer = self
                .at_block
                .get(&(to, selector, block))
                .or_else(|| self.answers.get(&(to, selector)));
            Ok(match answer {
                Some(bytes) => CallOutcome::Returned(bytes.clone()),
                None if self.code.contains_key(&to) => CallOutcome::Reverted,
                None => CallOutcome::Returned(Bytes::new()),
            })
        }
    }

    fn selector(field: Field) -> [u8; 4] {
        SYSTEM_CONFIG_GETTERS
            .iter()
            .find(|g| g.field == field)
            .unwrap()
            .selector
    }

    /// An L1 (chain 1) where op-mainnet's table addresses all have code and its SystemConfig
    /// answers every getter with the table's values.
    fn op_mainnet_l1() -> (FakeL1, Contracts) {
        let expected = well_known::by_name("op-mainnet").unwrap().contracts();
        let mut l1 = FakeL1 {
            chain_id: 1,
            head: 100,
            ..FakeL1::default()
        };
        for (_, a) in trust::contract_addresses(&expected) {
            l1.code.insert(a, Bytes::from_static(&[0x60, 0x80]));
        }
        let sc = expected.system_config.unwrap();
        for field in Field::ADDRESSES.into_iter().skip(1) {
            let value = expected.address(field).unwrap().abi_encode();
            l1.answers.insert((sc, selector(field)), value.into());
        }
        l1.answers.insert(
            (
                expected.optimism_portal.unwrap(),
                PORTAL_DISPUTE_GAME_FACTORY.selector,
            ),
            expected.dispute_game_factory.unwrap().abi_encode().into(),
        );
        l1.answers.insert(
            (sc, selector(Field::StartBlock)),
            alloy_primitives::U256::from(17_422_590u64)
                .abi_encode()
                .into(),
        );
        l1.answers.insert(
            (sc, selector(Field::SystemConfigVersion)),
            "3.14.2".to_string().abi_encode().into(),
        );
        (l1, expected)
    }

    fn request(method: DiscoveryMethod, system_config: Option<Address>) -> DiscoveryRequest {
        DiscoveryRequest {
            l1_chain_id: 1,
            chain_id: Some(10),
            network_name: Some("op-mainnet".into()),
            method,
            given: Contracts {
                system_config,
                ..Contracts::default()
            },
            registry: None,
        }
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn auto_with_a_system_config_reads_everything_from_l1_at_the_pinned_block() {
        let (l1, expected) = op_mainnet_l1();
        let req = request(DiscoveryMethod::Auto, expected.system_config);
        let found = run(discover(&l1, &req, &Options::default())).unwrap();
        assert_eq!(found.method, Method::SystemConfig);
        assert_eq!((found.block, found.second_read_block), (98, Some(97)));
        assert_eq!(
            found.contracts.dispute_game_factory,
            expected.dispute_game_factory
        );
        assert_eq!(
            found.contracts.unsafe_block_signer,
            expected.unsafe_block_signer
        );
        assert_eq!(found.contracts.start_block, Some(17_422_590));
        assert_eq!(
            found.contracts.system_config_version.as_deref(),
            Some("3.14.2")
        );
        assert!(found.attempts.is_empty() && found.overridden.is_empty());
    }

    #[test]
    fn wrong_l1_chain_id_pins_nothing_and_reads_nothing_else() {
        let (mut l1, expected) = op_mainnet_l1();
        l1.chain_id = 11_155_111;
        let req = request(DiscoveryMethod::Auto, expected.system_config);
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "WrongChainId");
        assert_eq!(l1.calls(), vec!["eth_chainId".to_string()]);
    }

    #[test]
    fn auto_without_a_system_config_falls_back_to_the_well_known_table_and_says_so() {
        let (l1, expected) = op_mainnet_l1();
        let found = run(discover(
            &l1,
            &request(DiscoveryMethod::Auto, None),
            &Options::default(),
        ))
        .unwrap();
        assert_eq!(found.method, Method::WellKnown);
        assert_eq!(found.contracts.optimism_portal, expected.optimism_portal);
        let tried: Vec<Method> = found.attempts.iter().map(|a| a.method).collect();
        assert_eq!(
            tried,
            vec![Method::SystemConfig, Method::SuperchainRegistry]
        );
        assert!(
            found.attempts[0]
                .outcome
                .contains("systemConfigAddr is not set")
        );
    }

    #[test]
    fn a_value_changing_between_reads_stops_auto_instead_of_falling_back() {
        let (mut l1, expected) = op_mainnet_l1();
        let sc = expected.system_config.unwrap();
        l1.at_block.insert(
            (sc, selector(Field::BatchInbox), 97),
            address!("0xff00000000000000000000000000000011155420")
                .abi_encode()
                .into(),
        );
        let req = request(DiscoveryMethod::Auto, Some(sc));
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "ValueChanged");
        assert!(err.to_string().contains("batchInboxAddr"), "{err}");
    }

    #[test]
    fn a_legacy_system_config_falls_through_only_because_it_lacks_a_required_getter() {
        let (mut l1, expected) = op_mainnet_l1();
        let sc = expected.system_config.unwrap();
        l1.answers
            .remove(&(sc, selector(Field::DisputeGameFactory)));
        l1.answers.remove(&(
            expected.optimism_portal.unwrap(),
            PORTAL_DISPUTE_GAME_FACTORY.selector,
        ));
        let req = request(DiscoveryMethod::Auto, Some(sc));
        let found = run(discover(&l1, &req, &Options::default())).unwrap();
        assert_eq!(found.method, Method::WellKnown);
        assert!(found.attempts[0].outcome.contains("disputeGameFactoryAddr"));

        // Given in the spec, the missing address completes the L1 answer instead.
        let mut req = request(DiscoveryMethod::Auto, Some(sc));
        req.given.dispute_game_factory = expected.dispute_game_factory;
        let found = run(discover(&l1, &req, &Options::default())).unwrap();
        assert_eq!(found.method, Method::SystemConfig);
        assert_eq!(found.overridden, vec![Field::DisputeGameFactory]);
    }

    #[test]
    fn an_l1_answer_contradicting_the_registry_copy_pins_nothing() {
        let (l1, expected) = op_mainnet_l1();
        let mut req = request(DiscoveryMethod::Auto, expected.system_config);
        req.registry = Some(
            br#"{"10": {"OptimismPortalProxy": "0x16Fc5058F25648194471939df75CF27A2fdC48BC"}}"#
                .to_vec(),
        );
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "Inconsistent");
        assert!(
            err.to_string().contains("superchain-registry copy"),
            "{err}"
        );
    }

    #[test]
    fn manual_addresses_without_code_are_refused() {
        let (l1, expected) = op_mainnet_l1();
        let mut req = request(DiscoveryMethod::Manual, expected.system_config);
        req.given.optimism_portal = expected.optimism_portal;
        req.given.dispute_game_factory =
            Some(address!("0x05F9613aDB30026FFd634f38e5C4dFd30a197Fa1"));
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "NoCode");
        assert!(err.to_string().contains("disputeGameFactoryAddr"), "{err}");
    }

    #[test]
    fn the_well_known_table_is_refused_for_another_l1() {
        let (mut l1, _) = op_mainnet_l1();
        l1.chain_id = 11_155_111;
        let mut req = request(DiscoveryMethod::WellKnown, None);
        req.l1_chain_id = 11_155_111;
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "NetworkMismatch");
    }

    #[test]
    fn nothing_found_anywhere_lists_every_method_tried() {
        let (l1, _) = op_mainnet_l1();
        let mut req = request(DiscoveryMethod::Auto, None);
        req.network_name = None;
        req.chain_id = Some(901);
        let err = run(discover(&l1, &req, &Options::default())).unwrap_err();
        assert_eq!(err.reason(), "NotFound");
        let message = err.to_string();
        for method in ["system-config:", "superchain-registry:", "well-known:"] {
            assert!(message.contains(method), "{message}");
        }
    }
}
