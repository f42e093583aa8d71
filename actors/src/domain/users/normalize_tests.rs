//! Email normalisation: NFC, IDNA domains, lower case that never maps onto ASCII, hidden
//! characters refused, and addresses stored before under their old keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::normalize::legacy_keys;
use super::{Email, NewUser, parse_email, validate_user_display_name};
use crate::domain::keyspace;
use crate::domain::test_world::TestWorld;
use crate::domain::users;
use crate::error::DomainError;

fn refused(raw: &str) -> bool {
    matches!(
        parse_email(raw),
        Err(DomainError::InvalidArgument { field: "email", .. })
    )
}

#[test]
fn an_ascii_address_is_normalised_as_before() {
    let email = parse_email("  Alice@Example.COM ").unwrap();
    assert_eq!(email.display, "Alice@Example.COM");
    assert_eq!(email.normalized, "alice@example.com");
    assert_eq!(
        parse_email("o'brien+tag@sub.example.org")
            .unwrap()
            .normalized,
        "o'brien+tag@sub.example.org"
    );
    for bad in [
        "",
        "   ",
        "no-at-sign",
        "a@",
        "@b.c",
        "a\u{0}b@c.d",
        "a\nb@c.d",
    ] {
        assert!(refused(bad), "{bad:?}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert!(parse_email(&long).is_err());
    assert!(legacy_keys("alice@example.com").is_empty());
}

#[test]
fn the_kelvin_sign_is_the_ascii_letter() {
    let kelvin = parse_email("\u{212A}elvin@example.com").unwrap();
    let ascii = parse_email("kelvin@example.com").unwrap();
    assert_eq!(kelvin.normalized, ascii.normalized);
    assert_eq!(
        kelvin.display, "Kelvin@example.com",
        "the address mail goes to"
    );
}

#[test]
fn composed_and_decomposed_forms_are_one_address() {
    let composed = parse_email("jos\u{e9}@example.com").unwrap();
    let decomposed = parse_email("jose\u{301}@example.com").unwrap();
    assert_eq!(composed.normalized, decomposed.normalized);
    assert_eq!(decomposed.display, "jos\u{e9}@example.com");
    assert_eq!(
        parse_email("JOS\u{c9}@example.com").unwrap().normalized,
        composed.normalized
    );
}

#[test]
fn an_internationalised_domain_is_keyed_by_its_ascii_form() {
    let unicode = parse_email("ada@b\u{fc}cher.example").unwrap();
    let ascii = parse_email("ada@xn--bcher-kva.example").unwrap();
    assert_eq!(unicode.normalized, "ada@xn--bcher-kva.example");
    assert_eq!(ascii.normalized, unicode.normalized);
    assert_eq!(unicode.display, "ada@xn--bcher-kva.example");
    assert_eq!(
        parse_email("Ada@BU\u{308}CHER.example").unwrap().normalized,
        unicode.normalized
    );
}

#[test]
fn non_ascii_characters_that_stand_for_ascii_ones_are_refused() {
    for lookalike in [
        "\u{ff41}da@example.com", // fullwidth a
        "\u{fb01}le@example.com", // fi ligature
        "\u{130}stanbul@example.com",
        "\u{1d41a}da@example.com", // mathematical bold a
        "\u{aa}da@example.com",    // feminine ordinal
    ] {
        assert!(refused(lookalike), "{lookalike:?}");
    }
    // Non-ASCII letters with no ASCII form are addresses of their own.
    assert!(parse_email("\u{3b1}\u{3b2}@example.com").is_ok());
    assert!(parse_email("\u{65e5}\u{672c}@example.com").is_ok());
}

#[test]
fn invisible_and_bidi_characters_are_refused_in_emails_and_names() {
    for hidden in [
        "ada\u{200b}@example.com",
        "\u{feff}ada@example.com",
        "ada\u{200d}@example.com",
        "ad\u{202e}a@example.com",
        "ada@exa\u{2066}mple.com",
        "ada\u{200f}@example.com",
        "ada\u{ad}@example.com",
    ] {
        assert!(refused(hidden), "{hidden:?}");
    }
    for hidden in [
        "Ada\u{202e}ecalevoL",
        "Ada\u{200b}",
        "\u{feff}Ada",
        "Ada\u{2067}x\u{2069}",
        "Ada\u{200e}",
    ] {
        assert!(
            matches!(
                validate_user_display_name(hidden),
                Err(DomainError::InvalidArgument {
                    field: "display_name",
                    ..
                })
            ),
            "{hidden:?}"
        );
    }
    assert!(validate_user_display_name("Jos\u{e9} \u{dc}nal").is_ok());
}

#[test]
fn legacy_keys_cover_the_old_lower_case_of_either_form() {
    let keys = legacy_keys("jos\u{e9}@xn--bcher-kva.example");
    for old in [
        "jos\u{e9}@b\u{fc}cher.example",
        "jose\u{301}@b\u{fc}cher.example",
        "jose\u{301}@xn--bcher-kva.example",
        "jose\u{301}@bu\u{308}cher.example",
    ] {
        assert!(keys.iter().any(|key| key == old), "{old:?} in {keys:?}");
    }
}

/// A user written the way addresses were keyed before: the raw input lower-cased.
async fn legacy_user(world: &TestWorld, raw: &str) -> users::UserRecord {
    let email = Email {
        display: raw.to_owned(),
        normalized: raw.to_lowercase(),
    };
    let context = &world.context;
    world
        .db
        .run(|tx| {
            let new_user = NewUser {
                email: email.clone(),
                display_name: String::new(),
                password_hash: None,
                email_verified: true,
            };
            async move { users::create_user(&tx, context, "acme", new_user).await }
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_stored_under_its_old_key_is_found_and_stays_unique() {
    let world = TestWorld::new().await;
    let stored = legacy_user(&world, "Jose\u{301}@B\u{fc}cher.example").await;
    let typed = parse_email("jos\u{e9}@b\u{fc}cher.example").unwrap();
    let normalized = typed.normalized.clone();
    let normalized_ref = normalized.as_str();
    let found = world
        .db
        .run(|tx| async move { users::find_user_by_email(&tx, "acme", normalized_ref).await })
        .await
        .unwrap()
        .expect("the stored address is found by its new form");
    assert_eq!(found.user_id, stored.user_id);
    assert_eq!(found.email_normalized, normalized);
    assert_eq!(
        found.email, "Jose\u{301}@B\u{fc}cher.example",
        "mail goes where it went"
    );
    let (old_key, new_key) = (
        keyspace::email_index("acme", &stored.email_normalized),
        keyspace::email_index("acme", &normalized),
    );
    let (old_key, new_key) = (&old_key, &new_key);
    let (old, new) =
        world
            .db
            .run(|tx| async move {
                Ok::<_, DomainError>((tx.get(old_key).await?, tx.get(new_key).await?))
            })
            .await
            .unwrap();
    assert!(old.is_none(), "the old key moved");
    assert_eq!(new.as_deref(), Some(stored.user_id.as_bytes().as_slice()));

    // A second stored address is adopted by a sign-up's uniqueness check too.
    legacy_user(&world, "\u{e5}sa@example.com").await;
    let context = &world.context;
    let taken = world
        .db
        .run(|tx| async move {
            let new_user = NewUser {
                email: parse_email("a\u{30a}sa@example.com").unwrap(),
                display_name: String::new(),
                password_hash: None,
                email_verified: false,
            };
            users::create_user(&tx, context, "acme", new_user).await
        })
        .await;
    assert!(matches!(taken, Err(DomainError::UserEmailAlreadyExists)));
}
