//! The Gatehouse wire contract: the `gatehouse.v1` gRPC API, its stable error codes, the
//! metadata keys callers send, and an async Rust SDK for talking to a node.

#[cfg(feature = "grpc")]
pub mod codec;
pub mod error_code;
pub mod metadata;
#[cfg(feature = "grpc")]
pub mod sdk;
#[cfg(feature = "grpc")]
pub mod status;

pub use error_code::{ERROR_DOMAIN, ErrorCode, FIELD_METADATA_KEY, UnknownErrorCode};
#[cfg(feature = "grpc")]
pub use status::{ApiError, error_status, error_status_with};

/// Generated prost messages and tonic clients and servers for package `gatehouse.v1`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::large_futures
)]
#[cfg(feature = "grpc")]
pub mod v1 {
    tonic::include_proto!("gatehouse.v1");
}

/// Generated code of the node-to-node service, package `gatehouse.internal.v1`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::large_futures
)]
#[cfg(feature = "grpc")]
pub mod internal {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("gatehouse.internal.v1");
    }
}

/// Encoded `FileDescriptorSet` of every `gatehouse.v1` file and its imports, for gRPC reflection.
#[cfg(feature = "grpc")]
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gatehouse_descriptor.bin"));

#[cfg(all(test, feature = "grpc"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use prost::Message as _;

    #[test]
    fn descriptor_set_holds_every_service_and_its_imports() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<_> = set
            .file
            .iter()
            .flat_map(|file| file.service.iter().map(|service| service.name()))
            .collect();
        for name in ["Auth", "Users", "Sessions", "Tenants"] {
            assert!(services.contains(&name), "{name} missing from {services:?}");
        }
        assert!(
            set.file
                .iter()
                .any(|file| file.name() == "google/protobuf/timestamp.proto")
        );
    }

    #[test]
    fn descriptor_set_serves_reflection() {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(super::FILE_DESCRIPTOR_SET)
            .build_v1()
            .unwrap();
    }
}
