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

/// Encoded `FileDescriptorSet` of every file (the node-to-node service's included) and its
/// imports.
#[cfg(feature = "grpc")]
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gatehouse_descriptor.bin"));

/// Encoded `FileDescriptorSet` that public gRPC reflection serves: every `gatehouse.v1` file
/// and its imports, without the node-to-node service.
#[cfg(feature = "grpc")]
pub const PUBLIC_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gatehouse_public_descriptor.bin"));

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
            .register_encoded_file_descriptor_set(super::PUBLIC_FILE_DESCRIPTOR_SET)
            .build_v1()
            .unwrap();
    }

    #[test]
    fn the_public_set_is_the_whole_set_without_the_node_to_node_service() {
        let all = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let public =
            prost_types::FileDescriptorSet::decode(super::PUBLIC_FILE_DESCRIPTOR_SET).unwrap();
        let names = |set: &prost_types::FileDescriptorSet| {
            let mut names: Vec<String> =
                set.file.iter().map(|file| file.name().to_owned()).collect();
            names.sort();
            names
        };
        let mut expected = names(&all);
        expected.retain(|name| !name.starts_with("gatehouse/internal/"));
        assert!(
            expected.len() < all.file.len(),
            "the whole set has the internal service"
        );
        assert_eq!(names(&public), expected);
    }
}
