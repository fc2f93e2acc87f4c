//! Formatting an error with its sources, for messages and logs.

/// `e`'s message followed by those of its sources, `a: b: c`. A source
/// whose message is already part of the text is left out, so an error
/// that repeats its source's message does not print it twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the configuration")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("database locked")]
    struct Middle(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn the_chain_lists_every_source_in_order() {
        let e = Outer(Middle(std::io::Error::other("disk gone")));
        assert_eq!(
            error_chain(&e),
            "cannot open the configuration: database locked: disk gone"
        );
    }

    #[test]
    fn an_error_without_sources_is_its_message() {
        assert_eq!(error_chain(&std::io::Error::other("x")), "x");
    }

    #[test]
    fn a_source_already_in_the_message_is_not_repeated() {
        let e = Repeats(std::io::Error::other("no such file"));
        assert_eq!(error_chain(&e), "cannot read: no such file");
    }
}
