//! Regular expressions written for Go's RE2 (`regexp` package), compiled with the
//! `regex` crate. The two syntaxes agree except for a few forms; this module translates
//! the ones Serf users meet in tag and name filters: `\Q...\E` literal text.

/// Largest compiled program accepted (bytes). Filters arrive in queries from any peer, so
/// an expression like `((((a{100}){100}){100}){10})` must be refused before it costs
/// megabytes and tenths of a second (the `regex` crate's default limit is 10 MiB); Go's
/// parser refuses it outright as too large. Real tag and node filters need a few KiB.
pub const SIZE_LIMIT: usize = 256 * 1024;

/// Compiles a Go regular expression, within [`SIZE_LIMIT`].
pub fn compile(expr: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&translate(expr))
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
}

/// Rewrites Go-only syntax into the `regex` crate's: `\Q...\E` (to the end of the
/// expression when `\E` is missing) becomes the escaped literal.
pub fn translate(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('Q') => {
                let lit = &after[1..];
                let (text, next) = match lit.find("\\E") {
                    Some(e) => (&lit[..e], &lit[e + 2..]),
                    None => (lit, ""),
                };
                out.push_str(&regex::escape(text));
                rest = next;
            }
            Some(c) => {
                out.push('\\');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('\\');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_programs_are_refused() {
        assert!(compile("((((a{100}){100}){100}){10})").is_err());
        assert!(compile("^(a{100}){100}$").is_err());
        for ok in ["^web$", "^(web|db)-[0-9]+$", "^.*$", "a{100}", r"^\Qa.b\E$"] {
            assert!(compile(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn quoted_literals() {
        assert_eq!(translate(r"\Qa.b\E"), r"a\.b");
        assert_eq!(translate(r"x\Q*+\Ey"), r"x\*\+y");
        assert_eq!(translate(r"\Qopen"), "open");
        assert_eq!(translate(r"a\\Qb"), r"a\\Qb");
        assert_eq!(translate(r"\d+"), r"\d+");
        assert_eq!(translate("tail\\"), "tail\\");
        assert!(compile(r"^\Qn1\E$").unwrap().is_match("n1"));
        assert!(!compile(r"^\Qn.\E$").unwrap().is_match("n1"));
    }
}
