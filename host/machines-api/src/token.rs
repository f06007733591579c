//! The API token: kept out of every log, error message, `Debug` output and event.
//!
//! The only way to read it is [`Token::header_value`], which builds the `Authorization` header value
//! (marked sensitive, so HTTP-level debug output redacts it too).

use std::fmt;

/// A secret API token. `Debug` and `Display` print `Token(redacted)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wrap a token as given (surrounding whitespace, e.g. from `$(fly tokens create …)`, is dropped).
    /// `None` for an empty one.
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into();
        let t = raw.trim();
        (!t.is_empty()).then(|| Self(t.to_string()))
    }

    /// The `Authorization` header for this token, as flyctl sends it: a macaroon token
    /// (`FlyV1 fm2_…`, as `fly tokens create deploy` prints) goes as is, a bare macaroon (`fm1r_…`,
    /// `fm2_…`) gets the `FlyV1` scheme, anything else is a `Bearer` token.
    pub fn header_value(&self) -> reqwest::header::HeaderValue {
        let t = &self.0;
        let value = if t.starts_with("FlyV1 ") {
            t.clone()
        } else if t.starts_with("fm1r_") || t.starts_with("fm1a_") || t.starts_with("fm2_") {
            format!("FlyV1 {t}")
        } else {
            format!("Bearer {t}")
        };
        // A token with bytes a header cannot carry is sent as an empty (so refused) header rather
        // than echoed in an error.
        let mut v = reqwest::header::HeaderValue::from_str(&value)
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        v.set_sensitive(true);
        v
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_prints() {
        let t = Token::new(" s3cr3t-token\n").unwrap();
        assert_eq!(format!("{t:?} {t}"), "Token(redacted) (redacted)");
        assert_eq!(t.header_value().to_str().unwrap(), "Bearer s3cr3t-token");
        assert!(t.header_value().is_sensitive());
        assert!(!format!("{:?}", t.header_value()).contains("s3cr3t"), "header Debug is redacted");
        assert_eq!(Token::new("FlyV1 fm2_abc").unwrap().header_value().to_str().unwrap(), "FlyV1 fm2_abc");
        assert_eq!(Token::new("fm2_abc").unwrap().header_value().to_str().unwrap(), "FlyV1 fm2_abc");
        assert!(Token::new("  ").is_none());
    }
}
