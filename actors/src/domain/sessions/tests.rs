//! Unit tests of refresh tokens.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;

#[test]
fn refresh_tokens_parse_back_to_their_session() {
    let context = Context::system();
    let session_id = Uuid::new_v4();
    let (text, hash) = RefreshToken::mint(&context, session_id);
    let parsed = RefreshToken::parse(&text).unwrap();
    assert_eq!(parsed.session_id, session_id);
    assert_eq!(parsed.hash, hash);
    for bad in [
        "grt_",
        "grt_abc.def",
        "xyz_0000",
        &text.replace("grt_", "grx_"),
    ] {
        assert!(matches!(
            RefreshToken::parse(bad),
            Err(DomainError::InvalidRefreshToken)
        ));
    }
    assert!(matches!(
        RefreshToken::parse(""),
        Err(DomainError::InvalidArgument { .. })
    ));
}
