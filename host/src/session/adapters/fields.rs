//! A JSON object that adapters take fields out of, one by one. What is left
//! at the end is what no adapter understood: it is kept in the session's
//! attributes under its original names, so an unknown or newer field is never
//! an error and never lost.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// `None` when `value` is not an object.
    pub fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Fields(map)),
            _ => None,
        }
    }

    pub fn peek(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn peek_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// Takes any value, whatever its type.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.shift_remove(key)
    }

    /// Takes the field when `read` understands it; otherwise leaves it in
    /// place, so a value of an unexpected shape survives in the remainder.
    pub fn take_if<T>(&mut self, key: &str, read: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let out = read(self.0.get(key)?)?;
        self.0.shift_remove(key);
        Some(out)
    }

    /// A non-empty string. An empty string is taken and reads as absent
    /// (Connect writes `""` for "none" in some exports).
    pub fn take_str(&mut self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) if s.is_empty() => {
                self.0.shift_remove(key);
                None
            }
            Value::String(_) => self.take(key).and_then(|v| v.as_str().map(str::to_owned)),
            Value::Null => {
                self.0.shift_remove(key);
                None
            }
            _ => None,
        }
    }

    /// An RFC 3339 instant; an unreadable one stays in the remainder.
    pub fn take_time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        if matches!(self.0.get(key), Some(Value::Null)) {
            self.0.shift_remove(key);
            return None;
        }
        self.take_if(key, |v| parse_time(v.as_str()?))
    }

    pub fn take_u64(&mut self, key: &str) -> Option<u64> {
        self.take_if(key, as_u64)
    }

    pub fn take_f64(&mut self, key: &str) -> Option<f64> {
        self.take_if(key, Value::as_f64)
    }

    /// Takes a nested object out to be read; give it back with [`put_back`]
    /// so its unread fields are kept.
    ///
    /// [`put_back`]: Fields::put_back
    pub fn take_object(&mut self, key: &str) -> Option<Fields> {
        if !self.0.get(key)?.is_object() {
            return None;
        }
        self.take(key).and_then(Fields::from_value)
    }

    /// Returns what is left of a nested object; nothing when it is empty.
    pub fn put_back(&mut self, key: &str, rest: Fields) {
        if !rest.0.is_empty() {
            self.0.insert(key.to_owned(), Value::Object(rest.0));
        }
    }

    pub fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// A non-negative whole number, also when written as `12.0`.
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15).map(|f| f as u64))
}

/// Milliseconds as the u32 offsets of the session model; longer than 49
/// days is not a conversation, and saturates.
pub fn millis(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unread_and_misshapen_fields_stay_in_the_remainder() {
        let mut f =
            Fields::from_value(json!({"A": "x", "B": 3, "C": "not a time", "D": {"E": 1, "F": 2}, "G": ""})).unwrap();
        assert_eq!(f.take_str("A").as_deref(), Some("x"));
        assert_eq!(f.take_str("B"), None, "a number is not a string: left in place");
        assert_eq!(f.take_time("C"), None);
        assert_eq!(f.take_str("G"), None);
        let mut d = f.take_object("D").unwrap();
        assert_eq!(d.take_u64("E"), Some(1));
        f.put_back("D", d);
        assert_eq!(Value::Object(f.into_map()), json!({"B": 3, "C": "not a time", "D": {"F": 2}}));
    }
}
