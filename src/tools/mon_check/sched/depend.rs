//! mon's `depend`: a boolean expression over `group:service` terms, each true while
//! that service is not failing. `&&`, `||`, `!` and parentheses; terms written side by
//! side must all hold, as in `depend routers:ping switches:ping`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Term(String, String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Term(String, String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':');
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1
            }
            b')' => {
                out.push(Tok::Close);
                i += 1
            }
            b'!' => {
                out.push(Tok::Not);
                i += 1
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push(Tok::And);
                i += 2
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push(Tok::Or);
                i += 2
            }
            c if word(c) => {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                let w = &s[start..i];
                match w.split_once(':') {
                    Some((g, sv)) if !g.is_empty() && !sv.is_empty() && !sv.contains(':') => {
                        out.push(Tok::Term(g.into(), sv.into()))
                    }
                    _ => return Err(format!("depend `{s}`: `{w}` is not group:service")),
                }
            }
            _ => {
                return Err(format!(
                    "depend `{s}`: unexpected `{}`",
                    &s[i..].chars().next().unwrap_or(' ')
                ))
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::And) => self.pos += 1,
                Some(Tok::Term(..) | Tok::Not | Tok::Open) => {}
                _ => return Ok(l),
            }
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Expr, String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match t {
            Some(Tok::Not) => Ok(Expr::Not(Box::new(self.unary()?))),
            Some(Tok::Open) => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(format!("depend `{}`: a `(` is not closed", self.text));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Term(g, s)) => Ok(Expr::Term(g, s)),
            _ => Err(format!("depend `{}`: a term is missing", self.text)),
        }
    }
}

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, String> {
        let toks = lex(s)?;
        let mut p = Parser {
            toks: &toks,
            pos: 0,
            text: s,
        };
        let e = p.or()?;
        if p.pos != toks.len() {
            return Err(format!("depend `{s}`: unexpected text after the expression"));
        }
        Ok(e)
    }

    /// Whether the dependencies hold, given which services are up.
    pub fn holds(&self, up: &dyn Fn(&str, &str) -> bool) -> bool {
        match self {
            Expr::Term(g, s) => up(g, s),
            Expr::Not(e) => !e.holds(up),
            Expr::And(a, b) => a.holds(up) && b.holds(up),
            Expr::Or(a, b) => a.holds(up) || b.holds(up),
        }
    }

    /// Every `group:service` named.
    pub fn terms(&self) -> Vec<(String, String)> {
        match self {
            Expr::Term(g, s) => vec![(g.clone(), s.clone())],
            Expr::Not(e) => e.terms(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut t = a.terms();
                t.extend(b.terms());
                t
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Expr::Term(g, s) => write!(f, "{g}:{s}"),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(a, b) => write!(f, "({a} && {b})"),
            Expr::Or(a, b) => write!(f, "({a} || {b})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        let up = |g: &str, _s: &str| g != "down";
        assert!(Expr::parse("routers:ping").unwrap().holds(&up));
        assert!(!Expr::parse("routers:ping down:ping").unwrap().holds(&up));
        assert!(Expr::parse("down:ping || a:b").unwrap().holds(&up));
        assert!(Expr::parse("!(down:x && a:b)").unwrap().holds(&up));
        assert_eq!(Expr::parse("a:b c:d").unwrap().terms().len(), 2);
        for bad in ["", "a", "a:b &&", "(a:b", "a:b)", "a:b:c", "a:b & c:d"] {
            assert!(Expr::parse(bad).is_err(), "{bad}");
        }
    }
}
