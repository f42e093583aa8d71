//! The protobuf codec of every generated service: prost encoding, but a request that fails
//! to decode (invalid UTF-8 in a string field, truncated bytes) is answered with
//! `INVALID_ARGUMENT` naming the field, instead of tonic's default `INTERNAL`.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

use crate::{ErrorCode, error_status};

/// Prost-based codec with client-error mapping for undecodable messages.
#[derive(Debug, Clone)]
pub struct GatehouseCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for GatehouseCodec<T, U> {
    fn default() -> Self {
        GatehouseCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for GatehouseCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = GatehouseDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        GatehouseDecoder { _type: PhantomData }
    }
}

/// Decodes `U`, mapping malformed input to `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct GatehouseDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for GatehouseDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| decode_error_status(&error))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// `INVALID_ARGUMENT` for a message that does not decode, naming the field when prost does.
pub fn decode_error_status(error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let detail = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    // prost reports the innermost field path first, as `Message.field: reason`.
    let field = detail
        .split(": ")
        .next()
        .filter(|path| path.contains('.') && !path.contains(' '))
        .and_then(|path| path.rsplit('.').next());
    error_status(
        ErrorCode::InvalidArgument,
        format!("request is not a valid protobuf message: {detail}"),
        field,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ApiError;
    use crate::v1::SignInWithPasswordRequest;

    #[test]
    fn invalid_utf8_in_a_string_field_is_invalid_argument_naming_the_field() {
        // Field 1 (email), wire type 2 (length-delimited), 2 bytes that are not UTF-8.
        let bytes = [0x0a, 0x02, 0xff, 0xfe];
        let error = SignInWithPasswordRequest::decode(&bytes[..]).unwrap_err();
        let api_error = ApiError::from_status(&decode_error_status(&error));
        assert_eq!(api_error.code, ErrorCode::InvalidArgument);
        assert_eq!(api_error.field.as_deref(), Some("email"));
    }

    #[test]
    fn truncated_message_is_invalid_argument() {
        let bytes = [0x0a, 0x10, b'a'];
        let error = SignInWithPasswordRequest::decode(&bytes[..]).unwrap_err();
        let api_error = ApiError::from_status(&decode_error_status(&error));
        assert_eq!(api_error.code, ErrorCode::InvalidArgument);
    }
}
