//! Reading a PostgreSQL sink: a table or a query, its columns typed from the prepared
//! statement and its rows read as text, into the canonical table snapshot.

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::{Kind, Type};

use super::PostgresEndpoint;
use super::endpoint::db_message;
use super::values::value;
use crate::snapshot::{Column, Table};

impl PostgresEndpoint {
    /// Reads a query's rows with their column types.
    pub async fn read(&self, query: &str) -> Result<Table, String> {
        let client = self.connect_to(None).await.map_err(|e| e.to_string())?;
        // A stable rendering of dates and times whatever the server's defaults.
        client.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1").await.map_err(|e| db_message(&e))?;
        let stmt = client.prepare(query).await.map_err(|e| db_message(&e))?;
        let columns: Vec<Column> = stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                // `text[]`, not PostgreSQL's internal `_text`.
                type_name: match c.type_().kind() {
                    Kind::Array(elem) => format!("{}[]", elem.name()),
                    _ => c.type_().name().to_string(),
                },
            })
            .collect();
        let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
        let mut rows = Vec::new();
        for msg in client
            .simple_query(query)
            .await
            .map_err(|e| db_message(&e))?
        {
            if let SimpleQueryMessage::Row(row) = msg {
                let mut values = Vec::with_capacity(types.len());
                for (i, ty) in types.iter().enumerate() {
                    values.push(value(ty, row.get(i)));
                }
                rows.push(values);
            }
        }
        Ok(Table { columns, rows })
    }
}
