//! `opstack-operator crds`: every CRD as multi-document YAML, and the files committed under
//! `crds/generated/` (one per kind), which a test keeps in step with the types.

use std::io::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Errors of the `crds` command.
#[derive(Debug, thiserror::Error)]
pub enum CrdsError {
    #[error("serialising CRD {name} to YAML: {source}")]
    Serialize {
        name: String,
        source: serde_yaml::Error,
    },
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

/// One CRD as a YAML document (without the `---` separator).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdsError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    serde_yaml::to_string(crd).map_err(|source| CrdsError::Serialize { name, source })
}

/// The file name under `crds/generated/` for a CRD, e.g. `opnodes.optimism.io.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// Prints every CRD, separated by `---`, ready for `kubectl apply --server-side -f -`.
pub fn run(out: &mut impl Write) -> Result<(), CrdsError> {
    for crd in opstack_crds::all_crds() {
        writeln!(out, "---")?;
        out.write_all(to_yaml(&crd)?.as_bytes())?;
    }
    Ok(())
}

/// Writes one file per CRD into `dir` (the regeneration command behind `crds --write`).
pub fn write_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, CrdsError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for crd in opstack_crds::all_crds() {
        let path = dir.join(file_name(&crd));
        std::fs::write(&path, to_yaml(&crd)?)?;
        written.push(path);
    }
    Ok(written)
}
