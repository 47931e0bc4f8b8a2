//! The one glob dialect of the configuration (routing rules, policy lists,
//! audit environments): `*` matches any run of characters, everything else
//! matches itself. Compiled once; matching allocates nothing.

/// A compiled glob: `*` matches any run of characters (including `/` and `.`),
/// everything else matches itself. Case-sensitive, like MCP method names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    /// `*`: anything.
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `prefix*`.
    Prefix(Box<str>),
    /// `*suffix`.
    Suffix(Box<str>),
    /// Several `*`: literal pieces that must appear in order.
    Pieces(Box<[Box<str>]>, bool, bool),
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Glob {
        let stars = pattern.matches('*').count();
        if pattern == "*" || (stars > 0 && pattern.chars().all(|c| c == '*')) {
            return Glob::Any;
        }
        match stars {
            0 => Glob::Exact(pattern.into()),
            1 if pattern.ends_with('*') => Glob::Prefix(pattern.trim_end_matches('*').into()),
            1 if pattern.starts_with('*') => Glob::Suffix(pattern.trim_start_matches('*').into()),
            _ => Glob::Pieces(
                pattern
                    .split('*')
                    .filter(|p| !p.is_empty())
                    .map(Into::into)
                    .collect(),
                pattern.starts_with('*'),
                pattern.ends_with('*'),
            ),
        }
    }

    /// Whether the pattern is exactly `s`, with no wildcard.
    pub fn is_exact(&self, s: &str) -> bool {
        matches!(self, Glob::Exact(e) if **e == *s)
    }

    /// Whether some string that starts with `prefix` matches (federation:
    /// could a member's names, all under one prefix, be allowed at all).
    pub fn may_match_prefix(&self, prefix: &str) -> bool {
        let compatible = |lit: &str| lit.starts_with(prefix) || prefix.starts_with(lit);
        match self {
            Glob::Any | Glob::Suffix(_) => true,
            Glob::Exact(e) => e.starts_with(prefix),
            Glob::Prefix(p) => compatible(p),
            Glob::Pieces(pieces, open_start, _) => {
                *open_start || pieces.first().is_none_or(|p| compatible(p))
            }
        }
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(e) => s == &**e,
            Glob::Prefix(p) => s.starts_with(&**p),
            Glob::Suffix(p) => s.ends_with(&**p),
            Glob::Pieces(pieces, open_start, open_end) => {
                let mut rest = s;
                for (i, piece) in pieces.iter().enumerate() {
                    let last = i + 1 == pieces.len();
                    if i == 0 && !open_start {
                        match rest.strip_prefix(&**piece) {
                            Some(r) => rest = r,
                            None => return false,
                        }
                    } else if last && !open_end {
                        return rest.len() >= piece.len() && rest.ends_with(&**piece);
                    } else {
                        match rest.find(&**piece) {
                            Some(at) => rest = &rest[at + piece.len()..],
                            None => return false,
                        }
                    }
                }
                true
            }
        }
    }
}

/// The pattern as written (`*` where the wildcards were).
impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Glob::Any => f.write_str("*"),
            Glob::Exact(s) => f.write_str(s),
            Glob::Prefix(p) => write!(f, "{p}*"),
            Glob::Suffix(s) => write!(f, "*{s}"),
            Glob::Pieces(p, start, end) => write!(
                f,
                "{}{}{}",
                if *start { "*" } else { "" },
                p.join("*"),
                if *end { "*" } else { "" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything/at.all", true),
            ("tools/call", "tools/call", true),
            ("tools/call", "tools/callx", false),
            ("tools/*", "tools/list", true),
            ("tools/*", "prompts/list", false),
            ("*.search", "web.search", true),
            ("*.search", "web.searcher", false),
            ("math.*.v*", "math.add.v2", true),
            ("math.*.v*", "math.add.x2", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a*a", "a", false),
            ("file:///public/*", "file:///public/x/y", true),
            ("**", "", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(Glob::new(p).matches(s), want, "{p} ~ {s}");
        }
    }

    #[test]
    fn prefixes_a_glob_could_match() {
        let cases = [
            ("*", "py__", true),
            ("py__*", "py__", true),
            ("py__add", "py__", true),
            ("py*", "py__", true),
            ("ev__*", "py__", false),
            ("add", "py__", false),
            ("*add", "py__", true),
            ("p*__x*", "py__", true),
            ("ev*x*", "py__", false),
        ];
        for (p, prefix, want) in cases {
            assert_eq!(
                Glob::new(p).may_match_prefix(prefix),
                want,
                "{p} ~ {prefix}"
            );
        }
    }
}
