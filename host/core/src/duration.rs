//! Durations as fly.toml writes them: Go-style strings ("10s", "5m", "1m30s", "500ms") or integers
//! (milliseconds, the older `[[services]]` form).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration read from config: accepts either fly.toml form, and writes itself back the way a user
/// would (`"5m"`, not `300000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(
    /// The duration read.
    pub Duration,
);

/// Parse "10s", "5m", "1m30s", "1h", "250ms" or a bare number of milliseconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty string is not a duration".into());
    }
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    // Go's time.ParseDuration form: a sequence of <number><unit> with no spaces.
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration: expected e.g. \"10s\", \"5m\" or \"1m30s\""));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is not a duration: bad number `{}`", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("`{text}` is not a duration: a unit is missing (ms, s, m or h)")),
            other => {
                return Err(format!(
                    "`{text}` is not a duration: unknown unit `{other}` (use ms, s, m or h)"
                ));
            }
        };
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// Render a duration the way a user would write it in fly.toml.
pub fn display(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&display(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"10s\", \"5m\" or \"1m30s\", or milliseconds as an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse(v).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|ms| Dur(Duration::from_millis(ms)))
                    .map_err(|_| E::custom(format!("{v} is negative: expected a duration")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_millis(v)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_strings() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2000").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        assert!(parse("10").is_ok());
        assert!(parse("ten seconds").unwrap_err().contains("not a duration"));
        assert!(parse("10x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["10s", "5m", "1h", "250ms", "0s"] {
            assert_eq!(display(parse(s).unwrap()), s);
        }
    }
}
