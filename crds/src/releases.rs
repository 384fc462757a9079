//! The release table (`crds/releases.toml`): default images, the forks each release follows,
//! the op-node + execution-client mixes known to break, flags and built-in networks releases
//! removed, and the fork schedule of the networks op-node knows by name.
//!
//! It is data compiled into the operator and into the bundled renderers alike, so the defaults
//! a renderer picks and the readiness the host judges come from one file. Everything here is
//! pure: the host feeds it what a CR would run and when, and gets answers back.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// The table as shipped: `crds/releases.toml`, turned into JSON by the build script.
pub const RELEASES_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/releases.json"));

/// Errors of reading the table or a version. Variant names double as condition reasons.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReleaseError {
    #[error("release table: {0}")]
    Table(String),
    #[error("{value:?} is not a release version: expected vMAJOR.MINOR.PATCH, e.g. v1.21.0")]
    Version { value: String },
    #[error("release table: unknown component {0:?}")]
    UnknownComponent(String),
}

/// A component with its own releases and image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    OpNode,
    OpReth,
    OpGeth,
    OpBatcher,
    OpProposer,
    OpChallenger,
    OpConductor,
}

impl Component {
    pub const ALL: [Component; 7] = [
        Component::OpNode,
        Component::OpReth,
        Component::OpGeth,
        Component::OpBatcher,
        Component::OpProposer,
        Component::OpChallenger,
        Component::OpConductor,
    ];

    /// Its name, which is also the container name the bundled renderers give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::OpNode => "op-node",
            Component::OpReth => "op-reth",
            Component::OpGeth => "op-geth",
            Component::OpBatcher => "op-batcher",
            Component::OpProposer => "op-proposer",
            Component::OpChallenger => "op-challenger",
            Component::OpConductor => "op-conductor",
        }
    }

    /// The component a container of that name runs, if it is one.
    pub fn of_container(name: &str) -> Option<Component> {
        name.parse().ok()
    }

    /// The execution clients op-node drives.
    pub fn is_execution_client(self) -> bool {
        matches!(self, Component::OpReth | Component::OpGeth)
    }
}

impl FromStr for Component {
    type Err = ReleaseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ReleaseError::UnknownComponent(s.to_owned()))
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release version, `vMAJOR.MINOR.PATCH`. A pre-release suffix (`-rc.1`) is kept for display
/// and orders before the release itself, as semver says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Option<String>,
}

impl Version {
    /// The release an image reference names by its tag (`repo:v1.21.0`, also with a digest
    /// after it); `None` for a digest-only reference or a tag that is no release version.
    pub fn of_image(image: &str) -> Option<Version> {
        let without_digest = image.split('@').next().unwrap_or(image);
        let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let (_, tag) = last_segment.split_once(':')?;
        tag.parse().ok()
    }

    fn core(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = ReleaseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ReleaseError::Version {
            value: s.to_owned(),
        };
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_owned())),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let mut number = || -> Result<u64, ReleaseError> {
            let part = parts.next().ok_or_else(bad)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (major, minor, patch) = (number()?, number()?, number()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.core()
            .cmp(&other.core())
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// The current release of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub repository: String,
    pub version: Version,
}

impl Release {
    /// Its image reference.
    pub fn image(&self) -> String {
        format!("{}:{}", self.repository, self.version)
    }
}

/// Whose schedule activates a fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The chain's: its rollup config, or the built-in registry for a named network.
    L2,
    /// The L1 chain's.
    L1,
}

/// The first release of a component that follows a fork.
#[derive(Debug, Clone, PartialEq)]
pub enum Minimum {
    From(Version),
    /// No release follows it.
    Never,
}

impl Minimum {
    pub fn admits(&self, version: &Version) -> bool {
        match self {
            Minimum::From(min) => version >= min,
            Minimum::Never => false,
        }
    }
}

impl fmt::Display for Minimum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Minimum::From(v) => write!(f, "{v} or later"),
            Minimum::Never => f.write_str("no release"),
        }
    }
}

/// A fork and the releases that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fork {
    pub name: String,
    pub layer: Layer,
    pub minimum: BTreeMap<Component, Minimum>,
}

/// A mix known to break: when `when` holds for one side, `needs` must hold for the other.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRule {
    pub when: (Component, Version),
    pub needs: (Component, Version),
    pub why: String,
}

/// A flag a release removed.
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedFlag {
    pub component: Component,
    pub flag: String,
    pub since: Version,
}

/// A flag a release renamed: `was` before `since`, `name` from it on.
#[derive(Debug, Clone, PartialEq)]
pub struct RenamedFlag {
    pub component: Component,
    pub name: String,
    pub was: String,
    pub since: Version,
}

/// Built-in networks a release dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedNetworks {
    pub component: Component,
    pub since: Version,
    pub networks: Vec<String>,
}

/// One fork activation on one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub fork: String,
    /// Unix seconds.
    pub time: i64,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseTable {
    pub components: BTreeMap<Component, Release>,
    pub forks: Vec<Fork>,
    pub pairs: Vec<PairRule>,
    pub removed_flags: Vec<RemovedFlag>,
    pub renamed_flags: Vec<RenamedFlag>,
    pub dropped_networks: Vec<DroppedNetworks>,
    /// Fork name → activation time, by network name (op-node's `--network` spelling).
    pub networks: BTreeMap<String, BTreeMap<String, i64>>,
    /// Fork name → activation time, by L1 chain id.
    pub l1_chains: BTreeMap<i64, BTreeMap<String, i64>>,
}

/// The table shipped with this build. Its parse is tested, so a bad table never ships.
pub fn table() -> &'static ReleaseTable {
    static TABLE: OnceLock<ReleaseTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        ReleaseTable::parse(RELEASES_JSON).expect("crds/releases.toml parses (tested)")
    })
}

impl ReleaseTable {
    /// Parses the table in its built form (JSON of `releases.toml`).
    pub fn parse(json: &str) -> Result<ReleaseTable, ReleaseError> {
        let raw: raw::Table =
            serde_json::from_str(json).map_err(|e| ReleaseError::Table(e.to_string()))?;
        raw.into_table()
    }

    /// The current release of a component.
    pub fn release(&self, component: Component) -> &Release {
        // Every component has an entry: `parse` refuses a table without one.
        &self.components[&component]
    }

    /// The image a renderer uses when the CR names none.
    pub fn default_image(&self, component: Component) -> String {
        self.release(component).image()
    }

    /// The release an image runs: its tag's version, or (for a digest or another tag) the
    /// current release, which is what the operator's defaults are tested with.
    pub fn version_of(&self, component: Component, image: &str) -> Version {
        Version::of_image(image).unwrap_or_else(|| self.release(component).version.clone())
    }

    /// The release that removed `flag` (without dashes) from `component`, if `version` is it or later.
    pub fn flag_removed(
        &self,
        component: Component,
        flag: &str,
        version: &Version,
    ) -> Option<&Version> {
        self.removed_flags
            .iter()
            .find(|r| r.component == component && r.flag == flag && version >= &r.since)
            .map(|r| &r.since)
    }

    /// The name `version` of `component` gives the flag now called `name` (without dashes).
    pub fn flag_name<'a>(
        &'a self,
        component: Component,
        name: &'a str,
        version: &Version,
    ) -> &'a str {
        self.renamed_flags
            .iter()
            .find(|r| r.component == component && r.name == name && version < &r.since)
            .map_or(name, |r| r.was.as_str())
    }

    /// The release that dropped the built-in `network` from `component`, if `version` is it or later.
    pub fn network_dropped(
        &self,
        component: Component,
        network: &str,
        version: &Version,
    ) -> Option<&Version> {
        self.dropped_networks
            .iter()
            .find(|d| {
                d.component == component
                    && version >= &d.since
                    && d.networks.iter().any(|n| n == network)
            })
            .map(|d| &d.since)
    }

    pub fn fork(&self, name: &str) -> Option<&Fork> {
        self.forks.iter().find(|f| f.name == name)
    }

    /// Every fork activation of a chain, in time order: from its rollup config when one is
    /// given (`<fork>_time` keys, as op-node reads them), else from the table for its network
    /// name; then the L1's. Forks the table does not know are left out: nothing can be said of
    /// which release follows them.
    pub fn schedule(
        &self,
        network_name: Option<&str>,
        rollup_config: Option<&Value>,
        l1_chain_id: i64,
    ) -> Vec<Activation> {
        let mut out: Vec<Activation> = Vec::new();
        let l2_forks = self.forks.iter().filter(|f| f.layer == Layer::L2);
        match rollup_config {
            Some(config) => {
                for fork in l2_forks {
                    if let Some(time) = config
                        .get(format!("{}_time", fork.name))
                        .and_then(Value::as_i64)
                    {
                        out.push(Activation {
                            fork: fork.name.clone(),
                            time,
                        });
                    }
                }
            }
            None => {
                if let Some(times) = network_name.and_then(|n| self.networks.get(n)) {
                    for fork in l2_forks {
                        if let Some(&time) = times.get(&fork.name) {
                            out.push(Activation {
                                fork: fork.name.clone(),
                                time,
                            });
                        }
                    }
                }
            }
        }
        if let Some(times) = self.l1_chains.get(&l1_chain_id) {
            for fork in self.forks.iter().filter(|f| f.layer == Layer::L1) {
                if let Some(&time) = times.get(&fork.name) {
                    out.push(Activation {
                        fork: fork.name.clone(),
                        time,
                    });
                }
            }
        }
        out.sort_by_key(|a| a.time);
        out
    }
}

/// The file's shape, checked and turned into the typed table.
mod raw {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Table {
        components: BTreeMap<String, Component>,
        forks: Vec<Fork>,
        pairs: Vec<Pair>,
        #[serde(rename = "removed-flags")]
        removed_flags: Vec<RemovedFlag>,
        #[serde(rename = "renamed-flags")]
        renamed_flags: Vec<RenamedFlag>,
        #[serde(rename = "dropped-networks")]
        dropped_networks: Vec<DroppedNetworks>,
        networks: BTreeMap<String, BTreeMap<String, i64>>,
        #[serde(rename = "l1-chains")]
        l1_chains: BTreeMap<String, BTreeMap<String, i64>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Component {
        repository: String,
        version: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fork {
        name: String,
        layer: String,
        min: BTreeMap<String, String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        when: BTreeMap<String, String>,
        needs: BTreeMap<String, String>,
        why: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RemovedFlag {
        component: String,
        flag: String,
        since: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RenamedFlag {
        component: String,
        name: String,
        was: String,
        since: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DroppedNetworks {
        component: String,
        since: String,
        networks: Vec<String>,
    }

    fn one(
        map: BTreeMap<String, String>,
        what: &str,
    ) -> Result<(super::Component, Version), ReleaseError> {
        let mut entries = map.into_iter();
        match (entries.next(), entries.next()) {
            (Some((component, version)), None) => Ok((component.parse()?, version.parse()?)),
            _ => Err(ReleaseError::Table(format!(
                "a pair's `{what}` names exactly one component"
            ))),
        }
    }

    impl Table {
        pub fn into_table(self) -> Result<ReleaseTable, ReleaseError> {
            let mut components = BTreeMap::new();
            for (name, c) in self.components {
                components.insert(
                    name.parse()?,
                    Release {
                        repository: c.repository,
                        version: c.version.parse()?,
                    },
                );
            }
            if let Some(missing) = super::Component::ALL
                .into_iter()
                .find(|c| !components.contains_key(c))
            {
                return Err(ReleaseError::Table(format!(
                    "components.{missing} is missing"
                )));
            }
            let mut forks = Vec::new();
            for f in self.forks {
                let layer = match f.layer.as_str() {
                    "l2" => Layer::L2,
                    "l1" => Layer::L1,
                    other => {
                        return Err(ReleaseError::Table(format!(
                            "fork {}: layer {other:?} is neither \"l1\" nor \"l2\"",
                            f.name
                        )));
                    }
                };
                let mut minimum = BTreeMap::new();
                for (component, min) in f.min {
                    let min = if min == "never" {
                        Minimum::Never
                    } else {
                        Minimum::From(min.parse()?)
                    };
                    minimum.insert(component.parse()?, min);
                }
                forks.push(super::Fork {
                    name: f.name,
                    layer,
                    minimum,
                });
            }
            let pairs = self
                .pairs
                .into_iter()
                .map(|p| {
                    Ok(PairRule {
                        when: one(p.when, "when")?,
                        needs: one(p.needs, "needs")?,
                        why: p.why,
                    })
                })
                .collect::<Result<_, ReleaseError>>()?;
            let removed_flags = self
                .removed_flags
                .into_iter()
                .map(|r| {
                    Ok(super::RemovedFlag {
                        component: r.component.parse()?,
                        flag: r.flag,
                        since: r.since.parse()?,
                    })
                })
                .collect::<Result<_, ReleaseError>>()?;
            let renamed_flags = self
                .renamed_flags
                .into_iter()
                .map(|r| {
                    Ok(super::RenamedFlag {
                        component: r.component.parse()?,
                        name: r.name,
                        was: r.was,
                        since: r.since.parse()?,
                    })
                })
                .collect::<Result<_, ReleaseError>>()?;
            let dropped_networks = self
                .dropped_networks
                .into_iter()
                .map(|d| {
                    Ok(super::DroppedNetworks {
                        component: d.component.parse()?,
                        since: d.since.parse()?,
                        networks: d.networks,
                    })
                })
                .collect::<Result<_, ReleaseError>>()?;
            let known = |fork: &str, layer: Layer| {
                forks
                    .iter()
                    .any(|f: &super::Fork| f.name == fork && f.layer == layer)
            };
            for (network, times) in &self.networks {
                if let Some(fork) = times.keys().find(|f| !known(f, Layer::L2)) {
                    return Err(ReleaseError::Table(format!(
                        "networks.{network}: {fork} is no L2 fork of the table"
                    )));
                }
            }
            let mut l1_chains = BTreeMap::new();
            for (id, times) in self.l1_chains {
                if let Some(fork) = times.keys().find(|f| !known(f, Layer::L1)) {
                    return Err(ReleaseError::Table(format!(
                        "l1-chains.{id}: {fork} is no L1 fork of the table"
                    )));
                }
                let id: i64 = id
                    .parse()
                    .map_err(|_| ReleaseError::Table(format!("l1-chains.{id}: not a chain id")))?;
                l1_chains.insert(id, times);
            }
            Ok(ReleaseTable {
                components,
                forks,
                pairs,
                removed_flags,
                renamed_flags,
                dropped_networks,
                networks: self.networks,
                l1_chains,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn the_shipped_table_parses_and_names_every_component() {
        let table = ReleaseTable::parse(RELEASES_JSON).unwrap();
        for component in Component::ALL {
            assert!(table.default_image(component).contains(component.as_str()));
        }
    }

    #[test]
    fn the_default_node_pair_follows_every_fork_of_the_table() {
        let t = table();
        for fork in &t.forks {
            for component in [Component::OpNode, Component::OpReth] {
                if let Some(min) = fork.minimum.get(&component) {
                    assert!(
                        min.admits(&t.release(component).version),
                        "the default {component} does not follow {}",
                        fork.name
                    );
                }
            }
        }
    }

    #[test]
    fn versions_order_numerically_and_pre_releases_come_first() {
        assert!(v("v1.19.10") > v("v1.19.9"));
        assert!(v("v1.21.0-rc.1") < v("v1.21.0"));
        assert!(v("v2.3.2") > v("v1.101702.3"));
        for bad in ["1.2.3", "v1.2", "v1.2.3.4", "v1.x.3", "v1.2.3-", "latest"] {
            assert!(bad.parse::<Version>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn an_image_names_its_release_only_by_a_version_tag() {
        let of = Version::of_image;
        assert_eq!(
            of("reg.example:5000/images/op-node:v1.21.0"),
            Some(v("v1.21.0"))
        );
        assert_eq!(of("op-node:v1.21.0@sha256:abc"), Some(v("v1.21.0")));
        assert_eq!(of("reg.example:5000/op-node@sha256:abc"), None);
        assert_eq!(of("reg.example:5000/op-node"), None);
        assert_eq!(of("op-batcher:optimism-v1.19.6"), None);
    }

    #[test]
    fn a_named_network_takes_its_schedule_from_the_table_and_a_rollup_config_from_its_keys() {
        let t = table();
        let sepolia = t.schedule(Some("op-sepolia"), None, 11155111);
        let names: Vec<&str> = sepolia.iter().map(|a| a.fork.as_str()).collect();
        assert_eq!(names, ["karst", "glamsterdam", "lagoon"]);
        let config = serde_json::json!({"karst_time": 10, "lagoon_time": 20, "jovian_time": 5});
        let custom = t.schedule(Some("op-sepolia"), Some(&config), 1337);
        assert_eq!(
            custom,
            [
                Activation {
                    fork: "karst".into(),
                    time: 10
                },
                Activation {
                    fork: "lagoon".into(),
                    time: 20
                }
            ]
        );
    }

    #[test]
    fn removed_flags_and_networks_apply_from_their_release_on() {
        let t = table();
        assert!(
            t.flag_removed(Component::OpNode, "sequencer.max-safe-lag", &v("v1.20.0"))
                .is_none()
        );
        assert_eq!(
            t.flag_removed(Component::OpNode, "sequencer.max-safe-lag", &v("v1.20.1")),
            Some(&v("v1.20.1"))
        );
        assert!(
            t.network_dropped(Component::OpNode, "lisk-mainnet", &v("v1.20.1"))
                .is_none()
        );
        assert!(
            t.network_dropped(Component::OpNode, "lisk-mainnet", &v("v1.21.0"))
                .is_some()
        );
        assert!(
            t.network_dropped(Component::OpNode, "op-mainnet", &v("v1.21.0"))
                .is_none()
        );
    }

    #[test]
    fn a_renamed_flag_keeps_its_old_name_for_the_releases_before_the_rename() {
        let t = table();
        let name =
            |v: &str| t.flag_name(Component::OpProposer, "superroot-rpcs", &super::tests::v(v));
        assert_eq!(name("v1.16.3"), "supernode-rpcs");
        assert_eq!(name("v1.16.4"), "superroot-rpcs");
        assert_eq!(
            t.flag_name(Component::OpNode, "network", &v("v1.0.0")),
            "network"
        );
    }

    #[test]
    fn a_table_with_an_unknown_fork_or_component_is_refused() {
        let edited = |edit: &dyn Fn(&mut Value)| {
            let mut json: Value = serde_json::from_str(RELEASES_JSON).unwrap();
            edit(&mut json);
            ReleaseTable::parse(&json.to_string())
        };
        let unknown_fork = edited(&|t| t["networks"]["op-sepolia"]["isthmus"] = 1.into());
        assert!(matches!(unknown_fork, Err(ReleaseError::Table(m)) if m.contains("isthmus")));
        let unknown_component = edited(&|t| t["forks"][0]["min"]["op-gethh"] = "never".into());
        assert!(
            matches!(unknown_component, Err(ReleaseError::UnknownComponent(c)) if c == "op-gethh")
        );
        let missing = edited(&|t| {
            t["components"]
                .as_object_mut()
                .unwrap()
                .remove("op-conductor");
        });
        assert!(matches!(missing, Err(ReleaseError::Table(m)) if m.contains("op-conductor")));
    }
}
