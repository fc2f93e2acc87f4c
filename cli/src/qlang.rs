//! Ganeti's query filter language (`lib/qlang.py`): the text a user gives
//! to `-F` or as a list argument, turned into the prefix-list filter that
//! LUXI's `Query` takes, e.g. `name =~ /^inst/ and pnode == "node1"` into
//! `["&", ["=~", "name", "^inst"], ["==", "pnode", "node1"]]`.
//!
//! Ganeti's pyparsing grammar is followed, including its quirks: quoted
//! strings keep their backslashes, while a backslash inside a regular
//! expression only protects the next character and is dropped. One quirk
//! is not kept: regular-expression flags must follow the closing delimiter
//! directly, so `name =~ /x/ and y` parses instead of reading `and` as
//! flags.

use serde_json::{json, Value};

pub const OP_OR: &str = "|";
pub const OP_AND: &str = "&";
pub const OP_NOT: &str = "!";
pub const OP_TRUE: &str = "?";
pub const OP_EQUAL: &str = "==";
pub const OP_NOT_EQUAL: &str = "!=";
pub const OP_LT: &str = "<";
pub const OP_LE: &str = "<=";
pub const OP_GT: &str = ">";
pub const OP_GE: &str = ">=";
pub const OP_REGEXP: &str = "=~";
pub const OP_CONTAINS: &str = "=[]";

/// Characters that make a single list argument a filter rather than a name.
const FILTER_DETECTION_CHARS: &[char] = &[
    '!', ' ', '"', '\'', ')', '(', '\x0b', '\n', '\r', '\x0c', '/', '<', '\t', '>', '=', '\\', '~',
];
/// Characters that make a name argument a glob pattern.
const GLOB_DETECTION_CHARS: &[char] = &['*', '?'];
const REGEXP_DELIMS: &[char] = &['/', '#', '^', '|'];

/// A filter that could not be parsed, with the position of the problem.
/// It reads as the pyparsing exception Ganeti reports: `reason`, then
/// what was found at `pos` (unless `fatal`), then the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to parse query filter '{text}': {}", self.located())]
pub struct FilterParseError {
    pub text: String,
    pub reason: String,
    pub pos: usize,
    /// A refusal that no other reading of the text can avoid (pyparsing's
    /// `ParseFatalException`): it says nothing of what was found.
    pub fatal: bool,
}

impl FilterParseError {
    /// The text at `pos` as pyparsing names it: a word of up to 16
    /// letters and digits, else one character, else the end of the text.
    fn found(&self) -> String {
        let rest = &self.text[self.pos.min(self.text.len())..];
        let word: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        match rest.chars().next() {
            None => "end of text".to_string(),
            Some(c) if word.is_empty() => format!("'{c}'"),
            Some(_) => format!("'{word}'"),
        }
    }

    /// Line and column (from 1) of `pos`.
    fn line_col(&self) -> (usize, usize) {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }

    /// The reason with what was found and where, as pyparsing prints it.
    pub fn located(&self) -> String {
        let found = if self.fatal || self.text.is_empty() {
            String::new()
        } else {
            format!(", found {}", self.found())
        };
        let (line, col) = self.line_col();
        format!(
            "{}{found}  (at char {}), (line:{line}, col:{col})",
            self.reason, self.pos
        )
    }

    /// The lines Ganeti prints under the error: the filter's line, a caret
    /// under the problem and the reason.
    pub fn details(&self) -> Vec<String> {
        let (line, col) = self.line_col();
        vec![
            self.text
                .split('\n')
                .nth(line - 1)
                .unwrap_or("")
                .to_string(),
            format!("{}^", " ".repeat(col - 1)),
            self.located(),
        ]
    }
}

/// Errors building a filter from command arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MakeFilterError {
    #[error(transparent)]
    Parse(#[from] FilterParseError),
    #[error("Exactly one argument must be given as a filter")]
    NotOneFilter,
    #[error("Invalid job ID passed: {0}")]
    InvalidNumber(String),
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Set by an error that backtracking must not hide.
    fatal: bool,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start_matches([' ', '\t', '\n', '\r']);
        self.pos = self.text.len() - trimmed.len();
    }

    fn err<T>(&self, reason: impl Into<String>) -> Result<T, FilterParseError> {
        Err(FilterParseError {
            text: self.text.to_string(),
            reason: reason.into(),
            pos: self.pos,
            fatal: false,
        })
    }

    /// Runs `f`; when it fails in a way another reading may avoid, puts
    /// the position back and gives `None` (pyparsing's backtracking).
    fn attempt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, FilterParseError>,
    ) -> Result<Option<T>, FilterParseError> {
        let start = self.pos;
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.fatal => Err(e),
            Err(_) => {
                self.pos = start;
                Ok(None)
            }
        }
    }

    /// Consumes `kw` if it is next and not followed by an identifier char.
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if let Some(after) = rest.strip_prefix(kw) {
            if !after.chars().next().is_some_and(is_ident_char) {
                self.pos += kw.len();
                return true;
            }
        }
        false
    }

    /// Consumes the literal `lit` if it is next.
    fn literal(&mut self, lit: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Operands joined by `kw`; a keyword without a valid operand after
    /// it is left unread, for the caller to refuse.
    fn parse_chain(
        &mut self,
        kw: &str,
        op: &str,
        operand: fn(&mut Self) -> Result<Value, FilterParseError>,
    ) -> Result<Value, FilterParseError> {
        let mut items = vec![operand(self)?];
        loop {
            let next = self.attempt(|p| {
                if p.keyword(kw) {
                    operand(p)
                } else {
                    p.err(format!("Expected '{kw}'"))
                }
            })?;
            match next {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(combine(op, items))
    }

    fn parse_or(&mut self) -> Result<Value, FilterParseError> {
        self.parse_chain("or", OP_OR, Self::parse_and)
    }

    fn parse_and(&mut self) -> Result<Value, FilterParseError> {
        self.parse_chain("and", OP_AND, Self::parse_not)
    }

    fn parse_not(&mut self) -> Result<Value, FilterParseError> {
        // "not" without an operand is a field's name.
        let negated = self.attempt(|p| {
            if p.keyword("not") {
                p.parse_not()
            } else {
                p.err("Expected 'not'")
            }
        })?;
        match negated {
            Some(inner) => Ok(json!([OP_NOT, inner])),
            None => self.parse_atom(),
        }
    }

    fn parse_atom(&mut self) -> Result<Value, FilterParseError> {
        self.skip_ws();
        if self.literal("(") {
            let inner = self.parse_or()?;
            if !self.literal(")") {
                return self.err("Expected ')'");
            }
            return Ok(inner);
        }
        self.parse_condition()
    }

    fn field_name(&mut self) -> Option<String> {
        self.skip_ws();
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() => {}
            _ => return None,
        }
        let end = chars
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.')))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += end;
        Some(rest[..end].to_string())
    }

    fn expect_field(&mut self) -> Result<String, FilterParseError> {
        match self.field_name() {
            Some(f) => Ok(f),
            None => self.err("Expected field name"),
        }
    }

    /// A number (`[+-]digits`) or a quoted string, if one is next.
    fn rval(&mut self) -> Result<Option<Value>, FilterParseError> {
        self.skip_ws();
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let sign = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
        let digits = bytes[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            let text = &rest[..sign + digits];
            let Ok(n) = text.trim_start_matches('+').parse::<i64>() else {
                return self.err(format!("Number out of range: {text}"));
            };
            self.pos += sign + digits;
            return Ok(Some(json!(n)));
        }
        Ok(self.quoted_string()?.map(Value::String))
    }

    /// A `"..."` or `'...'` string; the quotes are removed and the content
    /// kept as written (backslash escapes included), as pyparsing's
    /// `quotedString` with `removeQuotes` does.
    fn quoted_string(&mut self) -> Result<Option<String>, FilterParseError> {
        self.skip_ws();
        let rest = self.rest();
        let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return Ok(None);
        };
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == '\n' || c == '\r' {
                break;
            } else if c == q {
                // A doubled quote continues the string.
                if chars.peek().map(|(_, n)| *n) == Some(q) {
                    chars.next();
                    continue;
                }
                self.pos += i + 1;
                return Ok(Some(rest[1..i].to_string()));
            }
        }
        self.err("Unterminated quoted string")
    }

    /// `[m]/regexp/[flags]` with delimiters `/`, `#`, `^` or `|`.
    fn regexp(&mut self) -> Result<String, FilterParseError> {
        self.skip_ws();
        let start = self.pos;
        let mut rest = self.rest();
        if let Some(r) = rest.strip_prefix('m') {
            if r.starts_with(REGEXP_DELIMS) {
                rest = r;
                self.pos += 1;
            }
        }
        let Some(delim) = rest.chars().next().filter(|c| REGEXP_DELIMS.contains(c)) else {
            return self.err("Expected regular expression");
        };
        let mut body = String::new();
        let mut end = None;
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some((_, n)) => body.push(n),
                    None => break,
                }
            } else if c == delim {
                end = Some(i + c.len_utf8());
                break;
            } else {
                body.push(c);
            }
        }
        let Some(end) = end else {
            self.pos = start;
            return self.err("Unterminated regular expression");
        };
        self.pos += end;
        let flags: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let unknown: String = flags.chars().filter(|c| !matches!(c, 's' | 'i')).collect();
        if !unknown.is_empty() {
            self.pos = start;
            self.fatal = true;
            return Err(FilterParseError {
                text: self.text.to_string(),
                reason: format!("Unknown regular expression flags: '{unknown}'"),
                pos: start,
                fatal: true,
            });
        }
        self.pos += flags.len();
        if flags.is_empty() {
            Ok(body)
        } else {
            let mut f: Vec<char> = flags.chars().collect();
            f.sort_unstable();
            Ok(format!("(?{}){}", f.into_iter().collect::<String>(), body))
        }
    }

    fn parse_condition(&mut self) -> Result<Value, FilterParseError> {
        self.skip_ws();
        // "value in field" and "value not in field"
        if let Some(value) = self.rval()? {
            let negate = self.keyword("not");
            if !self.literal("in") {
                return self.err("Expected 'in'");
            }
            let field = self.expect_field()?;
            let cond = json!([OP_CONTAINS, field, value]);
            return Ok(if negate { json!([OP_NOT, cond]) } else { cond });
        }
        let Some(field) = self.field_name() else {
            return self.err("Expected a condition");
        };
        self.skip_ws();
        const OPS: &[(&str, &str)] = &[
            ("=~", "re"),
            ("!~", "!re"),
            ("=*", "glob"),
            ("!*", "!glob"),
            ("==", OP_EQUAL),
            ("!=", OP_NOT_EQUAL),
            ("<=", OP_LE),
            (">=", OP_GE),
            ("<", OP_LT),
            (">", OP_GT),
            ("=", OP_EQUAL),
        ];
        let Some(&(tok, op)) = OPS.iter().find(|(t, _)| self.rest().starts_with(t)) else {
            return Ok(json!([OP_TRUE, field]));
        };
        // An operator without a valid operand leaves the field alone, a
        // condition of its own (pyparsing tries the longest reading first).
        let compared = self.attempt(|p| {
            p.pos += tok.len();
            p.comparison(&field, op)
        })?;
        Ok(compared.unwrap_or_else(|| json!([OP_TRUE, field])))
    }

    /// The rest of `field <op> operand` after the operator.
    fn comparison(&mut self, field: &str, op: &str) -> Result<Value, FilterParseError> {
        match op {
            "re" | "!re" => {
                let re = self.regexp()?;
                let cond = json!([OP_REGEXP, field, re]);
                Ok(if op == "re" {
                    cond
                } else {
                    json!([OP_NOT, cond])
                })
            }
            "glob" | "!glob" => {
                let Some(pattern) = self.quoted_string()? else {
                    return self.err("Expected quoted string");
                };
                let cond = json!([OP_REGEXP, field, dns_name_glob_pattern(&pattern)]);
                Ok(if op == "glob" {
                    cond
                } else {
                    json!([OP_NOT, cond])
                })
            }
            binop => match self.rval()? {
                Some(v) => Ok(json!([binop, field, v])),
                None => self.err("Expected a number or a quoted string"),
            },
        }
    }
}

fn combine(op: &str, mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.remove(0)
    } else {
        let mut v = vec![json!(op)];
        v.extend(items);
        Value::Array(v)
    }
}

/// Parses a filter expression.
/// Parses a filter expression. A text whose start is no expression is
/// refused where the parse got furthest, else where the longest
/// expression at its start ends, in pyparsing's words.
pub fn parse_filter(text: &str) -> Result<Value, FilterParseError> {
    let mut p = Parser {
        text,
        pos: 0,
        fatal: false,
    };
    let v = match p.parse_or() {
        Ok(v) => v,
        Err(e) if e.fatal => return Err(e),
        Err(e) => {
            return Err(FilterParseError {
                reason: "Expected Suppress:('or') term".into(),
                ..e
            })
        }
    };
    p.skip_ws();
    if p.pos != text.len() {
        return p.err("Expected end of text");
    }
    Ok(v)
}

/// Python's `re.escape` (3.7+).
fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Turns a DNS name glob (`*.site`, `web?`) into a regular expression that
/// matches from the leftmost part: `*` and `?` do not match dots.
pub fn dns_name_glob_pattern(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut literal = String::new();
    for c in pattern.chars() {
        match c {
            '*' | '?' => {
                out.push_str(&re_escape(&literal));
                literal.clear();
                out.push_str(if c == '*' { "[^.]*" } else { "[^.]" });
            }
            c => literal.push(c),
        }
    }
    out.push_str(&re_escape(&literal));
    out.push_str("(\\..*)?$");
    out
}

/// `[|, [==, field, v1], [==, field, v2], ...]`, or `None` without values.
pub fn make_simple_filter(field: &str, values: &[&str]) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let mut v = vec![json!(OP_OR)];
    v.extend(values.iter().map(|x| json!([OP_EQUAL, field, x])));
    Some(Value::Array(v))
}

/// Builds the filter for list arguments as Ganeti's `MakeFilter`: one
/// argument that looks like a filter (or any with `-F`) is parsed; names are
/// matched exactly, or as globs if they contain `*` or `?`; numeric name
/// fields (job ids) compare as integers.
pub fn make_filter(
    args: &[String],
    force_filter: bool,
    namefield: &str,
    isnumeric: bool,
) -> Result<Option<Value>, MakeFilterError> {
    if force_filter || (args.len() == 1 && args[0].contains(FILTER_DETECTION_CHARS)) {
        let [text] = args else {
            return Err(MakeFilterError::NotOneFilter);
        };
        return Ok(Some(parse_filter(text)?));
    }
    if args.is_empty() {
        return Ok(None);
    }
    let mut v = vec![json!(OP_OR)];
    for arg in args {
        let part = if isnumeric {
            let n: i64 = arg.parse().map_err(|_| {
                MakeFilterError::InvalidNumber(format!(
                    "invalid literal for int() with base 10: '{arg}'"
                ))
            })?;
            json!([OP_EQUAL, namefield, n])
        } else if arg.contains(GLOB_DETECTION_CHARS) {
            json!([OP_REGEXP, namefield, dns_name_glob_pattern(arg)])
        } else {
            json!([OP_EQUAL, namefield, arg])
        };
        v.push(part);
    }
    Ok(Some(Value::Array(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expression and the filter Ganeti 3.0's `qlang.ParseFilter`
    /// returns for it (obtained by running Ganeti's Python module).
    const GANETI_CASES: &[(&str, &str)] = &[
        (r#"name == "node1""#, r#"["==", "name", "node1"]"#),
        (r#"name = 'x'"#, r#"["==", "name", "x"]"#),
        (r#"name != "x""#, r#"["!=", "name", "x"]"#),
        (r#"admin_state == "up""#, r#"["==", "admin_state", "up"]"#),
        (r#"admin_state"#, r#"["?", "admin_state"]"#),
        (r#"not admin_state"#, r#"["!", ["?", "admin_state"]]"#),
        (r#"name =~ /^inst/"#, r#"["=~", "name", "^inst"]"#),
        (r#"name =~ m/^inst/i"#, r#"["=~", "name", "(?i)^inst"]"#),
        (r#"name =~ #a/b#s"#, r#"["=~", "name", "(?s)a/b"]"#),
        (r#"name =~ /a\.b/"#, r#"["=~", "name", "a.b"]"#),
        (r#"name =~ /a\/b/"#, r#"["=~", "name", "a/b"]"#),
        (r#"name !~ /x/"#, r#"["!", ["=~", "name", "x"]]"#),
        (
            r#"name =* "*.site""#,
            r#"["=~", "name", "^[^.]*\\.site(\\..*)?$"]"#,
        ),
        (
            r#"name !* "web?.example.com""#,
            r#"["!", ["=~", "name", "^web[^.]\\.example\\.com(\\..*)?$"]]"#,
        ),
        (r#""foo" in tags"#, r#"["=[]", "tags", "foo"]"#),
        (r#""foo" not in tags"#, r#"["!", ["=[]", "tags", "foo"]]"#),
        (r#"be/memory >= 1024"#, r#"[">=", "be/memory", 1024]"#),
        (r#"be/memory < -5"#, r#"["<", "be/memory", -5]"#),
        (r#"be/memory > +5"#, r#"[">", "be/memory", 5]"#),
        (r#"disk.sizes <= 10"#, r#"["<=", "disk.sizes", 10]"#),
        (
            r#"a == 1 and b == 2 and c == 3"#,
            r#"["&", ["==", "a", 1], ["==", "b", 2], ["==", "c", 3]]"#,
        ),
        (
            r#"a or b and c"#,
            r#"["|", ["?", "a"], ["&", ["?", "b"], ["?", "c"]]]"#,
        ),
        (r#"not a and b"#, r#"["&", ["!", ["?", "a"]], ["?", "b"]]"#),
        (
            r#"(a or b) and not (c or d)"#,
            r#"["&", ["|", ["?", "a"], ["?", "b"]], ["!", ["|", ["?", "c"], ["?", "d"]]]]"#,
        ),
        (r#"not not a"#, r#"["!", ["!", ["?", "a"]]]"#),
        (r#"name == "a\"b""#, r#"["==", "name", "a\\\"b"]"#),
        (r#"name == "a\\b""#, r#"["==", "name", "a\\\\b"]"#),
        (r#"name == 'it''s'"#, r#"["==", "name", "it''s"]"#),
        (
            r#"pnode == "node1" and name =~ /^inst/"#,
            r#"["&", ["==", "pnode", "node1"], ["=~", "name", "^inst"]]"#,
        ),
        (
            r#"name =~ /x/i and a"#,
            r#"["&", ["=~", "name", "(?i)x"], ["?", "a"]]"#,
        ),
        (r#"a==1"#, r#"["==", "a", 1]"#),
        (r#"nota"#, r#"["?", "nota"]"#),
        (r#"not(a)"#, r#"["!", ["?", "a"]]"#),
    ];

    #[test]
    fn parses_like_ganeti_qlang() {
        for (text, expected) in GANETI_CASES {
            let expected: Value = serde_json::from_str(expected).unwrap();
            assert_eq!(parse_filter(text).unwrap(), expected, "filter {text}");
        }
    }

    #[test]
    fn regexp_without_flags_may_be_followed_by_and() {
        // Ganeti's parser takes "and" for flags here and fails; we parse it.
        assert_eq!(
            parse_filter(r#"name =~ /^inst/ and pnode == "node1""#).unwrap(),
            json!(["&", ["=~", "name", "^inst"], ["==", "pnode", "node1"]])
        );
    }

    #[test]
    fn rejects_what_ganeti_rejects() {
        for text in [
            "a ==",
            "== a",
            "a == b",
            "name =~ /x/q",
            "1 == a",
            "(a",
            "a b",
            "",
        ] {
            assert!(parse_filter(text).is_err(), "filter {text:?} should fail");
        }
        let e = parse_filter("name =~ /x/q").unwrap_err();
        assert!(e.reason.contains("Unknown regular expression flags: 'q'"));
    }

    #[test]
    fn error_details_point_at_the_problem() {
        let e = parse_filter("a == b").unwrap_err();
        assert_eq!(e.pos, 2);
        assert_eq!(e.details()[1], "  ^");
    }

    /// What Ganeti 3.0.2's qlang (pyparsing 3.0.9) says of each text.
    #[test]
    fn errors_read_as_ganeti_pyparsing() {
        let term = "Expected Suppress:('or') term";
        let end = "Expected end of text";
        for (text, said) in [
            (
                "pnode ==",
                format!("{end}, found '='  (at char 6), (line:1, col:7)"),
            ),
            (
                "pnode == foo",
                format!("{end}, found '='  (at char 6), (line:1, col:7)"),
            ),
            (
                "(pnode",
                format!("{term}, found end of text  (at char 6), (line:1, col:7)"),
            ),
            (
                "pnode == \"x\" and",
                format!("{end}, found 'and'  (at char 13), (line:1, col:14)"),
            ),
            (
                "name =~",
                format!("{end}, found '='  (at char 5), (line:1, col:6)"),
            ),
            (
                "== a",
                format!("{term}, found '='  (at char 0), (line:1, col:1)"),
            ),
            (
                "a b",
                format!("{end}, found 'b'  (at char 2), (line:1, col:3)"),
            ),
            (
                "pnode == \"a\" or == 1",
                format!("{end}, found 'or'  (at char 13), (line:1, col:14)"),
            ),
            (
                "1 == a",
                format!("{term}, found '='  (at char 2), (line:1, col:3)"),
            ),
            ("", format!("{term}  (at char 0), (line:1, col:1)")),
            (
                "name =~ /x/q",
                "Unknown regular expression flags: 'q'  (at char 8), (line:1, col:9)".to_string(),
            ),
            (
                "\"x\" in",
                format!("{term}, found end of text  (at char 6), (line:1, col:7)"),
            ),
            (
                "a and",
                format!("{end}, found 'and'  (at char 2), (line:1, col:3)"),
            ),
            (
                "(a == 1",
                format!("{term}, found end of text  (at char 7), (line:1, col:8)"),
            ),
            (
                "a == 1)",
                format!("{end}, found ')'  (at char 6), (line:1, col:7)"),
            ),
        ] {
            let e = parse_filter(text).unwrap_err();
            assert_eq!(e.located(), said, "filter {text:?}");
            assert_eq!(
                e.to_string(),
                format!("Failed to parse query filter '{text}': {said}")
            );
        }
        assert_eq!(parse_filter("not").unwrap(), json!(["?", "not"]));
        let e = parse_filter("pnode ==").unwrap_err();
        assert_eq!(
            e.details(),
            [
                "pnode ==",
                "      ^",
                "Expected end of text, found '='  (at char 6), (line:1, col:7)"
            ]
        );
    }

    #[test]
    fn names_become_an_or_of_equalities() {
        let f = make_filter(&["a".into(), "b".into()], false, "name", false).unwrap();
        assert_eq!(
            f,
            Some(json!(["|", ["==", "name", "a"], ["==", "name", "b"]]))
        );
        assert_eq!(make_filter(&[], false, "name", false).unwrap(), None);
    }

    #[test]
    fn glob_names_become_regexps() {
        let f = make_filter(&["web*".into()], false, "name", false).unwrap();
        assert_eq!(f, Some(json!(["|", ["=~", "name", "^web[^.]*(\\..*)?$"]])));
    }

    #[test]
    fn one_argument_with_filter_chars_is_parsed() {
        let f = make_filter(&[r#"pnode == "n1""#.into()], false, "name", false).unwrap();
        assert_eq!(f, Some(json!(["==", "pnode", "n1"])));
        let f = make_filter(&["admin_state".into()], true, "name", false).unwrap();
        assert_eq!(f, Some(json!(["?", "admin_state"])));
        assert_eq!(
            make_filter(&["a".into(), "b".into()], true, "name", false),
            Err(MakeFilterError::NotOneFilter)
        );
    }

    #[test]
    fn numeric_names_are_integers() {
        let f = make_filter(&["12".into()], false, "id", true).unwrap();
        assert_eq!(f, Some(json!(["|", ["==", "id", 12]])));
        assert!(make_filter(&["x".into()], false, "id", true).is_err());
    }

    #[test]
    fn simple_filter_matches_any_value() {
        assert_eq!(
            make_simple_filter("status", &["queued", "waiting"]),
            Some(json!([
                "|",
                ["==", "status", "queued"],
                ["==", "status", "waiting"]
            ]))
        );
        assert_eq!(make_simple_filter("status", &[]), None);
    }
}
