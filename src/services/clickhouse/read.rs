//! Reading a ClickHouse sink: a table or a query, answered as TabSeparatedWithNamesAndTypes and
//! parsed into the canonical table snapshot, each field by its column's type.

use super::values::value;
use super::{ClickHouseEndpoint, unescape};
use crate::snapshot::{Column, Table};

impl ClickHouseEndpoint {
    /// Reads a query's rows with their column types.
    pub async fn read(&self, query: &str) -> Result<Table, String> {
        // Without wait_end_of_query an error in the middle of the rows still answers 200.
        let text = self
            .request(
                &format!("{query} FORMAT TabSeparatedWithNamesAndTypes"),
                None,
                &[("wait_end_of_query", "1")],
            )
            .await
            .map_err(|e| e.to_string())?;
        parse_tsv(&text)
    }
}

/// The rows of a `TabSeparatedWithNamesAndTypes` answer as a canonical table.
fn parse_tsv(text: &str) -> Result<Table, String> {
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .ok_or("an empty answer")?
        .split('\t')
        .map(unescape)
        .collect();
    let types: Vec<String> = lines
        .next()
        .ok_or("an answer without types")?
        .split('\t')
        .map(unescape)
        .collect();
    if names.len() != types.len() {
        return Err("an answer whose names and types do not match".into());
    }
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != names.len() {
            return Err(format!(
                "a row of {} fields, not {}",
                fields.len(),
                names.len()
            ));
        }
        rows.push(
            fields
                .iter()
                .zip(&types)
                .map(|(f, t)| value(t, f))
                .collect(),
        );
    }
    Ok(Table {
        columns: names
            .into_iter()
            .zip(types)
            .map(|(name, type_name)| Column { name, type_name })
            .collect(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Value;

    #[test]
    fn tsv_answers_become_typed_rows() {
        let text = "id\tname\tscore\tprice\n\
                    UInt64\tNullable(String)\tFloat64\tDecimal(9, 2)\n\
                    1\ta\\tb\tnan\t0.10\n\
                    18446744073709551615\t\\N\t-inf\t2.00\n";
        let t = parse_tsv(text).expect("parses");
        assert_eq!(t.columns[1].type_name, "Nullable(String)");
        assert_eq!(t.rows[0][0], Value::Int(1));
        assert_eq!(t.rows[0][1], Value::Text("a\tb".into()));
        assert!(matches!(t.rows[0][2], Value::Float(f) if f.is_nan()));
        assert_eq!(t.rows[0][3], Value::Numeric("0.10".into()));
        assert_eq!(t.rows[1][0], Value::Numeric("18446744073709551615".into()));
        assert_eq!(t.rows[1][1], Value::Null);
    }
}
