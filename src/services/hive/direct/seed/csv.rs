//! A CSV seed's rows as the session's Spark CSV reader reads them: a header that must name the
//! schema's columns, FAILFAST, `"` quoting with doubled quotes inside (RFC 4180), line by line
//! (no `multiLine`), so a quoted field may hold the delimiter but not a line break.

use super::value::{self, Cell};
use crate::services::hive::direct::{Direct, spark};
use crate::services::hive::spark_type::Field;

/// The fields of one line and whether each was quoted; `None` when a quote is anywhere but
/// around a whole field (doubled inside it), which Spark's parser reads its own way.
fn fields(line: &str, delimiter: u8) -> Option<Vec<(String, bool)>> {
    if !line.contains('"') {
        let fields = line.split(delimiter as char);
        return Some(fields.map(|f| (f.to_string(), false)).collect());
    }
    let bytes = line.as_bytes();
    let mut quoted = Vec::new();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
            quoted.push(true);
        } else {
            while let Some(&b) = bytes.get(i) {
                if b == delimiter {
                    break;
                }
                if b == b'"' {
                    return None;
                }
                i += 1;
            }
            quoted.push(false);
        }
        match bytes.get(i) {
            None => break,
            Some(&b) if b == delimiter => i += 1,
            Some(_) => return None,
        }
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .quote(b'"')
        .double_quote(true)
        .escape(None)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut records = reader.records();
    let record = records.next()?.ok()?;
    if records.next().is_some() || record.len() != quoted.len() {
        return None;
    }
    Some(record.iter().map(str::to_string).zip(quoted).collect())
}

/// True for a line Spark skips: empty once Java's `trim()` took the characters up to a space.
fn blank(line: &str) -> bool {
    line.chars().all(|c| c <= ' ')
}

/// Every row of `text`, in the schema's column order.
pub fn rows(
    text: &str,
    columns: &[Field],
    delimiter: u8,
    null: Option<&str>,
) -> Result<Direct<Vec<Vec<Cell>>>, String> {
    if text.starts_with('\u{feff}') || text.contains('\r') || !delimiter.is_ascii() {
        spark!("it has carriage returns or a byte-order mark");
    }
    if delimiter == b'"' {
        spark!("its delimiter is the quote");
    }
    let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
    let header = fields(lines.next().unwrap_or(""), delimiter).unwrap_or_default();
    let same_header = header.len() == columns.len()
        && header
            .iter()
            .zip(columns)
            .all(|((h, _), c)| h.eq_ignore_ascii_case(&c.name));
    if !same_header {
        spark!("its header is not the schema's columns");
    }
    // Spark's null text; an unquoted empty field is read as that text too.
    let null = null.unwrap_or("");
    let mut rows = Vec::new();
    for line in lines {
        if blank(line) {
            spark!("a line is blank");
        }
        let Some(fields) = fields(line, delimiter) else {
            spark!("a line has a quote inside a field or a line break inside quotes");
        };
        if fields.len() != columns.len() {
            spark!("a line has another number of fields");
        }
        let mut cells = Vec::with_capacity(columns.len());
        for ((text, quoted), c) in fields.iter().zip(columns) {
            if (text.is_empty() && !quoted) || text == null {
                cells.push(Cell::Null);
                continue;
            }
            match value::csv(text, &c.ty) {
                Some(cell) => cells.push(cell),
                None => spark!("a value of column {} is not one read exactly", c.name),
            }
        }
        rows.push(cells);
    }
    Ok(Direct::Done(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::hive::spark_type::SparkType;

    fn cols(types: &[(&str, SparkType)]) -> Vec<Field> {
        types
            .iter()
            .map(|(n, t)| Field {
                name: n.to_string(),
                ty: t.clone(),
            })
            .collect()
    }

    fn read(text: &str, null: Option<&str>) -> Option<Vec<Vec<Cell>>> {
        let c = cols(&[("id", SparkType::Int), ("note", SparkType::String)]);
        match rows(text, &c, b',', null).expect("no error") {
            Direct::Done(r) => Some(r),
            Direct::Spark(_) => None,
        }
    }

    #[test]
    fn quoted_fields_hold_delimiters_and_doubled_quotes() {
        let r = read(
            "\"id\",note\n1,\"a, \"\"b\"\"\"\n2,\"\"\n3,\n\"4\",x\n",
            None,
        )
        .expect("read");
        assert_eq!(r[0][1], Cell::Text("a, \"b\"".into()));
        // An empty field, quoted or not, is the default null text.
        assert_eq!(r[1][1], Cell::Null);
        assert_eq!(r[2][1], Cell::Null);
        assert_eq!(r[3][0], Cell::Int(4));
    }

    #[test]
    fn a_quoted_empty_field_is_an_empty_string_when_null_is_another_text() {
        let r = read("id,note\n1,\"\"\n2,\n3,\\N\n4,\"\\N\"\n", Some("\\N")).expect("read");
        assert_eq!(r[0][1], Cell::Text(String::new()));
        assert_eq!(r[1][1], Cell::Null);
        assert_eq!(r[2][1], Cell::Null);
        assert_eq!(r[3][1], Cell::Null);
        // A quoted empty number is not NULL for Spark: it fails, so Spark says so.
        assert_eq!(read("id,note\n\"\",x\n", Some("\\N")), None);
    }

    #[test]
    fn what_spark_reads_its_own_way_goes_to_spark() {
        // A line break inside quotes (no multiLine), a quote inside a field, text after a
        // closing quote, blank lines, a header that is not the schema.
        assert_eq!(read("id,note\n1,\"a\nb\"\n", None), None);
        assert_eq!(read("id,note\n1,a\"b\n", None), None);
        assert_eq!(read("id,note\n1,\"a\"b\n", None), None);
        assert_eq!(read("id,note\n1, \"a\"\n", None), None);
        assert_eq!(read("id,note\n1,a\n\n2,b\n", None), None);
        assert_eq!(read("id,note\n1,a\n \n", None), None);
        assert_eq!(read("id,text\n1,a\n", None), None);
        assert_eq!(read("id,note\n1,a,\n", None), None);
        assert_eq!(read("id,note\r\n1,a\r\n", None), None);
        assert_eq!(read("ID,Note\n1,a\n", None).map(|r| r.len()), Some(1));
    }
}
