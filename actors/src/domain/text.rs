//! The characters no email, name or other identifier may hold: those that are invisible or
//! change how the text around them is shown, so that two names that look the same are not
//! told apart by them.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// What a refusal of such a character says.
pub const HIDDEN_CHARACTERS: &str =
    "must not contain control, invisible or bidirectional formatting characters";

/// Whether `c` is a control (Cc), a format character (Cf: zero-width space and joiners
/// U+200B–U+200D, the direction marks U+200E–U+200F, the bidi embeddings and overrides
/// U+202A–U+202E and isolates U+2066–U+2069, the BOM U+FEFF, the soft hyphen, tag
/// characters…) or a line or paragraph separator (U+2028, U+2029).
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Refuses `text` when it holds a character [`is_hidden`] names.
pub fn refuse_hidden(field: &'static str, text: &str) -> crate::error::DomainResult<()> {
    if text.chars().any(is_hidden) {
        return Err(crate::error::DomainError::invalid(field, HIDDEN_CHARACTERS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_bidi_characters_are_hidden() {
        for c in [
            '\u{0}',
            '\n',
            '\u{7f}',
            '\u{ad}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2028}',
            '\u{2029}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'Z', ' ', 'é', 'ß', 'Ω', '日', '😀', '-', '.'] {
            assert!(!is_hidden(c), "{c}");
        }
        assert!(refuse_hidden("name", "Ada Lovelace").is_ok());
        assert!(refuse_hidden("name", "Ada\u{202e}ecalevoL").is_err());
    }
}
