//! PostgreSQL values as canonical ones, by the column's type, from the text the simple query
//! protocol returns: booleans, integers, floats and numerics as such, arrays (any dimension,
//! NULL elements, quoted elements) as lists, `json`/`jsonb` as nested values, the rest as text.

use tokio_postgres::types::{Kind, Type};

use crate::snapshot::Value;

/// One field of a column of type `ty` (`None`: SQL NULL) as a canonical value.
pub(super) fn value(ty: &Type, text: Option<&str>) -> Value {
    let Some(t) = text else { return Value::Null };
    match *ty {
        Type::BOOL => Value::Bool(t == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => t
            .parse()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Text(t.into())),
        Type::FLOAT4 | Type::FLOAT8 => match t {
            "NaN" => Value::Float(f64::NAN),
            "Infinity" => Value::Float(f64::INFINITY),
            "-Infinity" => Value::Float(f64::NEG_INFINITY),
            _ => t
                .parse()
                .map(Value::Float)
                .unwrap_or_else(|_| Value::Text(t.into())),
        },
        Type::NUMERIC => Value::Numeric(t.into()),
        Type::JSON | Type::JSONB => Value::from_json_text(t),
        _ => match ty.kind() {
            Kind::Array(elem) => array(elem, t).unwrap_or_else(|| Value::Text(t.into())),
            _ => Value::Text(t.into()),
        },
    }
}

/// An array in PostgreSQL's text form (`{1,NULL,3}`, `{"a,b","c\"d"}`, `{{1,2},{3,4}}`,
/// `[0:1]={7,8}`) as a list, each element read as a value of type `elem`; `None` when the text
/// is not one.
fn array(elem: &Type, text: &str) -> Option<Value> {
    // Explicit bounds are not part of the value's content; the elements are.
    let body = match text.strip_prefix('[') {
        Some(_) => &text[text.find('=')? + 1..],
        None => text,
    };
    let bytes = body.as_bytes();
    let mut pos = 0;
    let v = array_at(elem, body, bytes, &mut pos)?;
    (pos == bytes.len()).then_some(v)
}

fn array_at(elem: &Type, text: &str, b: &[u8], pos: &mut usize) -> Option<Value> {
    // The element delimiter is `,` for every type but box.
    let delim = if *elem == Type::BOX { b';' } else { b',' };
    (b.get(*pos) == Some(&b'{')).then_some(())?;
    *pos += 1;
    let mut items = Vec::new();
    if b.get(*pos) == Some(&b'}') {
        *pos += 1;
        return Some(Value::List(items));
    }
    loop {
        while b.get(*pos).is_some_and(u8::is_ascii_whitespace) {
            *pos += 1;
        }
        match *b.get(*pos)? {
            b'{' => items.push(array_at(elem, text, b, pos)?),
            b'"' => {
                let mut s = Vec::new();
                *pos += 1;
                loop {
                    match *b.get(*pos)? {
                        b'\\' => {
                            s.push(*b.get(*pos + 1)?);
                            *pos += 2;
                        }
                        b'"' => break,
                        c => {
                            s.push(c);
                            *pos += 1;
                        }
                    }
                }
                *pos += 1;
                items.push(value(elem, Some(std::str::from_utf8(&s).ok()?)));
            }
            _ => {
                let start = *pos;
                while b.get(*pos).is_some_and(|&c| c != delim && c != b'}') {
                    *pos += 1;
                }
                let raw = text[start..*pos].trim();
                items.push(if raw.eq_ignore_ascii_case("NULL") {
                    Value::Null
                } else {
                    value(elem, Some(raw))
                });
            }
        }
        while b.get(*pos).is_some_and(u8::is_ascii_whitespace) {
            *pos += 1;
        }
        match *b.get(*pos)? {
            c if c == delim => *pos += 1,
            b'}' => {
                *pos += 1;
                return Some(Value::List(items));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(ty: &Type, text: &str) -> String {
        value(ty, Some(text)).render(None)
    }

    #[test]
    fn arrays_are_read_as_lists_of_their_element_type() {
        assert_eq!(render(&Type::INT4_ARRAY, "{1,NULL,3}"), "[1, NULL, 3]");
        assert_eq!(render(&Type::INT4_ARRAY, "{}"), "[]");
        assert_eq!(
            render(
                &Type::TEXT_ARRAY,
                r#"{plain,"a,b","q\"uote","NULL",NULL," sp "}"#
            ),
            r#"["plain", "a,b", "q\"uote", "NULL", NULL, " sp "]"#
        );
        assert_eq!(
            render(&Type::FLOAT8_ARRAY, "{{1.5,2},{NaN,-Infinity}}"),
            "[[1.5, 2.0], [NaN, -inf]]"
        );
        assert_eq!(render(&Type::INT8_ARRAY, "[0:1]={7,8}"), "[7, 8]");
        assert_eq!(render(&Type::BOOL_ARRAY, "{t,f}"), "[true, false]");
        assert_eq!(
            render(&Type::JSONB_ARRAY, r#"{"{\"a\": 1}",NULL}"#),
            r#"[{"a": 1}, NULL]"#
        );
        // Text that is not an array stays text.
        assert_eq!(render(&Type::INT4_ARRAY, "{1,2"), r#""{1,2""#);
    }

    #[test]
    fn json_is_read_as_nested_values() {
        assert_eq!(
            render(&Type::JSONB, r#"{"tags": ["a", "b"], "n": 1.5}"#),
            r#"{"n": 1.5, "tags": ["a", "b"]}"#
        );
        assert_eq!(render(&Type::JSON, "[]"), "[]");
    }
}
