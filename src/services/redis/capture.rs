//! Capturing Redis keys as a key fixture (the JSON the `json` seed takes): strings, hashes,
//! lists, sets and sorted sets with their scores, and the time each key had left to live.

use redis::AsyncCommands as _;

use crate::config::capture::{
    self, CaptureError, CapturePlan, Captured, MaskRule, MaskTarget, toml_string,
};
use crate::config::glob_match;
use crate::names::ServiceKind;

/// The fixture's file name.
pub const FIXTURE: &str = "redis.json";

/// One key as read, before masks.
#[derive(Debug)]
enum Read {
    String(Vec<u8>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

/// Captures the keys matching `patterns` from the server at `url`.
pub async fn capture(
    url: &str,
    patterns: &[String],
    plan: &CapturePlan,
) -> Result<Captured, CaptureError> {
    let place = crate::redact::register_url(url);
    let client = redis::Client::open(url).map_err(|e| {
        CaptureError::Input(format!(
            "--redis: not a Redis URL (redis://[user:password@]host:port/db): {}",
            crate::redact::redact(&e.to_string())
        ))
    })?;
    let broken = |e: redis::RedisError| {
        CaptureError::Unavailable(format!(
            "redis at {place}: {}",
            crate::redact::redact(&e.to_string())
        ))
    };
    let mut c = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.get_multiplexed_async_connection_with_config(&super::connection_config()),
    )
    .await
    .map_err(|_| CaptureError::Unavailable(format!("redis at {place}: no answer within 10s")))?
    .map_err(broken)?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for pattern in patterns {
        use futures_util::StreamExt;
        let mut iter = c
            .scan_options::<Vec<u8>>(
                redis::ScanOptions::default()
                    .with_pattern(pattern)
                    .with_count(1000),
            )
            .await
            .map_err(broken)?;
        while let Some(k) = iter.next().await {
            keys.push(k.map_err(broken)?);
        }
    }
    keys.sort();
    keys.dedup();
    let mut lines = Vec::new();
    for key in &keys {
        let name = String::from_utf8(key.clone()).map_err(|_| {
            CaptureError::Input(format!(
                "redis key {}: its name is not UTF-8, which a key fixture cannot hold",
                String::from_utf8_lossy(key)
            ))
        })?;
        let key_masks: Vec<&MaskRule> = plan
            .masks
            .iter()
            .filter_map(|m| match &m.target {
                MaskTarget::Keys { pattern } if glob_match(pattern, &name) => Some(&m.rule),
                _ => None,
            })
            .collect();
        if key_masks.contains(&&MaskRule::Drop) {
            continue;
        }
        let (kind, pttl): (String, i64) = redis::pipe()
            .cmd("TYPE")
            .arg(key)
            .cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .map_err(broken)?;
        let value = match kind.as_str() {
            "none" => continue, // expired or deleted since SCAN
            "string" => Read::String(c.get(key).await.map_err(broken)?),
            "hash" => Read::Hash(c.hgetall(key).await.map_err(broken)?),
            "list" => Read::List(c.lrange(key, 0, -1).await.map_err(broken)?),
            "set" => {
                let mut m: Vec<Vec<u8>> = c.smembers(key).await.map_err(broken)?;
                m.sort();
                Read::Set(m)
            }
            "zset" => Read::ZSet(c.zrange_withscores(key, 0, -1).await.map_err(broken)?),
            other => {
                return Err(CaptureError::Input(format!(
                    "redis key {name} is a {other}, which a key fixture cannot hold: leave it out of --keys or drop it (--mask redis:{name}=drop)"
                )));
            }
        };
        let field_masks: Vec<(&str, &MaskRule)> = plan
            .masks
            .iter()
            .filter_map(|m| match &m.target {
                MaskTarget::Field { pattern, field } if glob_match(pattern, &name) => {
                    Some((field.as_str(), &m.rule))
                }
                _ => None,
            })
            .collect();
        let json = entry(&name, value, &key_masks, &field_masks, &plan.salt)?;
        // What it had left to live, rounded up: a key about to expire keeps a TTL of 1.
        let ttl = (pttl > 0).then(|| (pttl as u64).div_ceil(1000));
        let line = match (json, ttl) {
            (serde_json::Value::Object(mut o), ttl) if o.contains_key("type") => {
                if o["type"] == "string" && ttl.is_none() {
                    o["value"].clone()
                } else {
                    if let Some(t) = ttl {
                        o.insert("ttl".into(), t.into());
                    }
                    serde_json::Value::Object(o)
                }
            }
            (other, _) => other,
        };
        lines.push(format!(
            "  {}: {}",
            serde_json::Value::String(name),
            serde_json::to_string(&line).unwrap_or_default()
        ));
    }
    let text = if lines.is_empty() {
        "{}\n".to_string()
    } else {
        format!("{{\n{}\n}}\n", lines.join(",\n"))
    };
    let sink = patterns
        .iter()
        .map(|p| format!("keys = {}", toml_string(p)))
        .collect();
    Ok(Captured {
        kind: ServiceKind::Redis,
        what: format!("keys {}", patterns.join(", ")),
        file: FIXTURE.into(),
        bytes: text.into_bytes(),
        count: lines.len() as u64,
        seed: vec![format!("json = {}", toml_string(FIXTURE))],
        sink,
    })
}

/// One key's fixture entry, `{"type": ..., "value": ...}`, masks applied.
fn entry(
    name: &str,
    value: Read,
    key_masks: &[&MaskRule],
    field_masks: &[(&str, &MaskRule)],
    salt: &str,
) -> Result<serde_json::Value, CaptureError> {
    let text = |bytes: Vec<u8>| -> Result<String, CaptureError> {
        let masked = key_masks
            .iter()
            .fold(bytes, |v, rule| capture::mask_text(rule, salt, &v));
        String::from_utf8(masked).map_err(|_| {
            CaptureError::Input(format!(
                "redis key {name}: a value is not UTF-8 text, which a key fixture cannot hold: mask it (--mask redis:{name}=hash) or drop it"
            ))
        })
    };
    use serde_json::{Map, Value as J};
    let (kind, value) = match value {
        Read::String(v) => ("string", J::String(text(v)?)),
        Read::Hash(fields) => {
            let mut out = Map::new();
            let mut fields = fields;
            fields.sort();
            'fields: for (f, v) in fields {
                let field = text(f)?;
                let mut v = v;
                for (name, rule) in field_masks {
                    if *name == field {
                        if **rule == MaskRule::Drop {
                            continue 'fields;
                        }
                        v = capture::mask_text(rule, salt, &v);
                    }
                }
                out.insert(field, J::String(text(v)?));
            }
            ("hash", J::Object(out))
        }
        Read::List(items) => (
            "list",
            J::Array(
                items
                    .into_iter()
                    .map(|i| text(i).map(J::String))
                    .collect::<Result<_, _>>()?,
            ),
        ),
        Read::Set(members) => {
            let mut m: Vec<String> = members.into_iter().map(text).collect::<Result<_, _>>()?;
            m.sort();
            m.dedup();
            ("set", J::Array(m.into_iter().map(J::String).collect()))
        }
        Read::ZSet(members) => {
            let mut out = Map::new();
            for (m, score) in members {
                let n = serde_json::Number::from_f64(score).ok_or_else(|| {
                    CaptureError::Input(format!(
                        "redis key {name}: a score of {score}, which JSON cannot hold"
                    ))
                })?;
                out.insert(text(m)?, J::Number(n));
            }
            ("zset", J::Object(out))
        }
    };
    let mut o = Map::new();
    o.insert("type".into(), J::String(kind.into()));
    o.insert("value".into(), value);
    Ok(J::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_fields_are_masked_or_dropped_by_name() {
        let v = Read::Hash(vec![
            (b"name".to_vec(), b"Ann".to_vec()),
            (b"email".to_vec(), b"ann@example.com".to_vec()),
            (b"token".to_vec(), b"s3cr3t".to_vec()),
        ]);
        let hash = MaskRule::Hash { len: 8 };
        let j = entry(
            "user:1",
            v,
            &[],
            &[("email", &hash), ("token", &MaskRule::Drop)],
            "",
        )
        .expect("entry");
        assert_eq!(
            j.to_string(),
            format!(
                "{{\"type\":\"hash\",\"value\":{{\"email\":\"{}\",\"name\":\"Ann\"}}}}",
                capture::hash_text("", b"ann@example.com", 8)
            )
        );
    }

    #[test]
    fn bytes_that_are_not_text_need_a_mask() {
        let e = entry("bin", Read::String(vec![0xff, 0x00]), &[], &[], "").expect_err("binary");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let hash = MaskRule::Hash { len: 4 };
        assert!(entry("bin", Read::String(vec![0xff]), &[&hash], &[], "").is_ok());
    }
}
