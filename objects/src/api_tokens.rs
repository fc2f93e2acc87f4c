//! RAPI's API tokens: a second kind of credential besides the users
//! file, made and revoked with `gnt-cluster rapi-token`, presented as
//! `Authorization: Bearer <token>`. A token is read-only, or may write
//! with a given list of opcodes only. The file
//! (`var/lib/ganeti/rapi/tokens`) keeps a SHA-256 of each token, never
//! the token itself: one line a token,
//!
//! ```text
//! name sha256:<hex> read
//! name sha256:<hex> write OP_INSTANCE_STARTUP,OP_INSTANCE_SHUTDOWN
//! ```
//!
//! Lines starting with `#` and empty lines are skipped. No I/O here.

use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Reads only.
    Read,
    /// Reads, and writes that submit these opcodes (`OP_ID`s) only.
    Write(Vec<String>),
}

/// One token of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    /// `sha256:<hex>` of the token.
    pub hash: String,
    pub scope: TokenScope,
}

/// A line of the tokens file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the tokens file: {reason}")]
pub struct TokenLineError {
    pub line: usize,
    pub reason: String,
}

/// Whether `name` can name a token (`[A-Za-z0-9_.-]+`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The stored form of `secret`.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A new token: `grt_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let b: [u8; 32] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("grt_{hex}")
}

/// Reads the file's text; every line must be valid.
pub fn parse(text: &str) -> Result<Vec<ApiToken>, TokenLineError> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| TokenLineError {
            line: i + 1,
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, hash, scope) = match parts.as_slice() {
            [n, h, "read"] => (*n, *h, TokenScope::Read),
            [n, h, "write", ops] => (
                *n,
                *h,
                TokenScope::Write(ops.split(',').map(str::to_string).collect()),
            ),
            _ => {
                return Err(bad(
                    "expected 'name sha256:<hex> read' or 'name sha256:<hex> write OP,...'",
                ))
            }
        };
        if !valid_name(name) {
            return Err(bad(&format!("invalid token name '{name}'")));
        }
        let hex = hash.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(&format!("invalid hash of token '{name}'")));
        }
        if let TokenScope::Write(ops) = &scope {
            if ops.iter().any(|o| !o.starts_with("OP_")) {
                return Err(bad(&format!("invalid opcode list of token '{name}'")));
            }
        }
        tokens.push(ApiToken {
            name: name.to_string(),
            hash: hash.to_ascii_lowercase(),
            scope,
        });
    }
    Ok(tokens)
}

/// The file's text for `tokens`.
pub fn format(tokens: &[ApiToken]) -> String {
    let mut out = String::from("# RAPI API tokens (gnt-cluster rapi-token); hashes only\n");
    for t in tokens {
        match &t.scope {
            TokenScope::Read => out.push_str(&format!("{} {} read\n", t.name, t.hash)),
            TokenScope::Write(ops) => {
                out.push_str(&format!("{} {} write {}\n", t.name, t.hash, ops.join(",")))
            }
        }
    }
    out
}

/// The token among `tokens` whose hash is that of `secret`.
pub fn find<'a>(tokens: &'a [ApiToken], secret: &str) -> Option<&'a ApiToken> {
    let h = hash(secret);
    tokens.iter().find(|t| {
        t.hash.len() == h.len()
            && t.hash
                .bytes()
                .zip(h.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_file() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("grt_") && a.len() == 68);
        let tokens = vec![
            ApiToken {
                name: "monitor".into(),
                hash: hash(&a),
                scope: TokenScope::Read,
            },
            ApiToken {
                name: "portal".into(),
                hash: hash(&b),
                scope: TokenScope::Write(vec![
                    "OP_INSTANCE_STARTUP".into(),
                    "OP_INSTANCE_SHUTDOWN".into(),
                ]),
            },
        ];
        let text = format(&tokens);
        assert!(
            !text.contains(&a) && !text.contains(&b),
            "secrets are not stored"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back, tokens);
        assert_eq!(find(&back, &b).unwrap().name, "portal");
        assert!(find(&back, "grt_nope").is_none());
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("# c\nx sha256:00 read\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse(&format!("x {} admin\n", hash("s"))).unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse(&format!("x {} write startup\n", hash("s"))).unwrap_err();
        assert!(e.reason.contains("opcode"), "{e}");
        let e = parse(&format!("a/b {} read\n", hash("s"))).unwrap_err();
        assert!(e.reason.contains("name"), "{e}");
    }
}
