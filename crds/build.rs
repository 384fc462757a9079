//! Turns `releases.toml` (the release table, written for people: comments carry the sources)
//! into JSON at build time, so the API types parse it with serde_json, which every user of this
//! crate links anyway: a TOML parser in each WebAssembly plugin would cost it ~100 KB.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=releases.toml");
    let text = std::fs::read_to_string("releases.toml").expect("read crds/releases.toml");
    let table: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("crds/releases.toml: {e}"));
    let json = serde_json::to_string(&table).expect("TOML values serialise as JSON");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("releases.json"), json).expect("write releases.json");
}
