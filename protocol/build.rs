//! Generate Rust messages and ttrpc bindings from `protos/*.proto` (pure Rust: no protoc).

use std::io;
use std::path::Path;

const PROTOS: &[&str] = &["health", "agent"];

fn main() -> io::Result<()> {
    let out = std::env::var("OUT_DIR").map_err(io::Error::other)?;
    let inputs: Vec<String> = PROTOS.iter().map(|p| format!("protos/{p}.proto")).collect();
    for p in &inputs {
        println!("cargo:rerun-if-changed={p}");
    }
    ttrpc_codegen::Codegen::new()
        .out_dir(&out)
        .inputs(&inputs)
        .include("protos")
        .rust_protobuf()
        .customize(ttrpc_codegen::Customize {
            gen_mod: false,
            ..Default::default()
        })
        .rust_protobuf_customize(ttrpc_codegen::ProtobufCustomize::default().gen_mod_rs(false))
        .run()?;
    // The generated files open with inner attributes and doc comments (`#![...]`, `//!`),
    // which `include!` cannot take: drop them; lib.rs puts the allows on each module.
    for name in PROTOS {
        for file in [format!("{name}.rs"), format!("{name}_ttrpc.rs")] {
            let path = Path::new(&out).join(file);
            let text = std::fs::read_to_string(&path)?;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with("#![") && !l.starts_with("//!"))
                .collect();
            std::fs::write(&path, kept.join("\n"))?;
        }
    }
    Ok(())
}
