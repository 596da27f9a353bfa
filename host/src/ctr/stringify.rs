//! `JSON.stringify` of a parsed value, byte for byte.
//!
//! The reference pipeline sent each element of a JSON array to Kinesis as
//! `JSON.stringify(element)` and fingerprinted those bytes, so `raw` mode must
//! reproduce exactly what V8 writes: no whitespace, keys in the order
//! `JSON.parse` left them (array-index keys first, ascending, then the rest in
//! insertion order), numbers as `Number.prototype.toString` spells them, and
//! strings escaped as ECMA-262 `QuoteJSONString` does.

use serde_json::{Map, Number, Value};

pub fn write_js_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_js_json(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut member = |key: &str, value: &Value, out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_string(key, out);
        out.push(b':');
        write_js_json(value, out);
    };
    // JS objects list integer-like keys before all others, whatever the order
    // in the source text; contact attributes are free-form and may use them.
    if map.keys().any(|key| array_index(key).is_some()) {
        let mut indexed: Vec<(u32, &String, &Value)> =
            map.iter().filter_map(|(k, v)| array_index(k).map(|i| (i, k, v))).collect();
        indexed.sort_by_key(|(index, _, _)| *index);
        for (_, key, value) in indexed {
            member(key, value, out);
        }
        for (key, value) in map.iter().filter(|(k, _)| array_index(k).is_none()) {
            member(key, value, out);
        }
    } else {
        for (key, value) in map {
            member(key, value, out);
        }
    }
    out.push(b'}');
}

/// An ECMAScript array index: the canonical decimal form of an integer
/// below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    (value < u32::MAX as u64).then_some(value as u32)
}

fn write_number(number: &Number, out: &mut Vec<u8>) {
    // JS has only doubles: a 64-bit integer beyond 2^53 loses precision in
    // JSON.parse, and `JSON.stringify` prints the rounded double.
    let double = if let Some(i) = number.as_i64() {
        i as f64
    } else if let Some(u) = number.as_u64() {
        u as f64
    } else {
        number.as_f64().unwrap_or(0.0)
    };
    if double.is_finite() {
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format_finite(double).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\x0c' => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(byte >> 4) as usize], HEX[(byte & 0xf) as usize]]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stringify(text: &str) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        write_js_json(&value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_v8_for_numbers() {
        assert_eq!(
            stringify("[1.0, 1e2, 1.5e-7, 1e21, -0, 12345678901234567890, 0.1]"),
            "[1,100,1.5e-7,1e+21,0,12345678901234567000,0.1]"
        );
    }

    #[test]
    fn matches_v8_for_strings() {
        assert_eq!(
            stringify(r#"["a\/b", "\u00e9", "\u0001\u001f", "q\"\\", "\b\f\n\r\t", "\u2028"]"#),
            "[\"a/b\",\"é\",\"\\u0001\\u001f\",\"q\\\"\\\\\",\"\\b\\f\\n\\r\\t\",\"\u{2028}\"]"
        );
    }

    #[test]
    fn matches_v8_for_key_order() {
        assert_eq!(
            stringify(r#"{"b": 1, "10": 2, "a": {"2": 0, "1": 0}, "01": 3, "b": 4}"#),
            r#"{"10":2,"b":4,"a":{"1":0,"2":0},"01":3}"#
        );
    }
}
