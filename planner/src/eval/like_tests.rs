//! Unit tests of `like.rs`.

use super::*;

/// Matches with the compiled pattern, after checking that the general
/// matcher agrees with the fast paths.
fn like_with(p: &str, s: &str, fold: bool) -> bool {
    let fast = LikePattern::new(p, fold).matches(s);
    assert_eq!(fast, like_match(&parse_like(p), s, fold), "{p:?} on {s:?}");
    fast
}

fn like(p: &str, s: &str) -> bool {
    like_with(p, s, false)
}

fn ilike(p: &str, s: &str) -> bool {
    like_with(p, s, true)
}

#[test]
fn like_wildcards() {
    assert!(like("a%", "abc"));
    assert!(like("%c", "abc"));
    assert!(like("%b%", "abc"));
    assert!(like("a_c", "abc"));
    assert!(!like("a_c", "abbc"));
    assert!(like("a%c", "abbbc"));
    assert!(like("%", ""));
    assert!(!like("_", ""));
    assert!(like("", ""));
    assert!(!like("", "a"));
    assert!(!like("abc", "abcd"));
    assert!(!like("abc", "ab"));
    assert!(like("_é_", "aéb"));
    assert!(like("___", "日本語"));
    assert!(like("%a%b%c%", "xxaxxbxxcxx"));
    assert!(!like("%a%b%c%", "xxcxxbxxaxx"));
    assert!(!like("ABC", "abc"));
}

#[test]
fn like_escapes() {
    assert!(like("100\\%", "100%"));
    assert!(!like("100\\%", "1000"));
    assert!(like("a\\_b", "a_b"));
    assert!(!like("a\\_b", "axb"));
    assert!(like("a\\\\b", "a\\b"));
    assert!(like("a\\", "a\\"));
    assert!(like("\\x", "x"));
}

#[test]
fn like_fast_paths_agree_with_the_general_matcher() {
    for p in [
        "", "%", "%%", "abc", "ab%", "%bc", "%b%", "a%c", "a\\%", "%\\%%", "_", "%é", "É%",
    ] {
        for s in ["", "abc", "ABC", "ab%", "%", "xbx", "é", "É", "aé", "a%"] {
            like(p, s);
            ilike(p, s);
        }
    }
    assert!(LikePattern::new("ab%", false).matches("abz"));
    assert!(matches!(
        LikePattern::new("%ab%", true).shape,
        LikeShape::Contains(_)
    ));
    assert!(matches!(
        LikePattern::new("a_%", true).shape,
        LikeShape::General
    ));
}

#[test]
fn ilike_folds_ascii_only() {
    assert!(ilike("CAF%", "cafe"));
    assert!(!ilike("CAFÉ", "café"));
    assert!(ilike("caf_", "CAFÉ"));
}

#[test]
fn like_has_no_exponential_backtracking() {
    let text = "a".repeat(10_000);
    let pattern = format!("{}b", "%a".repeat(50));
    let start = std::time::Instant::now();
    assert!(!like(&pattern, &text));
    assert!(start.elapsed().as_secs() < 5);
}
