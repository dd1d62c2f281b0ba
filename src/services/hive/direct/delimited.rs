//! Files of a `USING csv` table, read as Spark's CSV reader reads them with the table's options
//! and schema: one record per line, fields by position, a field equal to `nullValue` (or an
//! empty field without quotes) NULL, the header line skipped when `header` is set. The lines
//! are split here rather than by the `csv` crate because Spark tells `""` (an empty string,
//! unless `nullValue` is empty) from an empty field (NULL), which that crate does not report.
//! Anything Spark may read another way (a record over several lines, a carriage return, a
//! blank line, a quote or escape outside the forms Spark writes, a field count other than the
//! schema's, an option not handled here) leaves the table to Spark.

use serde_json::Value as J;

use super::text;
use crate::services::hive::spark_type::{self, Field, SparkType};

/// The options of a `USING csv` table the harness reads itself.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// `sep` (or `delimiter`): one character.
    pub sep: char,
    /// `header`: the first line of every file is skipped.
    pub header: bool,
    /// `nullValue`: the text read as NULL.
    pub null_value: String,
    /// `escape`: `\` (Spark's default) or `"` (quotes doubled inside quotes).
    pub escape: char,
}

/// The quote character; any other `quote` option is left to Spark.
const QUOTE: char = '"';

impl Default for CsvOptions {
    /// Spark's defaults.
    fn default() -> CsvOptions {
        CsvOptions {
            sep: ',',
            header: false,
            null_value: String::new(),
            escape: '\\',
        }
    }
}

impl CsvOptions {
    /// The column names of a header line as Spark takes them when no schema is given; `None`
    /// for an empty name or two that differ only in case (Spark renames those).
    pub fn header_names(&self, line: &str) -> Option<Vec<String>> {
        let names: Vec<String> = self.split(line)?.into_iter().collect::<Option<_>>()?;
        let distinct = names
            .iter()
            .enumerate()
            .all(|(i, n)| !n.is_empty() && !names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)));
        distinct.then_some(names)
    }

    /// The options from a table's storage options (keys as Spark takes them, in any case);
    /// `Err` names the first one not handled exactly.
    pub fn from_options(options: &[(String, String)]) -> Result<CsvOptions, String> {
        let mut out = CsvOptions::default();
        for (key, value) in options {
            let single = {
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some(c),
                    _ => None,
                }
            };
            match (key.to_ascii_lowercase().as_str(), single) {
                ("sep" | "delimiter", Some(c)) if !"\"\\\r\n".contains(c) => out.sep = c,
                ("header", _) if text::boolean(value).is_some() => {
                    out.header = text::boolean(value) == Some(true);
                }
                ("nullvalue", _) => out.null_value = value.clone(),
                ("quote", Some(QUOTE)) => {}
                ("escape", Some(c @ ('\\' | QUOTE))) => out.escape = c,
                _ => return Err(format!("its CSV option {key}={value:?}")),
            }
        }
        Ok(out)
    }

    /// The fields of one line: `None` for an empty field without quotes (univocity's null),
    /// the text otherwise; `None` overall for a line Spark may split another way.
    fn split(&self, line: &str) -> Option<Vec<Option<String>>> {
        let mut fields = Vec::new();
        let mut rest = line;
        loop {
            if let Some(quoted) = rest.strip_prefix(QUOTE) {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    let (i, c) = chars.next()?;
                    if c == self.escape && self.escape != QUOTE {
                        match chars.next()? {
                            (_, e) if e == QUOTE || e == self.escape => value.push(e),
                            _ => return None,
                        }
                    } else if c == QUOTE {
                        if self.escape == QUOTE && quoted[i + 1..].starts_with(QUOTE) {
                            chars.next();
                            value.push(QUOTE);
                        } else {
                            break i + 1;
                        }
                    } else {
                        value.push(c);
                    }
                };
                fields.push(Some(value));
                rest = &quoted[end..];
                if rest.is_empty() {
                    return Some(fields);
                }
                rest = rest.strip_prefix(self.sep)?;
            } else {
                let (field, next) = match rest.split_once(self.sep) {
                    Some((f, n)) => (f, Some(n)),
                    None => (rest, None),
                };
                // Spark keeps an escape character without quotes as it is (`\N`), but one
                // before a quote or another escape is not certain.
                let doubled = [self.escape, self.escape].iter().collect::<String>();
                if field.contains(QUOTE) || field.contains(&doubled) {
                    return None;
                }
                fields.push((!field.is_empty()).then(|| field.to_string()));
                match next {
                    Some(n) => rest = n,
                    None => return Some(fields),
                }
            }
        }
    }

    /// A field as Spark converts it into `ty`, encoded as the session encodes it.
    fn convert(&self, field: Option<String>, ty: &SparkType) -> Option<J> {
        let Some(field) = field.filter(|f| *f != self.null_value) else {
            return Some(J::Null);
        };
        Some(match ty {
            SparkType::Byte | SparkType::Short | SparkType::Int | SparkType::Long => {
                let (min, max) = text::integer_range(ty)?;
                J::from(text::integer(&field, min, max)?)
            }
            SparkType::Double => spark_type::python_float(text::csv_floating(&field, false)?),
            SparkType::Float => spark_type::python_float(text::csv_floating(&field, true)?),
            SparkType::Boolean => J::Bool(text::boolean(&field)?),
            SparkType::Decimal(p, s) => J::String(text::decimal(&field, *p, *s)?),
            SparkType::String => J::String(field),
            SparkType::Date => J::String(text::date(&field)?),
            SparkType::Timestamp => J::String(text::timestamp(&field, true)?),
            SparkType::TimestampNtz => J::String(text::timestamp(&field, false)?),
            _ => return None,
        })
    }

    /// The rows of one file's text, with `data` as the columns; `Err` names the first line
    /// Spark may read otherwise.
    pub fn read(&self, content: &str, data: &[Field]) -> Result<Vec<Vec<J>>, String> {
        if content.contains('\r') || content.starts_with('\u{feff}') {
            return Err("a carriage return or a byte-order mark".into());
        }
        let mut lines = content.lines();
        // Spark takes the first line that is not blank for the header.
        if self.header && lines.next().is_some_and(|l| l.trim().is_empty()) {
            return Err("a blank first line".into());
        }
        text::rows_of_lines(lines, 1 + usize::from(self.header), |line| {
            if line.trim().is_empty() {
                return None;
            }
            let fields = self.split(line).filter(|f| f.len() == data.len())?;
            fields
                .into_iter()
                .zip(data)
                .map(|(v, f)| self.convert(v, &f.ty))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(pairs: &[(&str, &str)]) -> Result<CsvOptions, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CsvOptions::from_options(&pairs)
    }

    #[test]
    fn lines_spark_writes_are_read_as_the_session_reads_them() {
        let data = [
            Field::new("i", SparkType::Int),
            Field::new("f", SparkType::Float),
            Field::new("d", SparkType::Double),
            Field::new("small", SparkType::Decimal(10, 2)),
            Field::new("t", SparkType::String),
            Field::new("ok", SparkType::Boolean),
            Field::new("day", SparkType::Date),
            Field::new("at", SparkType::Timestamp),
            Field::new("wall", SparkType::TimestampNtz),
        ];
        let default = options(&[]).expect("defaults");
        let text = concat!(
            "3,0.1,1.0E16,1.50,\"h\u{e9}llo \\\"quoted\\\", back\\\\slash\",true,2024-05-01,",
            "2024-05-01T12:30:15.123Z,1999-12-31T23:59:59.000\n",
            "-2147483648,Infinity,-0.0,0.00,\"\",FALSE,1970-01-01,1970-01-01T00:00:00.000Z,",
            "2038-01-19T03:14:08.000\n",
            "5,NaN,-Inf,,x,,,,\n",
        );
        let rows = default.read(text, &data).expect("read");
        assert_eq!(
            rows[0],
            vec![
                json!(3),
                json!(0.10000000149011612),
                json!(1e16),
                json!("1.50"),
                json!("h\u{e9}llo \"quoted\", back\\slash"),
                json!(true),
                json!("2024-05-01"),
                json!("2024-05-01 12:30:15.123000"),
                json!("1999-12-31 23:59:59"),
            ]
        );
        // A quoted empty string is NULL when nullValue is empty, as the session reads it.
        assert_eq!(rows[1][4], J::Null);
        assert_eq!(rows[1][1], json!("Infinity"));
        assert_eq!(rows[1][2], json!(-0.0));
        assert_eq!(rows[2][2], json!("-Infinity"));
        assert_eq!(rows[2][3], J::Null);
        assert_eq!(rows[2][4], json!("x"));

        // With another nullValue, "" is an empty string and the empty field still NULL.
        let piped =
            options(&[("header", "true"), ("sep", "|"), ("nullValue", "\\N")]).expect("handled");
        let text = "a|b\n\"\"||\n\\N|\"\\\\N\"\n";
        let two = [
            Field::new("a", SparkType::String),
            Field::new("b", SparkType::String),
        ];
        let err = piped.read(text, &two).expect_err("three fields");
        assert!(err.contains("line 2"), "{err}");
        let text = "a|b\n\"\"|\n\\N|\"\\\\N\"\n";
        assert_eq!(
            piped.read(text, &two).expect("read"),
            vec![vec![json!(""), J::Null], vec![J::Null, J::Null]]
        );
    }

    #[test]
    fn anything_spark_reads_another_way_is_left_to_it() {
        let default = options(&[]).expect("defaults");
        let one = [Field::new("t", SparkType::String)];
        let two = [
            Field::new("n", SparkType::Int),
            Field::new("t", SparkType::String),
        ];
        for (text, data) in [
            ("1,\"two\nlines\"\n", &two[..]),
            ("1,a\r\n", &two),
            ("1,a\n\n2,b\n", &two),
            ("1,a,b\n", &two),
            ("1\n", &two),
            (" 1,a\n", &two),
            ("1,a\"b\n", &two),
            ("1,a\\\\b\n", &two),
            ("1,\"a\" \n", &two),
            ("1,\"a\\tb\"\n", &two),
            ("\u{feff}a\n", &one),
        ] {
            assert!(default.read(text, data).is_err(), "{text:?}");
        }
        let doubled = options(&[("escape", "\"")]).expect("handled");
        assert_eq!(
            doubled.read("1,\"a\"\"b\"\n", &two).expect("read"),
            vec![vec![json!(1), json!("a\"b")]]
        );
        assert!(options(&[("quote", "'")]).is_err());
        assert!(options(&[("dateFormat", "d/M/y")]).is_err());
        assert!(options(&[("sep", "::")]).is_err());
        assert!(options(&[("header", "yes")]).is_err());
    }
}
