//! `?return_to=`: where a sign-in sends the browser next. Only a path of the node's own
//! origin is kept; anything else is ignored, so the pages never redirect off-site.

use url::Url;

/// Longest `return_to` kept.
const MAX_LEN: usize = 2048;

/// `candidate` when it is a path of `public_url`'s origin: one leading `/` (not `//`), no
/// backslash (browsers read `/\host` as `//host`), no control characters or spaces, and
/// still on the same origin once resolved by a URL parser. `None` otherwise.
pub fn same_origin_path(public_url: &str, candidate: &str) -> Option<String> {
    if candidate.is_empty()
        || candidate.len() > MAX_LEN
        || !candidate.starts_with('/')
        || candidate.starts_with("//")
        || candidate.contains('\\')
        || candidate
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let base = Url::parse(public_url).ok()?;
    let resolved = base.join(candidate).ok()?;
    (resolved.origin() == base.origin()).then(|| candidate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "https://auth.example.com";

    #[test]
    fn paths_of_the_own_origin_are_kept() {
        for path in [
            "/t/acme/handler/account",
            "/app?tab=billing#top",
            "/",
            "/a/../b",
        ] {
            assert_eq!(
                same_origin_path(NODE, path).as_deref(),
                Some(path),
                "{path}"
            );
        }
    }

    #[test]
    fn anything_that_could_leave_the_origin_is_ignored() {
        for candidate in [
            "",
            "//evil.example",
            "//evil.example/path",
            "https://evil.example",
            "http://auth.example.com/t/acme",
            "javascript:alert(1)",
            "/\\evil.example",
            "\\\\evil.example",
            "/\tevil",
            " /t/acme",
            "/t/acme\r\nSet-Cookie: x=y",
            "evil.example",
            "relative/path",
        ] {
            assert_eq!(same_origin_path(NODE, candidate), None, "{candidate:?}");
        }
        assert_eq!(
            same_origin_path(NODE, &format!("/{}", "a".repeat(3000))),
            None
        );
        assert_eq!(same_origin_path("not a url", "/t/acme"), None);
    }
}
