//! LCFG context expressions (`cfg:context`), evaluated the way lcfg-core does.
//!
//! A monitoring server has no LCFG contexts of its own, so [`priority`] evaluates an
//! expression with every context unset: an unset context has priority 1 and an empty
//! (false) value. A negative result means the alternative is inactive.
//!
//! Grammar: `a | b`, `a ^ b` and `a & b` at one precedence, associating to the left (as
//! lcfg-core does: `!a | b & c` is `(!a | b) & c`); then `!a`, `(a)`, `NAME`,
//! `NAME = VALUE`, `NAME != VALUE`. Values are bare `[A-Za-z0-9_]+` or quoted; in a
//! single-quoted value `''` is one quote. Only a bare `no`, `false` or `off` compares as
//! boolean false; a quoted one is a string. Nesting is limited to [`MAX_NESTING`].

use thiserror::Error;

/// An expression that does not follow the grammar above.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid context expression {expr:?}: {reason}")]
pub struct ContextError {
    /// The expression, as written.
    pub expr: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Priority of `expr` with no contexts set. Active when `>= 0`.
pub fn priority(expr: &str) -> Result<i32, ContextError> {
    let mut p = Parser {
        src: expr.as_bytes(),
        pos: 0,
        expr,
        depth: 0,
    };
    let value = p.or()?;
    p.skip_ws();
    if p.pos != p.src.len() {
        return Err(p.error("unexpected trailing text"));
    }
    Ok(value)
}

/// Combine a list's context priority with a child's own, as `(base) & (own)`.
pub fn and(a: i32, b: i32) -> i32 {
    if a > 0 && b > 0 { a.max(b) } else { a.min(b) }
}

fn or(a: i32, b: i32) -> i32 {
    if a < 0 && b < 0 { a.min(b) } else { a.max(b) }
}

fn xor(a: i32, b: i32) -> i32 {
    let m = a.abs().max(b.abs());
    if (a > 0) != (b > 0) { m } else { -m }
}

/// The value every context has on a monitoring server: unset, which reads as empty.
const UNSET_PRIORITY: i32 = 1;

/// The deepest nesting of `!` and parentheses read: the parser recurses once per level.
pub const MAX_NESTING: usize = 256;

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    expr: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> ContextError {
        ContextError {
            expr: self.expr.to_string(),
            reason: format!("{reason} at column {}", self.pos + 1),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.src.get(self.pos).copied()
    }

    /// Operands joined by `|`, `^` and `&`, all at one precedence, left to right.
    fn or(&mut self) -> Result<i32, ContextError> {
        let mut v = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(c @ (b'|' | b'^' | b'&')) => c,
                _ => return Ok(v),
            };
            self.pos += 1;
            let w = self.unary()?;
            v = match op {
                b'|' => or(v, w),
                b'^' => xor(v, w),
                _ => and(v, w),
            };
        }
    }

    fn unary(&mut self) -> Result<i32, ContextError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(&format!("nested deeper than {MAX_NESTING} levels")));
        }
        let v = self.unary_inner();
        self.depth -= 1;
        v
    }

    fn unary_inner(&mut self) -> Result<i32, ContextError> {
        match self.peek() {
            Some(b'!') if self.src.get(self.pos + 1) != Some(&b'=') => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some(b'(') => {
                self.pos += 1;
                let v = self.or()?;
                if self.peek() != Some(b')') {
                    return Err(self.error("missing ')'"));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_alphabetic() => self.comparison(),
            Some(_) => Err(self.error("expected a context name")),
            None => Err(self.error("unexpected end of expression")),
        }
    }

    fn word(&mut self) -> &[u8] {
        let start = self.pos;
        while self.pos < self.src.len() && (self.src[self.pos].is_ascii_alphanumeric() || self.src[self.pos] == b'_') {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn comparison(&mut self) -> Result<i32, ContextError> {
        self.word();
        // Every context is unset: its value is the empty string, which is false.
        let negate = match (self.peek(), self.src.get(self.pos + 1)) {
            (Some(b'='), _) => {
                self.pos += 1;
                false
            }
            (Some(b'!'), Some(b'=')) => {
                self.pos += 2;
                true
            }
            _ => return Ok(-UNSET_PRIORITY),
        };
        let (value, quoted) = self.value()?;
        let equal = value.is_empty() || (!quoted && is_false_word(&value));
        Ok(if equal != negate {
            UNSET_PRIORITY
        } else {
            -UNSET_PRIORITY
        })
    }

    /// A value, and whether it was quoted.
    fn value(&mut self) -> Result<(String, bool), ContextError> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let mut out = Vec::new();
                let mut i = self.pos + 1;
                loop {
                    match self.src.get(i) {
                        None => return Err(self.error("unterminated quoted value")),
                        // In a single-quoted value, '' is one quote.
                        Some(&c) if c == q && q == b'\'' && self.src.get(i + 1) == Some(&q) => {
                            out.push(q);
                            i += 2;
                        }
                        Some(&c) if c == q => break,
                        Some(&c) => {
                            out.push(c);
                            i += 1;
                        }
                    }
                }
                self.pos = i + 1;
                Ok((String::from_utf8_lossy(&out).into_owned(), true))
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                Ok((String::from_utf8_lossy(self.word()).into_owned(), false))
            }
            _ => Err(self.error("expected a value after the comparison")),
        }
    }
}

fn is_false_word(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "no" | "false" | "off")
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn evaluates_with_no_contexts_set() {
        assert_eq!(priority("debug"), Ok(-1));
        assert_eq!(priority("!production"), Ok(1));
        assert_eq!(priority("!x & y"), Ok(-1));
        assert_eq!(priority("!x | y"), Ok(1));
        assert_eq!(priority("x != foo"), Ok(1));
        assert_eq!(priority("x = \"\""), Ok(1));
        assert_eq!(priority("!(x)"), Ok(1));
        assert_eq!(priority("x = false"), Ok(1));
        assert_eq!(priority("x = foo"), Ok(-1));
        assert_eq!(priority("(a | b) & !c"), Ok(-1));
        assert_eq!(priority("a ^ !b"), Ok(1));
        // lcfg-core: one precedence, left to right; quoted words are strings.
        assert_eq!(priority("!a | b & c"), Ok(-1));
        assert_eq!(priority("x = \"no\""), Ok(-1));
        assert_eq!(priority("x != \"off\""), Ok(1));
        assert_eq!(priority("x = 'a''b'"), Ok(-1));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(priority(&deep).unwrap_err().reason.contains("nested deeper than 256"));
        assert!(priority(&"!".repeat(1_000_000)).is_err());
    }

    #[test]
    fn rejects_bad_expressions() {
        assert!(priority("((").is_err());
        assert!(priority("a &").is_err());
        assert!(priority("a b").is_err());
        assert!(priority("x = 'open").is_err());
    }
}
