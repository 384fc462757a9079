//! `opstack-operator crds`: every CRD as multi-document YAML.

use std::io::Write;

pub fn run(out: &mut impl Write) -> anyhow::Result<()> {
    let _ = out;
    Ok(())
}
