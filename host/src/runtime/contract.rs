//! Contract versioning: which plugins this host can run.
//!
//! Rule (see `wit/README.md`): the major version must match; minors only add. Versions are
//! compared on their first component even below 1.0, so `0.1` and `0.2` are compatible and
//! `1.0` is not.

use super::Error;

/// The version of the WIT package `opstack:plugin` this host was built against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Refuses a plugin whose declared contract version has another major (or does not parse).
pub fn check_contract(found: &str) -> Result<(), Error> {
    let incompatible = || Error::IncompatibleContract {
        found: found.to_owned(),
        expected: CONTRACT_VERSION.to_owned(),
    };
    let found_major = major(found).ok_or_else(incompatible)?;
    let own_major = major(CONTRACT_VERSION).expect("CONTRACT_VERSION is a valid version");
    if found_major == own_major {
        Ok(())
    } else {
        Err(incompatible())
    }
}

fn major(version: &str) -> Option<u64> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let rest: Vec<&str> = parts.collect();
    let well_formed = rest.len() == 2
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    well_formed.then_some(major)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_accepted_whatever_the_minor() {
        assert_eq!(check_contract("0.1.0"), Ok(()));
        assert_eq!(check_contract("0.7.3"), Ok(()));
    }

    #[test]
    fn other_major_is_refused() {
        assert!(matches!(
            check_contract("1.0.0"),
            Err(Error::IncompatibleContract { .. })
        ));
    }

    #[test]
    fn malformed_version_is_refused() {
        for bad in ["", "0", "0.1", "v0.1.0", "0.1.x", "0.1.0.0"] {
            assert!(check_contract(bad).is_err(), "{bad}");
        }
    }
}
