//! Compiles every `.proto` under `proto/` with protox (no system `protoc`), writes the encoded
//! descriptor set for gRPC reflection, and generates prost messages plus tonic clients and
//! servers from that same descriptor set.

use std::path::{Path, PathBuf};

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    // Without the `grpc` feature the crate is only error codes and metadata names.
    if std::env::var_os("CARGO_FEATURE_GRPC").is_none() {
        return Ok(());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut files = Vec::new();
    find_protos(Path::new(PROTO_ROOT), &mut files)?;
    files.sort();

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    // Imports (google/protobuf/timestamp.proto) stay in the set so reflection clients can
    // resolve every type; source info carries the proto comments into the generated docs.
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;

    std::fs::write(
        out_dir.join("gatehouse_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    // What public reflection shows: everything but the node-to-node service.
    let internal = Path::new(PROTO_ROOT).join("gatehouse").join("internal");
    let public: Vec<&PathBuf> = files
        .iter()
        .filter(|path| !path.starts_with(&internal))
        .collect();
    let mut public_compiler = protox::Compiler::new([PROTO_ROOT])?;
    public_compiler
        .include_imports(true)
        .include_source_info(true);
    public_compiler.open_files(public)?;
    std::fs::write(
        out_dir.join("gatehouse_public_descriptor.bin"),
        public_compiler.encode_file_descriptor_set(),
    )?;

    // Well-known types map to prost-types, so only `gatehouse.v1.rs` is generated.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::GatehouseCodec")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

fn find_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
