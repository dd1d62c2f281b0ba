//! What `harness capture` takes: the tables, queries and Redis key patterns to read from
//! running services, the row limit or sample, and the masking rules, from the command line or a
//! capture spec file, parsed once into types that cannot be invalid. Also the masks' functions
//! themselves, the same for every kind, so that a hashed id still joins across PostgreSQL, Hive
//! and Redis (docs/capture.md).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::names::ServiceKind;

/// Characters of a `hash` mask when the rule does not say.
pub const HASH_LEN: usize = 16;

/// A capture that cannot go on: bad input (exit 2) or a service that does not answer (exit 3).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    /// A bad flag, spec line, table, query or mask; the message names it.
    #[error("{0}")]
    Input(String),
    /// A service that cannot be reached or broke off.
    #[error("{0}")]
    Unavailable(String),
}

/// One table to capture: a table of the service, or a query's rows under a table name.
#[derive(Debug, Clone, PartialEq)]
pub struct TableTarget {
    /// `postgres`, `hive` or `clickhouse`.
    pub kind: ServiceKind,
    /// `table` or `schema.table`: the table read, or the one a query's rows are seeded into.
    pub name: String,
    /// The query whose rows are captured, instead of the table's.
    pub query: Option<String>,
}

impl TableTarget {
    /// The flag that asks for it, for messages: `--table postgres:public.users`.
    pub fn flag(&self) -> String {
        let flag = if self.query.is_some() {
            "query"
        } else {
            "table"
        };
        format!("--{flag} {}:{}", self.kind.name(), self.name)
    }

    /// What it reads, on one line (it goes into comments): `table public.users`, or
    /// `` query `SELECT ...` as table public.active ``.
    pub fn what(&self) -> String {
        match &self.query {
            Some(q) => format!(
                "query `{}` as table {}",
                q.split_whitespace().collect::<Vec<_>>().join(" "),
                self.name
            ),
            None => format!("table {}", self.name),
        }
    }
}

/// What a mask does to a value (NULL stays NULL under every rule).
#[derive(Debug, Clone, PartialEq)]
pub enum MaskRule {
    /// The column, key or hash field is left out.
    Drop,
    /// Every value becomes this text.
    Fixed(String),
    /// Every value becomes the first `len` hex digits of SHA-256(salt + value); an integer
    /// column gets a number made of the same digest instead (see [`hash_int`]).
    Hash {
        /// Hex digits kept, 1 to 64.
        len: usize,
    },
}

/// What a mask applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskTarget {
    /// A column of a captured table (`postgres:schema.table.column`).
    Column {
        /// `postgres` or `hive`.
        kind: ServiceKind,
        /// The captured table, as in its target.
        table: String,
        /// The column.
        column: String,
    },
    /// Redis keys matching a pattern (`redis:PATTERN`): the whole value.
    Keys {
        /// `*` matches any run of characters.
        pattern: String,
    },
    /// One field of the Redis hashes matching a pattern (`redis:PATTERN#FIELD`).
    Field {
        /// `*` matches any run of characters.
        pattern: String,
        /// The hash field.
        field: String,
    },
}

/// One masking rule and where it was written (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// What it masks.
    pub target: MaskTarget,
    /// How.
    pub rule: MaskRule,
    /// `--mask ...` or `capture.toml:3`.
    pub origin: String,
}

/// Everything one capture reads and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturePlan {
    /// Tables and queries, in the order given.
    pub tables: Vec<TableTarget>,
    /// Redis key patterns.
    pub keys: Vec<String>,
    /// At most this many rows per table (the first ones in the table's order).
    pub limit: Option<u64>,
    /// Keep each row with this probability, chosen by a hash of the row (or its primary key).
    pub sample: Option<f64>,
    /// Mixed into the sample's hash: another seed picks another sample.
    pub seed: String,
    /// Masking rules.
    pub masks: Vec<Mask>,
    /// Mixed into every `hash` mask.
    pub salt: String,
}

impl CapturePlan {
    /// The masks of one table's columns.
    pub fn column_masks(&self, kind: ServiceKind, table: &str) -> Vec<(&str, &MaskRule)> {
        self.masks
            .iter()
            .filter_map(|m| match &m.target {
                MaskTarget::Column {
                    kind: k,
                    table: t,
                    column,
                } if *k == kind && t == table => Some((column.as_str(), &m.rule)),
                _ => None,
            })
            .collect()
    }

    /// Checks what only the whole plan can tell: something to capture, masks naming captured
    /// tables and key patterns, no table twice.
    pub fn check(&self) -> Result<(), CaptureError> {
        if self.tables.is_empty() && self.keys.is_empty() {
            return Err(CaptureError::Input(
                "nothing to capture: give --table, --query or --keys (or a --spec file with them)"
                    .into(),
            ));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables[..i]
                .iter()
                .any(|o| o.kind == t.kind && o.name == t.name)
            {
                return Err(CaptureError::Input(format!(
                    "{}:{} is captured twice (a --table and a --query, or twice the same)",
                    t.kind.name(),
                    t.name
                )));
            }
        }
        for m in &self.masks {
            match &m.target {
                MaskTarget::Column { kind, table, .. } => {
                    if !self
                        .tables
                        .iter()
                        .any(|t| t.kind == *kind && &t.name == table)
                    {
                        return Err(CaptureError::Input(format!(
                            "{}: {}:{table} is not captured (no --table or --query names it)",
                            m.origin,
                            kind.name()
                        )));
                    }
                }
                MaskTarget::Keys { pattern } | MaskTarget::Field { pattern, .. } => {
                    if self.keys.is_empty() {
                        return Err(CaptureError::Input(format!(
                            "{}: the redis pattern `{pattern}` masks nothing: no --keys are captured",
                            m.origin
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What one capture reader gives back: a fixture file, and the `[[seed]]` and `[[sink]]` that
/// use it in the scenario skeleton.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// The kind it came from.
    pub kind: ServiceKind,
    /// What was read, for people: `table public.users (primary key id)`, `keys user:*`.
    pub what: String,
    /// The fixture's file name, in the scenario folder.
    pub file: String,
    /// The fixture's bytes.
    pub bytes: Vec<u8>,
    /// Rows or keys captured.
    pub count: u64,
    /// The seed's keys after `service`, as TOML lines (`sql = "..."`).
    pub seed: Vec<String>,
    /// The sink's keys after `name` and `service`, as TOML lines.
    pub sink: Vec<String>,
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A fixture file name for a kind's table: `postgres.public.users.sql`.
pub fn fixture_name(kind: ServiceKind, table: &str, ext: &str) -> String {
    let safe: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.{safe}.{ext}", kind.name())
}

/// `table` or `schema.table`, each part non-empty and without quotes.
fn check_table(name: &str, what: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty() || p.contains(['"', '`'])) {
        return Err(format!(
            "{what}: `{name}` is not a table name: write `table` or `schema.table`"
        ));
    }
    Ok(())
}

/// The kind before the first `:`, for tables: postgres or hive.
fn table_kind(text: &str, what: &str) -> Result<(ServiceKind, String), String> {
    let (kind, rest) = text.split_once(':').ok_or_else(|| {
        format!("{what} {text}: write KIND:TABLE, KIND being postgres, hive or clickhouse (e.g. postgres:public.users)")
    })?;
    let kind = match kind {
        "postgres" => ServiceKind::Postgres,
        "hive" => ServiceKind::Hive,
        "clickhouse" => ServiceKind::ClickHouse,
        other => {
            return Err(format!(
                "{what} {text}: `{other}` is not a kind with tables: postgres, hive or clickhouse (redis keys go with --keys)"
            ));
        }
    };
    Ok((kind, rest.to_string()))
}

/// Parses `--table KIND:NAME`.
pub fn parse_table(text: &str) -> Result<TableTarget, String> {
    let (kind, name) = table_kind(text, "--table")?;
    check_table(&name, &format!("--table {text}"))?;
    Ok(TableTarget {
        kind,
        name,
        query: None,
    })
}

/// Parses `--query KIND:NAME=SQL`.
pub fn parse_query(text: &str) -> Result<TableTarget, String> {
    let (head, sql) = text.split_once('=').ok_or_else(|| {
        format!("--query {text}: write KIND:NAME=SELECT ..., NAME being the table its rows are seeded into")
    })?;
    let (kind, name) = table_kind(head, "--query")?;
    check_table(&name, &format!("--query {head}"))?;
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.is_empty() {
        return Err(format!("--query {head}: the query after `=` is empty"));
    }
    Ok(TableTarget {
        kind,
        name,
        query: Some(sql.to_string()),
    })
}

/// Parses a mask, `TARGET=RULE` (see docs/capture.md); `origin` names where it was written.
pub fn parse_mask(text: &str, origin: &str) -> Result<Mask, String> {
    let bad = |why: &str| format!("{origin}: `{text}`: {why}");
    let (target, rule) = text
        .split_once('=')
        .ok_or_else(|| bad("write TARGET=RULE, e.g. postgres:public.users.email=hash"))?;
    let rule = match rule {
        "drop" => MaskRule::Drop,
        "hash" => MaskRule::Hash { len: HASH_LEN },
        r if r.starts_with("hash:") => {
            let len = r["hash:".len()..]
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| bad("hash:N keeps N hex digits, N from 1 to 64"))?;
            MaskRule::Hash { len }
        }
        r if r.starts_with("fixed:") => MaskRule::Fixed(r["fixed:".len()..].to_string()),
        _ => return Err(bad("the rule is `drop`, `fixed:VALUE`, `hash` or `hash:N`")),
    };
    let target = if let Some(rest) = target.strip_prefix("redis:") {
        if rest.is_empty() {
            return Err(bad(
                "a redis mask needs a key pattern: redis:PATTERN or redis:PATTERN#FIELD",
            ));
        }
        match rest.rsplit_once('#') {
            Some((pattern, field)) if !pattern.is_empty() && !field.is_empty() => {
                MaskTarget::Field {
                    pattern: pattern.into(),
                    field: field.into(),
                }
            }
            Some(_) => return Err(bad("write redis:PATTERN#FIELD with both parts")),
            None => MaskTarget::Keys {
                pattern: rest.into(),
            },
        }
    } else {
        let (kind, rest) = table_kind(target, origin)?;
        let (table, column) = rest
            .rsplit_once('.')
            .filter(|(t, c)| !t.is_empty() && !c.is_empty())
            .ok_or_else(|| {
                bad("a column mask is KIND:TABLE.COLUMN, e.g. postgres:public.users.email")
            })?;
        check_table(table, origin)?;
        MaskTarget::Column {
            kind,
            table: table.into(),
            column: column.into(),
        }
    };
    Ok(Mask {
        target,
        rule,
        origin: origin.to_string(),
    })
}

/// Parses `--sample F`: a fraction above 0, at most 1.
pub fn parse_sample(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|f| *f > 0.0 && *f <= 1.0)
        .ok_or_else(|| {
            format!("`{text}` is not a fraction: write a number above 0 and at most 1, like 0.1")
        })
}

/// The capture spec file's keys (every one optional; the command line adds to them).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    tables: Vec<toml::Spanned<String>>,
    #[serde(default)]
    queries: std::collections::BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    keys: Vec<String>,
    limit: Option<toml::Spanned<i64>>,
    sample: Option<toml::Spanned<f64>>,
    seed: Option<String>,
    #[serde(default)]
    masks: Vec<toml::Spanned<String>>,
}

/// Reads a capture spec file into `plan` (its tables, queries, keys and masks first, then the
/// command line's); every error names the file and line.
pub fn read_spec(path: &Path, plan: &mut CapturePlan) -> Result<(), CaptureError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CaptureError::Input(format!("--spec {shown}: cannot read: {e}")))?;
    let at = |offset: usize| {
        let (line, col) = crate::diagnostic::line_col(&text, offset);
        format!("{shown}:{line}:{col}")
    };
    let raw: RawSpec = toml::from_str(&text).map_err(|e| {
        let place = e.span().map_or(shown.clone(), |s| at(s.start));
        CaptureError::Input(format!("{place}: {}", e.message()))
    })?;
    let input = |offset: usize, m: String| {
        // The parsers name the flag; a spec line names its place instead.
        let m = m
            .trim_start_matches("--table ")
            .trim_start_matches("--query ");
        CaptureError::Input(format!("{}: {m}", at(offset)))
    };
    for t in &raw.tables {
        plan.tables
            .push(parse_table(t.get_ref()).map_err(|m| input(t.span().start, m))?);
    }
    for (name, sql) in &raw.queries {
        let target = parse_query(&format!("{name}={}", sql.get_ref()))
            .map_err(|m| input(sql.span().start, m))?;
        plan.tables.push(target);
    }
    plan.keys.extend(raw.keys);
    if let Some(l) = &raw.limit {
        let n = u64::try_from(*l.get_ref())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| input(l.span().start, "limit must be 1 or more".into()))?;
        plan.limit = Some(n);
    }
    if let Some(s) = &raw.sample {
        let f = parse_sample(&s.get_ref().to_string()).map_err(|m| input(s.span().start, m))?;
        plan.sample = Some(f);
    }
    if let Some(seed) = raw.seed {
        plan.seed = seed;
    }
    for m in &raw.masks {
        let origin = at(m.span().start);
        plan.masks
            .push(parse_mask(m.get_ref(), &origin).map_err(CaptureError::Input)?);
    }
    Ok(())
}

/// The indexes of the columns no `drop` rule removes (`rules` has one entry per column); an
/// error naming `flag` when none is left.
pub fn kept_columns(rules: &[Option<&MaskRule>], flag: &str) -> Result<Vec<usize>, CaptureError> {
    let kept: Vec<usize> = (0..rules.len())
        .filter(|i| !matches!(rules[*i], Some(MaskRule::Drop)))
        .collect();
    if kept.is_empty() {
        return Err(CaptureError::Input(format!(
            "{flag}: every column is dropped by a mask"
        )));
    }
    Ok(kept)
}

/// The lowercase hex SHA-256 of `salt` followed by `value`.
fn digest_hex(salt: &str, value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(value);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A `hash` mask of a text value: the first `len` hex digits of SHA-256(salt + value).
pub fn hash_text(salt: &str, value: &[u8], len: usize) -> String {
    let mut hex = digest_hex(salt, value);
    hex.truncate(len);
    hex
}

/// A `hash` mask of an integer column: the first 8 hex digits of SHA-256(salt + value) read as
/// a number and halved (0 to 2147483647), modulo `modulus` when the column is narrower.
pub fn hash_int(salt: &str, value: &[u8], modulus: Option<u64>) -> u64 {
    let hex = digest_hex(salt, value);
    let n = u64::from_str_radix(&hex[..8], 16).unwrap_or(0) >> 1;
    match modulus {
        Some(m) if m > 0 => n % m,
        _ => n,
    }
}

/// Masks one text value (NULL stays NULL; `Drop` is the caller's: it removes the whole thing).
pub fn mask_text(rule: &MaskRule, salt: &str, value: &[u8]) -> Vec<u8> {
    match rule {
        MaskRule::Drop => value.to_vec(),
        MaskRule::Fixed(v) => v.as_bytes().to_vec(),
        MaskRule::Hash { len } => hash_text(salt, value, *len).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse_into_their_targets_and_rules() {
        let m = parse_mask("postgres:public.users.email=hash", "--mask").expect("mask");
        assert_eq!(
            m.target,
            MaskTarget::Column {
                kind: ServiceKind::Postgres,
                table: "public.users".into(),
                column: "email".into()
            }
        );
        assert_eq!(m.rule, MaskRule::Hash { len: HASH_LEN });
        let m = parse_mask("hive:t.c=fixed:a=b", "--mask").expect("mask");
        assert_eq!(m.rule, MaskRule::Fixed("a=b".into()));
        let m = parse_mask("redis:user:*#email=hash:8", "--mask").expect("mask");
        assert_eq!(
            m.target,
            MaskTarget::Field {
                pattern: "user:*".into(),
                field: "email".into()
            }
        );
        assert_eq!(m.rule, MaskRule::Hash { len: 8 });
        let m = parse_mask("redis:session:*=drop", "--mask").expect("mask");
        assert_eq!(
            m.target,
            MaskTarget::Keys {
                pattern: "session:*".into()
            }
        );
    }

    #[test]
    fn bad_masks_say_what_is_expected() {
        for (text, says) in [
            ("postgres:users=hash", "KIND:TABLE.COLUMN"),
            ("postgres:t.c=scramble", "`drop`, `fixed:VALUE`, `hash`"),
            ("postgres:t.c=hash:0", "1 to 64"),
            ("mysql:t.c=drop", "not a kind with tables"),
            ("redis:=drop", "key pattern"),
            ("postgres:t.c", "TARGET=RULE"),
        ] {
            let e = parse_mask(text, "--mask").expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn tables_and_queries_parse() {
        assert_eq!(
            parse_query("postgres:public.active=SELECT * FROM users WHERE a = 1;").expect("q"),
            TableTarget {
                kind: ServiceKind::Postgres,
                name: "public.active".into(),
                query: Some("SELECT * FROM users WHERE a = 1".into())
            }
        );
        assert!(parse_table("hive:a.b.c").is_err());
        assert_eq!(
            parse_table("clickhouse:a").map(|t| t.kind),
            Ok(ServiceKind::ClickHouse)
        );
        assert!(parse_sample("0").is_err() && parse_sample("1.5").is_err());
        assert_eq!(parse_sample("0.25"), Ok(0.25));
    }

    #[test]
    fn hashes_are_stable_salted_and_sized() {
        // sha256("ann@example.com"), as `printf %s ann@example.com | sha256sum` gives it.
        let h = hash_text("", b"ann@example.com", 64);
        assert_eq!(h.len(), 64);
        assert_eq!(hash_text("", b"ann@example.com", 16), h[..16]);
        assert_ne!(hash_text("salt", b"ann@example.com", 16), h[..16]);
        let n = hash_int("", b"42", None);
        assert!(n <= i32::MAX as u64);
        assert_eq!(
            n,
            u64::from_str_radix(&hash_text("", b"42", 8), 16).expect("hex") >> 1
        );
        assert!(hash_int("", b"42", Some(32768)) < 32768);
    }

    #[test]
    fn a_spec_file_adds_to_the_plan_and_errors_name_its_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("capture.toml");
        std::fs::write(
            &path,
            "tables = [\"postgres:public.users\"]\nkeys = [\"user:*\"]\nlimit = 10\nmasks = [\n  \"postgres:public.users.email=hash\",\n]\n[queries]\n\"postgres:public.a\" = \"SELECT 1 AS x\"\n",
        )
        .expect("write");
        let mut plan = CapturePlan::default();
        read_spec(&path, &mut plan).expect("spec");
        assert_eq!(plan.tables.len(), 2);
        assert_eq!(plan.limit, Some(10));
        assert_eq!(plan.masks[0].origin, format!("{}:5:3", path.display()));
        plan.check().expect("consistent");
        std::fs::write(&path, "masks = [\"postgres:t.c=scramble\"]\n").expect("write");
        let e = read_spec(&path, &mut CapturePlan::default()).expect_err("bad");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:1:10: ", path.display())),
            "{e}"
        );
        std::fs::write(&path, "limits = 3\n").expect("write");
        let e = read_spec(&path, &mut CapturePlan::default()).expect_err("bad");
        assert!(
            e.to_string().contains(":1:1: unknown field `limits`"),
            "{e}"
        );
    }
}
