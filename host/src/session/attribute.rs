//! Attribute paths over the session's free-form data: `order.amount`,
//! `tags[0]`, `customer.tags[2].name`.

use serde_json::Value;

/// The value at `path`, or `None` when any step is missing. A JSON null at
/// the path is `Some(Value::Null)`: missing and null stay distinct.
pub fn lookup<'a>(root: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut steps = path.split('.');
    let first = steps.next()?;
    let (key, indices) = split_indices(first)?;
    let mut current = index_into(root.get(key)?, &indices)?;
    for step in steps {
        let (key, indices) = split_indices(step)?;
        current = index_into(current.as_object()?.get(key)?, &indices)?;
    }
    Some(current)
}

/// `tags[0][1]` → (`tags`, [0, 1]); `None` for a malformed step.
fn split_indices(step: &str) -> Option<(&str, Vec<usize>)> {
    let Some(open) = step.find('[') else {
        return Some((step, Vec::new()));
    };
    let (key, mut rest) = step.split_at(open);
    let mut indices = Vec::new();
    while let Some(stripped) = rest.strip_prefix('[') {
        let close = stripped.find(']')?;
        indices.push(stripped[..close].trim().parse().ok()?);
        rest = &stripped[close + 1..];
    }
    rest.is_empty().then_some((key, indices))
}

fn index_into<'a>(mut value: &'a Value, indices: &[usize]) -> Option<&'a Value> {
    for &i in indices {
        value = value.as_array()?.get(i)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_nested_values_and_keep_null_distinct() {
        let root =
            json!({"order": {"amount": 129.5, "items": [{"sku": "A1"}]}, "tags": ["vip", "repeat"], "note": null});
        let root = root.as_object().unwrap();
        assert_eq!(lookup(root, "order.amount"), Some(&json!(129.5)));
        assert_eq!(lookup(root, "order.items[0].sku"), Some(&json!("A1")));
        assert_eq!(lookup(root, "tags[1]"), Some(&json!("repeat")));
        assert_eq!(lookup(root, "note"), Some(&Value::Null));
        assert_eq!(lookup(root, "missing"), None);
        assert_eq!(lookup(root, "tags[9]"), None);
        assert_eq!(lookup(root, "tags[x]"), None);
        assert_eq!(lookup(root, "order.amount.deeper"), None);
    }
}
