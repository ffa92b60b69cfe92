//! Text matching: `$icontains` and `$like`/`$ilike` patterns.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeToken {
    /// `%`: any sequence of characters.
    Any,
    /// `_`: exactly one character.
    One,
    /// A literal character.
    Lit(char),
}

/// Substring search with ASCII-only case folding (bytes ≥ 0x80 are compared
/// as they are, so `É` never matches `é`).
pub(super) fn icontains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// A compiled LIKE pattern. Patterns that are a literal, `lit%`, `%lit` or
/// `%lit%` are matched directly; the rest by [`like_match`].
#[derive(Debug, Clone)]
pub(super) struct LikePattern {
    tokens: Vec<LikeToken>,
    fold: bool,
    shape: LikeShape,
}

#[derive(Debug, Clone)]
enum LikeShape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General,
}

impl LikePattern {
    pub(super) fn new(pattern: &str, fold: bool) -> Self {
        let tokens = parse_like(pattern);
        let literal = |range: Option<&[LikeToken]>| -> Option<String> {
            range?
                .iter()
                .map(|t| match t {
                    LikeToken::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        let n = tokens.len();
        let starts = tokens.first() == Some(&LikeToken::Any);
        let ends = n > 1 && tokens.last() == Some(&LikeToken::Any);
        let shape = match (starts, ends) {
            (false, false) => literal(Some(&tokens)).map(LikeShape::Exact),
            (false, true) => literal(tokens.get(..n - 1)).map(LikeShape::Prefix),
            (true, false) if n == 1 => Some(LikeShape::Contains(String::new())),
            (true, false) => literal(tokens.get(1..)).map(LikeShape::Suffix),
            (true, true) => literal(tokens.get(1..n - 1)).map(LikeShape::Contains),
        };
        Self {
            shape: shape.unwrap_or(LikeShape::General),
            tokens,
            fold,
        }
    }

    pub(super) fn matches(&self, s: &str) -> bool {
        // ASCII folding on bytes is exact for UTF-8: bytes ≥ 0x80 compare as
        // they are, and a match can only start on a character boundary.
        let eq = |a: Option<&[u8]>, b: &str| {
            a.is_some_and(|a| {
                if self.fold {
                    a.eq_ignore_ascii_case(b.as_bytes())
                } else {
                    a == b.as_bytes()
                }
            })
        };
        let bytes = s.as_bytes();
        match &self.shape {
            LikeShape::Exact(p) => eq(Some(bytes), p),
            LikeShape::Prefix(p) => eq(bytes.get(..p.len()), p),
            LikeShape::Suffix(p) => eq(
                bytes
                    .len()
                    .checked_sub(p.len())
                    .and_then(|i| bytes.get(i..)),
                p,
            ),
            LikeShape::Contains(p) if self.fold => icontains(s, p),
            LikeShape::Contains(p) => s.contains(p.as_str()),
            LikeShape::General => like_match(&self.tokens, s, self.fold),
        }
    }
}

/// Parses a LIKE pattern: `%` any sequence, `_` one character, backslash
/// escapes the next character (a trailing backslash is literal).
fn parse_like(pattern: &str) -> Vec<LikeToken> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let token = match c {
            '%' => {
                // Consecutive `%` are one.
                if out.last() == Some(&LikeToken::Any) {
                    continue;
                }
                LikeToken::Any
            }
            '_' => LikeToken::One,
            '\\' => LikeToken::Lit(chars.next().unwrap_or('\\')),
            c => LikeToken::Lit(c),
        };
        out.push(token);
    }
    out
}

/// Whole-string LIKE matching, iterative (the classic two-pointer wildcard
/// algorithm: O(len(text) × len(pattern)) in the worst case, no recursion).
fn like_match(pattern: &[LikeToken], text: &str, fold: bool) -> bool {
    let eq = |p: char, c: char| {
        if fold {
            p.eq_ignore_ascii_case(&c)
        } else {
            p == c
        }
    };
    let mut p = 0_usize; // token index
    let mut i = 0_usize; // byte index in text
    // After the last `%`: (token index after it, text index it currently absorbs up to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            // Text exhausted: the rest of the pattern must be `%` only.
            return pattern
                .get(p..)
                .is_none_or(|rest| rest.iter().all(|t| *t == LikeToken::Any));
        };
        match pattern.get(p) {
            Some(LikeToken::Any) => {
                p += 1;
                star = Some((p, i));
                continue;
            }
            Some(LikeToken::One) => {
                p += 1;
                i += c.len_utf8();
                continue;
            }
            Some(LikeToken::Lit(l)) if eq(*l, c) => {
                p += 1;
                i += c.len_utf8();
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `%` absorb one more character.
        let Some((sp, si)) = star else {
            return false;
        };
        let Some(absorbed) = text.get(si..).and_then(|rest| rest.chars().next()) else {
            return false;
        };
        let next = si + absorbed.len_utf8();
        star = Some((sp, next));
        p = sp;
        i = next;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "like_tests.rs"]
mod tests;
