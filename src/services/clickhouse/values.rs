//! ClickHouse values as canonical ones, by the column's type: numbers and text from their TSV
//! spelling, and `Array(T)` / `Tuple(...)` / `Map(K, V)` fields (`[1,2]`, `['a','b\'c']`,
//! `(1,'x')`, `{'k':1}`) read element by element as lists (tuples too, or structs when their
//! elements are named) and maps.

use super::unescape;
use crate::snapshot::Value;

/// One TSV field of a column of ClickHouse type `ty` as a canonical value.
pub(super) fn value(ty: &str, field: &str) -> Value {
    if field == "\\N" {
        return Value::Null;
    }
    let base = strip_wrappers(ty);
    if ["Array(", "Tuple(", "Map("]
        .iter()
        .any(|t| base.starts_with(t))
    {
        // Elements are spelled in ClickHouse's quoted form, strings escaped inside their quotes.
        let mut r = Literal { s: field, pos: 0 };
        return match r.value(base) {
            Some(v) if r.pos == field.len() => v,
            _ => Value::Text(unescape(field).into()),
        };
    }
    scalar(base, unescape(field))
}

fn scalar(base: &str, text: String) -> Value {
    if base.starts_with("Int") || base.starts_with("UInt") {
        // UInt64 beyond i64 stays exact, as text.
        return text
            .parse()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Numeric(text.into()));
    }
    if base.starts_with("Float") {
        return match text.as_str() {
            "nan" | "-nan" => Value::Float(f64::NAN),
            "inf" | "+inf" => Value::Float(f64::INFINITY),
            "-inf" => Value::Float(f64::NEG_INFINITY),
            t => t
                .parse()
                .map(Value::Float)
                .unwrap_or_else(|_| Value::Text(text.into())),
        };
    }
    if base.starts_with("Decimal") {
        return Value::Numeric(text.into());
    }
    Value::Text(text.into())
}

/// `Nullable(T)` and `LowCardinality(T)` render as `T` does.
pub(super) fn strip_wrappers(ty: &str) -> &str {
    let mut t = ty;
    for wrapper in ["Nullable(", "LowCardinality("] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix(')')) {
            t = inner;
        }
    }
    if let Some(inner) = t
        .strip_prefix("Nullable(")
        .and_then(|r| r.strip_suffix(')'))
    {
        t = inner;
    }
    t
}

/// The arguments of `Name(a, b(c, d))`, split at the commas outside parentheses.
fn args<'t>(ty: &'t str, name: &str) -> Option<Vec<&'t str>> {
    let inner = ty
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(inner[start..].trim());
    Some(out)
}

/// A named tuple element (`name Type`) as its name and type.
fn named(arg: &str) -> Option<(&str, &str)> {
    let space = arg.find(' ')?;
    (!arg[..space].contains('(')).then(|| (&arg[..space], arg[space + 1..].trim()))
}

/// Reads a field in ClickHouse's quoted form; positions are byte offsets into `s`.
struct Literal<'a> {
    s: &'a str,
    pos: usize,
}

impl Literal<'_> {
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.s.as_bytes().get(self.pos) == Some(&c)).then(|| self.pos += 1)
    }

    fn value(&mut self, ty: &str) -> Option<Value> {
        let base = strip_wrappers(ty);
        if let Some(elem) = args(base, "Array") {
            let elem = elem.first().copied().unwrap_or("");
            self.eat(b'[')?;
            let mut items = Vec::new();
            if self.eat(b']').is_none() {
                loop {
                    items.push(self.value(elem)?);
                    if self.eat(b']').is_some() {
                        break;
                    }
                    self.eat(b',')?;
                }
            }
            return Some(Value::List(items));
        }
        if let Some(kv) = args(base, "Map") {
            let (key_ty, value_ty) = (kv.first().copied()?, kv.get(1).copied()?);
            self.eat(b'{')?;
            let mut entries = Vec::new();
            if self.eat(b'}').is_none() {
                loop {
                    let k = self.value(key_ty)?;
                    self.eat(b':')?;
                    entries.push((k, self.value(value_ty)?));
                    if self.eat(b'}').is_some() {
                        break;
                    }
                    self.eat(b',')?;
                }
            }
            return Some(Value::Map(entries));
        }
        if let Some(elems) = args(base, "Tuple") {
            self.eat(b'(')?;
            let names: Option<Vec<(&str, &str)>> = elems.iter().map(|e| named(e)).collect();
            let mut items = Vec::new();
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    self.eat(b',')?;
                }
                let elem_ty = names.as_ref().map_or(*e, |n| n[i].1);
                items.push(self.value(elem_ty)?);
            }
            self.eat(b')')?;
            return Some(match names {
                Some(n) => Value::Struct(
                    n.iter()
                        .zip(items)
                        .map(|((name, _), v)| (name.to_string(), v))
                        .collect(),
                ),
                None => Value::List(items),
            });
        }
        let b = self.s.as_bytes();
        if self.eat(b'\'').is_some() {
            let start = self.pos;
            loop {
                match *b.get(self.pos)? {
                    b'\\' => self.pos += 2,
                    b'\'' => break,
                    _ => self.pos += 1,
                }
            }
            let text = unescape(&self.s[start..self.pos]);
            self.pos += 1;
            return Some(scalar(base, text));
        }
        let start = self.pos;
        while b
            .get(self.pos)
            .is_some_and(|c| !matches!(c, b',' | b']' | b')' | b'}' | b':'))
        {
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        (!raw.is_empty()).then_some(())?;
        Some(if raw == "NULL" {
            Value::Null
        } else {
            scalar(base, raw.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(ty: &str, field: &str) -> String {
        value(ty, field).render(None)
    }

    #[test]
    fn arrays_and_tuples_are_read_element_by_element() {
        assert_eq!(render("Array(UInt32)", "[1,2,3]"), "[1, 2, 3]");
        assert_eq!(render("Array(String)", "[]"), "[]");
        assert_eq!(
            render(
                "Array(Nullable(String))",
                r"['a','b\'c','t\tab',NULL,'x,]']"
            ),
            r#"["a", "b'c", "t\tab", NULL, "x,]"]"#
        );
        assert_eq!(
            render("Array(Array(Float64))", "[[0.5,inf],[nan]]"),
            "[[0.5, inf], [NaN]]"
        );
        assert_eq!(
            render("Tuple(UInt8, String, Decimal(9, 2))", "(1,'x',0.10)"),
            r#"[1, "x", 0.10]"#
        );
        assert_eq!(
            render("Array(Tuple(String, Float64))", "[('a',0.5),('b',1)]"),
            r#"[["a", 0.5], ["b", 1.0]]"#
        );
        assert_eq!(
            render("Tuple(id UInt8, name String)", "(7,'n')"),
            r#"{id: 7, name: "n"}"#
        );
        // Map exists from ClickHouse 21.1 on.
        assert_eq!(
            render("Map(String, Array(UInt8))", "{'b':[2],'a':[]}"),
            r#"{"a": [], "b": [2]}"#
        );
        assert_eq!(render("Array(UInt8)", r"\N"), "NULL");
        // A field that does not read as its type stays text.
        assert_eq!(render("Array(UInt8)", "[1,2"), r#""[1,2""#);
    }
}
