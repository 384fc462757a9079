//! `opstack-operator genesis unpack`: writes a gzip-compressed L2 genesis out as plain JSON.
//!
//! A chain's genesis (op-deployer's output) is about 10 MB, ten times what a ConfigMap may
//! hold, and compresses to a few hundred KB. The bundled OpNode renderer runs this, from the
//! operator's own image (static, no shell), as the pod's first init container when the network's
//! `l2Genesis.configMapRef.key` ends in `.gz`, so the execution client finds `genesis.json` where
//! it always does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Options of `genesis unpack`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnpackArgs {
    /// The gzip-compressed genesis.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Where to write the genesis JSON (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Refuse to write more than this many bytes (a bound on a decompression bomb).
    #[arg(long, default_value_t = 1 << 30)]
    pub max_bytes: u64,
}

/// Why unpacking failed.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not gzip-compressed data ({source}); gzip the genesis before putting it in the ConfigMap, or name a key without .gz for a plain one"
    )]
    NotGzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: decompresses to more than {limit} bytes; raise --max-bytes if the genesis is really that large"
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: the decompressed genesis is not a JSON object ({detail})")]
    NotJson { path: PathBuf, detail: String },
}

/// Decompresses `from` into `to`, after checking it is a JSON object.
pub fn unpack(args: &UnpackArgs) -> Result<u64, GenesisError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| GenesisError::Io { path, source }
    };
    let file = std::fs::File::open(&args.from).map_err(io(&args.from))?;
    let mut json = Vec::new();
    GzDecoder::new(file)
        .take(args.max_bytes + 1)
        .read_to_end(&mut json)
        // The file opened: a read that fails now is the gzip stream's (a bad header, a corrupt
        // or truncated body), not the disk's.
        .map_err(|source| GenesisError::NotGzip {
            path: args.from.clone(),
            source,
        })?;
    if json.len() as u64 > args.max_bytes {
        return Err(GenesisError::TooLarge {
            path: args.from.clone(),
            limit: args.max_bytes,
        });
    }
    match serde_json::from_slice::<serde_json::Value>(&json) {
        Ok(value) if value.is_object() => {}
        Ok(_) => {
            return Err(GenesisError::NotJson {
                path: args.from.clone(),
                detail: "a JSON value other than an object".into(),
            });
        }
        Err(error) => {
            return Err(GenesisError::NotJson {
                path: args.from.clone(),
                detail: error.to_string(),
            });
        }
    }
    let partial = args.to.with_extension("partial");
    let mut out = std::fs::File::create(&partial).map_err(io(&partial))?;
    out.write_all(&json).map_err(io(&partial))?;
    out.sync_all().map_err(io(&partial))?;
    std::fs::rename(&partial, &args.to).map_err(io(&args.to))?;
    Ok(json.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("genesis-unpack-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzipped_genesis_is_written_out_as_the_same_json() {
        let dir = dir("ok");
        let genesis = br#"{"config":{"chainId":777},"alloc":{}}"#;
        std::fs::write(dir.join("genesis.json.gz"), gzip(genesis)).unwrap();
        let args = UnpackArgs {
            from: dir.join("genesis.json.gz"),
            to: dir.join("genesis.json"),
            max_bytes: 1 << 20,
        };
        assert_eq!(unpack(&args).unwrap(), genesis.len() as u64);
        assert_eq!(std::fs::read(dir.join("genesis.json")).unwrap(), genesis);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn plain_json_a_bomb_and_a_non_object_are_refused_with_the_fix() {
        let dir = dir("bad");
        let args = |from: &str| UnpackArgs {
            from: dir.join(from),
            to: dir.join("out.json"),
            max_bytes: 64,
        };
        std::fs::write(dir.join("plain.gz"), b"{}").unwrap();
        let error = unpack(&args("plain.gz")).unwrap_err();
        assert!(error.to_string().contains("not gzip-compressed"), "{error}");
        std::fs::write(dir.join("big.gz"), gzip(&[b' '; 1000])).unwrap();
        assert!(matches!(
            unpack(&args("big.gz")),
            Err(GenesisError::TooLarge { .. })
        ));
        std::fs::write(dir.join("list.gz"), gzip(b"[1]")).unwrap();
        assert!(matches!(
            unpack(&args("list.gz")),
            Err(GenesisError::NotJson { .. })
        ));
        assert!(
            !dir.join("out.json").exists(),
            "nothing is written on a refusal"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
