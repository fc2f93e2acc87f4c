//! API tokens as RAPI checks them: `Authorization: Bearer <token>`
//! against the hashes of `var/lib/ganeti/rapi/tokens`
//! ([`objects::api_tokens`]), read again when it changes. A read-only
//! token has the `read` right; a write token has `write` and submits only
//! the opcodes it lists. A file with an unreadable line accepts no token
//! (logged).

use std::path::Path;

use objects::api_tokens::{self, ApiToken, TokenScope};

use crate::auth::Principal;
use crate::watched::Watched;

/// The tokens file.
pub type TokensFile = Watched<Vec<ApiToken>>;

/// Watches the tokens file at `path`.
pub fn tokens_file(path: &Path) -> TokensFile {
    Watched::new(path, "tokens file", |path, text| {
        api_tokens::parse(text).unwrap_or_else(|e| {
            tracing::error!(path = %path.display(), error = %e, "refusing every API token");
            Vec::new()
        })
    })
}

/// The principal of the token `secret`, if it is one of `tokens`.
pub fn lookup(tokens: &[ApiToken], secret: &str) -> Option<Principal> {
    let t = api_tokens::find(tokens, secret)?;
    Some(match &t.scope {
        TokenScope::Read => Principal {
            name: format!("token:{}", t.name),
            read: true,
            write: false,
            opcodes: None,
        },
        TokenScope::Write(ops) => Principal {
            name: format!("token:{}", t.name),
            read: true,
            write: true,
            opcodes: Some(ops.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Access;

    #[test]
    fn tokens_give_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let f = tokens_file(&path);
        assert!(lookup(&f.current(), "grt_x").is_none());
        let (ro, rw) = (api_tokens::new_secret(), api_tokens::new_secret());
        let tokens = vec![
            ApiToken {
                name: "ro".into(),
                hash: api_tokens::hash(&ro),
                scope: TokenScope::Read,
            },
            ApiToken {
                name: "rw".into(),
                hash: api_tokens::hash(&rw),
                scope: TokenScope::Write(vec!["OP_INSTANCE_STARTUP".into()]),
            },
        ];
        std::fs::write(&path, api_tokens::format(&tokens)).unwrap();
        let cur = f.current();
        let p = lookup(&cur, &ro).unwrap();
        assert!(p.allows(Access::ReadOrWrite) && !p.allows(Access::Write));
        let p = lookup(&cur, &rw).unwrap();
        assert!(p.allows(Access::Write));
        assert!(p.may_submit("OP_INSTANCE_STARTUP") && !p.may_submit("OP_INSTANCE_REMOVE"));
        // A broken file accepts no token.
        std::fs::write(&path, "garbage line\n").unwrap();
        assert!(lookup(&f.current(), &ro).is_none());
    }
}
