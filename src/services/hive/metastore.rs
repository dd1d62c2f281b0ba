//! The harness's own calls to a Hive metastore, through the `hive_metastore` crate (Hive 2.3's
//! Thrift interface, the version PySpark's jars run; binary protocol, unframed, as the metastore
//! serves by default): readiness (`get_all_databases`), the reset between scenarios, and what
//! writing and reading Parquet tables without Spark needs (databases, tables, partitions).

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use hive_metastore::{
    Database, Partition, Table, ThriftHiveMetastoreClient, ThriftHiveMetastoreClientBuilder,
    ThriftHiveMetastoreGetDatabaseException, ThriftHiveMetastoreGetTableException,
};
use pilota::FastStr;
use volo_thrift::MaybeException;

/// A connection to one metastore.
pub struct Metastore {
    client: ThriftHiveMetastoreClient,
}

/// One call's answer as a plain result: the exception the metastore threw, or the client's own
/// failure, as text naming the call.
fn answer<T, E: Debug>(
    method: &str,
    result: Result<MaybeException<T, E>, volo_thrift::ClientError>,
) -> Result<T, String> {
    match result {
        Ok(MaybeException::Ok(v)) => Ok(v),
        Ok(MaybeException::Exception(e)) => Err(format!("{method}: {e:?}")),
        Err(e) => Err(format!("{method}: {e}")),
    }
}

fn s(text: &str) -> FastStr {
    FastStr::new(text)
}

impl Metastore {
    /// A client of the metastore at `host:port` (nothing is sent until the first call).
    pub fn connect(host: &str, port: u16) -> Result<Metastore, String> {
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .map_err(|e| format!("{host}:{port}: {e}"))?;
        let client = ThriftHiveMetastoreClientBuilder::new("hive-metastore")
            .address(addr)
            .make_codec(volo_thrift::codec::default::DefaultMakeCodec::buffered())
            .connect_timeout(Some(Duration::from_secs(5)))
            .rpc_timeout(Some(Duration::from_secs(60)))
            .build();
        Ok(Metastore { client })
    }

    /// Every database's name.
    pub async fn databases(&self) -> Result<Vec<String>, String> {
        let names = answer("get_all_databases", self.client.get_all_databases().await)?;
        Ok(names.iter().map(|n| n.to_string()).collect())
    }

    /// Every table's name in `db`.
    pub async fn tables(&self, db: &str) -> Result<Vec<String>, String> {
        let names = answer("get_all_tables", self.client.get_all_tables(s(db)).await)?;
        Ok(names.iter().map(|n| n.to_string()).collect())
    }

    /// Drops `db` with its tables and their files.
    pub async fn drop_database(&self, db: &str) -> Result<(), String> {
        answer(
            "drop_database",
            self.client.drop_database(s(db), true, true).await,
        )
    }

    /// Drops a table with its files.
    pub async fn drop_table(&self, db: &str, table: &str) -> Result<(), String> {
        answer(
            "drop_table",
            self.client.drop_table(s(db), s(table), true).await,
        )
    }

    /// The database `db`, when it exists.
    pub async fn database(&self, db: &str) -> Result<Option<Database>, String> {
        match self.client.get_database(s(db)).await {
            Ok(MaybeException::Exception(ThriftHiveMetastoreGetDatabaseException::O1(_))) => {
                Ok(None)
            }
            other => answer("get_database", other).map(Some),
        }
    }

    /// Creates a database.
    pub async fn create_database(&self, database: Database) -> Result<(), String> {
        answer(
            "create_database",
            self.client.create_database(database).await,
        )
    }

    /// The table `db.table`, when it exists.
    pub async fn table(&self, db: &str, table: &str) -> Result<Option<Table>, String> {
        match self.client.get_table(s(db), s(table)).await {
            Ok(MaybeException::Exception(ThriftHiveMetastoreGetTableException::O2(_))) => Ok(None),
            other => answer("get_table", other).map(Some),
        }
    }

    /// Creates a table.
    pub async fn create_table(&self, table: Table) -> Result<(), String> {
        answer("create_table", self.client.create_table(table).await)
    }

    /// Every partition of `db.table`.
    pub async fn partitions(&self, db: &str, table: &str) -> Result<Vec<Partition>, String> {
        answer(
            "get_partitions",
            self.client.get_partitions(s(db), s(table), -1).await,
        )
    }

    /// Adds partitions to a table.
    pub async fn add_partitions(&self, parts: Vec<Partition>) -> Result<(), String> {
        if parts.is_empty() {
            return Ok(());
        }
        answer("add_partitions", self.client.add_partitions(parts).await).map(drop)
    }
}
