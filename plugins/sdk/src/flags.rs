//! Command-line flags rendered in a stable order.

use std::collections::BTreeMap;
use std::fmt::Display;

/// A set of `--name=value` flags. Rendered sorted by name, whatever the order of the calls,
/// so that moving code around never reorders a container's args (which would roll its pods).
/// A flag set twice keeps its last value; [`Flags::add`] appends repeated values instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    flags: BTreeMap<String, Vec<String>>,
    switches: BTreeMap<String, ()>,
}

impl Flags {
    pub fn new() -> Self {
        Self::default()
    }

    /// `--name=value`, replacing any previous value.
    pub fn set(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.flags.insert(name.to_owned(), vec![value.to_string()]);
        self
    }

    /// `--name=value` if `value` is `Some`.
    pub fn set_opt<T: Display>(&mut self, name: &str, value: Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.set(name, value);
        }
        self
    }

    /// Another `--name=value` after the ones already given (for repeatable flags).
    pub fn add(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.flags
            .entry(name.to_owned())
            .or_default()
            .push(value.to_string());
        self
    }

    /// A bare `--name` (boolean switch).
    pub fn switch(&mut self, name: &str) -> &mut Self {
        self.switches.insert(name.to_owned(), ());
        self
    }

    /// A bare `--name` if `on`.
    pub fn switch_if(&mut self, name: &str, on: bool) -> &mut Self {
        if on {
            self.switch(name);
        }
        self
    }

    /// Whether the flag or switch is set.
    pub fn contains(&self, name: &str) -> bool {
        self.flags.contains_key(name) || self.switches.contains_key(name)
    }

    /// The args, sorted by flag name; repeated values in the order added.
    pub fn to_args(&self) -> Vec<String> {
        let mut named: Vec<(&str, Option<&str>)> = self
            .flags
            .iter()
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |v| (name.as_str(), Some(v.as_str())))
            })
            .chain(self.switches.keys().map(|name| (name.as_str(), None)))
            .collect();
        // Stable sort: repeated values of one flag keep their relative order.
        named.sort_by(|a, b| a.0.cmp(b.0));
        named
            .into_iter()
            .map(|(name, value)| match value {
                Some(value) => format!("--{name}={value}"),
                None => format!("--{name}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_render_sorted_by_name_whatever_the_call_order() {
        let mut a = Flags::new();
        a.set("rpc.port", 9545)
            .switch("p2p.disable")
            .set("l1", "http://l1");
        let mut b = Flags::new();
        b.set("l1", "http://l1")
            .switch("p2p.disable")
            .set("rpc.port", 9545);
        assert_eq!(a.to_args(), b.to_args());
        assert_eq!(
            a.to_args(),
            ["--l1=http://l1", "--p2p.disable", "--rpc.port=9545"]
        );
    }

    #[test]
    fn repeated_flags_keep_their_order_and_set_replaces() {
        let mut f = Flags::new();
        f.add("bootnodes", "b")
            .add("bootnodes", "a")
            .set("x", 1)
            .set("x", 2)
            .set_opt::<u8>("none", None);
        assert_eq!(f.to_args(), ["--bootnodes=b", "--bootnodes=a", "--x=2"]);
    }
}
