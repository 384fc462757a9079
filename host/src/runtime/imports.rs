//! The import allow-list, checked when a plugin is loaded.
//!
//! A Rust `wasm32-wasip2` guest imports WASI cli/io even when it never uses them (std's panic
//! and abort paths). Those are linked to an empty, deterministic context. Everything that could
//! reach the outside world or the passage of time is refused before the plugin is compiled
//! into the cache of usable plugins.

use super::Error;

/// Interfaces a plugin may import, as `namespace:package/interface`, any `0.2.x` version.
///
/// Clocks are deliberately absent: a plugin has no use for time (rendering must be
/// deterministic), and `monotonic-clock.subscribe-*` would let a guest block inside the host,
/// where the epoch deadline cannot interrupt it. Randomness is allowed because the context
/// feeds it a constant sequence: std's `HashMap` needs `insecure-seed`.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:random/insecure-seed",
    "wasi:random/insecure",
    "wasi:random/random",
    // Types-only interface of the contract itself; carries no functions.
    "opstack:plugin/types",
];

/// The WASI version line the host links (wasmtime-wasi 48 implements 0.2.x).
const WASI_VERSION_PREFIX: &str = "0.2.";

/// The top-level imports of a component binary, read without compiling it: nothing of an
/// uploaded plugin reaches Cranelift before its imports are known to be allowed. Imports of
/// nested modules and components are the component's own business (they are satisfied
/// inside it or by its top-level imports), and so are imports of a type equal to one the
/// component already has (how a world names the contract's types): neither reaches the host.
pub fn component_imports(wasm: &[u8]) -> Result<Vec<String>, Error> {
    use wasmparser::{ComponentTypeRef, Parser, Payload, TypeBounds};
    let invalid = |e: wasmparser::BinaryReaderError| Error::InvalidModule {
        message: format!("reading the component's imports: {e}"),
    };
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(invalid)?;
                    if !matches!(import.ty, ComponentTypeRef::Type(TypeBounds::Eq(_))) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Refuses the component if any import is not on the allow-list, naming all of them.
pub fn check_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
    let forbidden: Vec<&str> = imports.into_iter().filter(|i| !is_allowed(i)).collect();
    if forbidden.is_empty() {
        Ok(())
    } else {
        Err(Error::ForbiddenImport {
            import: forbidden.join(", "),
        })
    }
}

fn is_allowed(import: &str) -> bool {
    let (name, version) = match import.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (import, None),
    };
    if !ALLOWED_IMPORTS.contains(&name) {
        return false;
    }
    if name.starts_with("opstack:") {
        // The contract's own version is checked through `info`, with a clearer error.
        return true;
    }
    version.is_some_and(|v| v.starts_with(WASI_VERSION_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_guest_imports_are_allowed() {
        let std_guest = [
            "wasi:io/poll@0.2.6",
            "wasi:io/error@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:cli/environment@0.2.6",
            "wasi:cli/exit@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:cli/terminal-stderr@0.2.6",
            "wasi:random/insecure-seed@0.2.6",
        ];
        assert_eq!(check_imports(std_guest), Ok(()));
    }

    #[test]
    fn filesystem_sockets_clocks_and_unknown_imports_are_forbidden() {
        for import in [
            "wasi:filesystem/types@0.2.6",
            "wasi:filesystem/preopens@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/ip-name-lookup@0.2.6",
            "wasi:clocks/monotonic-clock@0.2.6",
            "wasi:clocks/wall-clock@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
            "evil:host/exec",
        ] {
            assert_eq!(
                check_imports([import]),
                Err(Error::ForbiddenImport {
                    import: import.to_owned()
                }),
                "{import}"
            );
        }
    }

    #[test]
    fn wasi_imports_of_another_version_line_are_forbidden() {
        assert!(check_imports(["wasi:cli/stderr@0.3.0"]).is_err());
        assert!(check_imports(["wasi:cli/stderr"]).is_err());
    }
}
