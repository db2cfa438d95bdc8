//! Named fields: what every decoder yields, so `map dump` tables and
//! `--json` come from one place, ordered and printed the same way.

use std::net::IpAddr;

use serde_json::Value;

/// Named fields in a fixed order (table columns follow it; JSON objects
/// keep it too).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Fields(pub Vec<(&'static str, Value)>);

impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
    }
}

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `fields!{"a" => x, "b" => y}`: [`Fields`] from JSON-convertible values.
macro_rules! fields {
    ($($k:literal => $v:expr),* $(,)?) => {
        Fields(vec![$(($k, serde_json::json!($v))),*])
    };
}
pub(crate) use fields;

/// One decoded entry. `value` sums per-CPU values; `per_cpu` keeps them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Decoded {
    pub key: Fields,
    pub value: Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_cpu: Option<Vec<Fields>>,
}

pub fn compare_fields(a: &Fields, b: &Fields) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for ((_, x), (_, y)) in a.0.iter().zip(&b.0) {
        let o = match (x, y) {
            (Value::Number(m), Value::Number(n)) => m
                .as_f64()
                .partial_cmp(&n.as_f64())
                .unwrap_or(Ordering::Equal),
            (Value::String(s), Value::String(t)) => {
                // Addresses in address order (IPv4 before IPv6).
                match (s.parse::<IpAddr>(), t.parse::<IpAddr>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => s.cmp(t),
                }
            }
            _ => x.to_string().cmp(&y.to_string()),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A JSON scalar as a table cell: strings without quotes, lists joined.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
