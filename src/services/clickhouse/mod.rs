//! ClickHouse: its description (Debian's `clickhouse-server`, 18.16 on bookworm, as a private
//! process on loopback, or the image in `containers/clickhouse/`), and its client side over the
//! HTTP interface, the most portable one: every version since 2016 speaks it the same way, where
//! the native protocol and the typed formats of newer clients (RowBinaryWithNamesAndTypes) are
//! not there in 18.16. One user, `harness`, with the environment's own password; the server's
//! time zone is UTC whatever the machine's.
//!
//! Seeds: SQL files (run statement by statement: the HTTP interface takes one per request) and
//! CSV or JSON Lines files inserted into a table by the columns they name, the table created
//! first from a declared schema. Sinks: a table or a query, read as TabSeparatedWithNamesAndTypes
//! into the canonical table snapshot. Reset: every database but `system` and `default` dropped,
//! and every table of `default`.

pub mod capture;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::process::Command;

mod values;

use values::value;

use super::{
    Container, DataContext, ImageSpec, Prerequisite, Running, Service, ServiceError, SqlRunner,
    StartContext,
};
use crate::config::rules::{DataRules, RowSeeds, SchemaRule, SinkRules};
use crate::config::{Origin, Seed, SeedKind, Settings, Sink, SinkSpec, TableFormat};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{Serve, ServiceProcess, serve, which};
use crate::snapshot::{Column, Table};

/// The one user of every server.
const USER: &str = "harness";
/// Engine of a table a seed creates from its schema when it names none.
const DEFAULT_ENGINE: &str = "MergeTree ORDER BY tuple()";
/// Databases a reset keeps (`default` is emptied instead).
const KEPT: [&str; 2] = ["system", "default"];
/// The server closes idle connections after 10 s; the client lets go of them before that.
const IDLE: Duration = Duration::from_secs(5);

/// Where a ClickHouse server listens and how to log in.
#[derive(Clone)]
pub struct ClickHouseEndpoint {
    /// Host (loopback).
    pub host: String,
    /// HTTP port.
    pub http_port: u16,
    /// Native protocol port (what `clickhouse-driver` and Airflow's ClickHouse hooks use).
    pub native_port: u16,
    /// The user the requests log in as (`harness` on the environment's server).
    user: String,
    /// Its password.
    password: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ClickHouseEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseEndpoint")
            .field("host", &self.host)
            .field("http_port", &self.http_port)
            .field("native_port", &self.native_port)
            .finish_non_exhaustive()
    }
}

/// A request ClickHouse refused, with its message.
#[derive(Debug)]
enum ChError {
    /// The server could not be reached.
    Unreachable(String),
    /// The server answered with an error.
    Refused(String),
}

impl std::fmt::Display for ChError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChError::Unreachable(m) | ChError::Refused(m) => f.write_str(m),
        }
    }
}

impl ClickHouseEndpoint {
    fn new(host: &str, http_port: u16, native_port: u16, password: String) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .build_http();
        ClickHouseEndpoint {
            host: host.into(),
            http_port,
            native_port,
            user: USER.into(),
            password,
            client,
        }
    }

    /// The endpoint of an `http://[user[:password]@]host:port` URL (user `default` when it
    /// names none), for `harness capture`.
    pub fn from_url(url: &str) -> Result<ClickHouseEndpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("write http://[user:password@]host:port (the HTTP interface)")?;
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let (host, port) = hostport
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or("write http://[user:password@]host:port with a port number")?;
        let mut e = ClickHouseEndpoint::new(host, port, 0, password.to_string());
        e.user = if user.is_empty() { "default" } else { user }.to_string();
        Ok(e)
    }

    /// `http://harness:PASSWORD@host:port`: the HTTP interface (`HARNESS_CLICKHOUSE_URL`).
    pub fn url(&self) -> String {
        format!(
            "http://{USER}:{}@{}:{}",
            self.password, self.host, self.http_port
        )
    }

    /// `clickhouse://harness:PASSWORD@host:native_port/default`: the native protocol, the form
    /// Airflow's ClickHouse hooks and `clickhouse-driver` take (`AIRFLOW_CONN_CLICKHOUSE_DEFAULT`).
    pub fn native_url(&self) -> String {
        format!(
            "clickhouse://{USER}:{}@{}:{}/default",
            self.password, self.host, self.native_port
        )
    }

    /// Sends one statement; `data`, when given, is the body of an INSERT (the statement then
    /// travels in the URL). `settings` are URL parameters.
    async fn request(
        &self,
        sql: &str,
        data: Option<Bytes>,
        settings: &[(&str, &str)],
    ) -> Result<String, ChError> {
        let mut uri = format!("http://{}:{}/?", self.host, self.http_port);
        let mut params: Vec<(&str, &str)> = settings.to_vec();
        let body = match data {
            Some(d) => {
                params.push(("query", sql));
                d
            }
            None => Bytes::copy_from_slice(sql.as_bytes()),
        };
        uri.push_str(
            &params
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v)))
                .collect::<Vec<_>>()
                .join("&"),
        );
        let req = hyper::Request::post(uri)
            .header("X-ClickHouse-User", &self.user)
            .header("X-ClickHouse-Key", &self.password)
            .body(Full::new(body))
            .map_err(|e| ChError::Unreachable(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| ChError::Unreachable(format!("{e}")))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ChError::Unreachable(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            Ok(text)
        } else {
            Err(ChError::Refused(server_message(&text)))
        }
    }

    /// True when the server answers `SELECT 1` (with the password).
    pub async fn ready(&self) -> bool {
        matches!(self.request("SELECT 1", None, &[]).await, Ok(t) if t.trim() == "1")
    }

    /// Every row of `sql`'s first column.
    async fn column(&self, sql: &str) -> Result<Vec<String>, ChError> {
        let text = self
            .request(&format!("{sql} FORMAT TabSeparated"), None, &[])
            .await?;
        Ok(text.lines().map(unescape).collect())
    }

    /// Drops every database but `system` and `default`, and every table of `default`.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        let fail = |e: ChError| ServiceError::Unavailable {
            service: "clickhouse",
            message: e.to_string(),
        };
        for db in self
            .column("SELECT name FROM system.databases")
            .await
            .map_err(fail)?
        {
            if !KEPT.contains(&db.as_str()) {
                self.request(
                    &format!("DROP DATABASE IF EXISTS {}", ident(&db)),
                    None,
                    &[],
                )
                .await
                .map_err(fail)?;
            }
        }
        for table in self
            .column("SELECT name FROM system.tables WHERE database = 'default'")
            .await
            .map_err(fail)?
        {
            self.request(
                &format!("DROP TABLE IF EXISTS default.{}", ident(&table)),
                None,
                &[],
            )
            .await
            .map_err(fail)?;
        }
        Ok(())
    }

    /// Runs the statements of an SQL file one by one; a rejected one is reported at its line.
    async fn seed_sql(&self, path: &Path, display: &Path) -> Result<(), ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Input {
            origin: Origin::file(display),
            message: format!("cannot read: {e}"),
        })?;
        self.run_sql(&text, &Origin::file(display)).await
    }

    /// Runs SQL text statement by statement (the HTTP interface takes one per request); a
    /// rejected statement is reported at its line, counted from `origin` (a file, or inline SQL
    /// starting at a line of pipeline.toml).
    pub async fn run_sql(&self, text: &str, origin: &Origin) -> Result<(), ServiceError> {
        for (offset, statement) in statements(text) {
            if let Err(e) = self.request(statement, None, &[]).await {
                return Err(match e {
                    ChError::Unreachable(m) => ServiceError::Unavailable {
                        service: "clickhouse",
                        message: m,
                    },
                    ChError::Refused(m) => ServiceError::Input {
                        origin: origin.within(text, offset),
                        message: m,
                    },
                });
            }
        }
        Ok(())
    }

    /// Inserts a CSV (with a header) or JSON Lines file into `table` by the columns it names,
    /// creating the database and table first from `schema` when one is given.
    #[allow(clippy::too_many_arguments)]
    async fn seed_table(
        &self,
        table: &str,
        format: TableFormat,
        path: &Path,
        display: &Path,
        columns: &[String],
        schema: Option<&str>,
        engine: Option<&str>,
    ) -> Result<(), ServiceError> {
        let input = |message: String, line: Option<usize>| ServiceError::Input {
            origin: Origin {
                file: display.to_path_buf(),
                line_col: line.map(|l| (l, 1)),
            },
            message,
        };
        let refused = |e: ChError| match e {
            ChError::Unreachable(m) => ServiceError::Unavailable {
                service: "clickhouse",
                message: m,
            },
            ChError::Refused(m) => input(format!("table {table}: {m}"), None),
        };
        if let Some(schema) = schema {
            if let Some((db, _)) = table.split_once('.') {
                self.request(
                    &format!("CREATE DATABASE IF NOT EXISTS {}", ident(db)),
                    None,
                    &[],
                )
                .await
                .map_err(refused)?;
            }
            self.request(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} ({schema}) ENGINE = {}",
                    quote_table(table),
                    engine.unwrap_or(DEFAULT_ENGINE)
                ),
                None,
                &[],
            )
            .await
            .map_err(refused)?;
        }
        let data = std::fs::read(path).map_err(|e| input(format!("cannot read: {e}"), None))?;
        // A header alone, or nothing at all, inserts no rows (and ClickHouse refuses an empty
        // body).
        let rows_follow = match format {
            TableFormat::Csv => data
                .splitn(2, |b| *b == b'\n')
                .nth(1)
                .is_some_and(|rest| rest.iter().any(|b| !b.is_ascii_whitespace())),
            _ => data.iter().any(|b| !b.is_ascii_whitespace()),
        };
        if !rows_follow || columns.is_empty() {
            return Ok(());
        }
        let (fmt, header_lines) = match format {
            TableFormat::Csv => ("CSVWithNames", 1),
            _ => ("JSONEachRow", 0),
        };
        let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) FORMAT {fmt}",
            quote_table(table),
            cols.join(", ")
        );
        match self
            .request(
                &sql,
                Some(Bytes::from(data)),
                &[("date_time_input_format", "best_effort")],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(ChError::Refused(m)) => {
                let line = row_of(&m)
                    .map(|r| r + header_lines)
                    .or_else(|| unknown_column(&m).and_then(|c| line_naming(path, format, c)));
                Err(input(format!("table {table}: {m}"), line))
            }
            Err(e) => Err(refused(e)),
        }
    }

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

/// Undoes TabSeparated escaping.
pub(crate) fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// An identifier quoted for ClickHouse.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// The message of a ClickHouse error answer (`Code: 27, e.displayText() = DB::Exception: …`).
fn server_message(text: &str) -> String {
    let text = text.trim();
    let msg = text
        .split_once("DB::Exception: ")
        .map_or(text, |(_, rest)| rest);
    let msg = msg
        .rsplit_once(", e.what() = ")
        .map_or(msg, |(m, _)| m)
        .trim();
    msg.to_string()
}

/// The column an insert error says the table has not (`No such column x in table t`).
fn unknown_column(message: &str) -> Option<&str> {
    message
        .split("No such column ")
        .nth(1)?
        .split_whitespace()
        .next()
}

/// The 1-based line of a seed file that names `column`: a CSV's header, or the first JSON line
/// with that key.
fn line_naming(path: &Path, format: TableFormat, column: &str) -> Option<usize> {
    if format == TableFormat::Csv {
        return Some(1);
    }
    let text = std::fs::read_to_string(path).ok()?;
    let key = serde_json::to_string(column).ok()?;
    text.lines()
        .position(|l| l.contains(&format!("{key}:")) || l.contains(&format!("{key} :")))
        .map(|i| i + 1)
}

/// The row an insert error names (`… (at row 3)`), 1-based.
fn row_of(message: &str) -> Option<usize> {
    let rest = message.split("(at row ").nth(1)?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The statements of an SQL text, split at `;` outside quotes and comments, each with the byte
/// offset where its text starts; empty and comment-only pieces are left out.
fn statements(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                push(text, start, i, &mut out);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        push(text, start, text.len(), &mut out);
    }
    out
}

/// Adds `text[from..to]` to `out` unless it holds nothing but blanks and comments.
fn push<'t>(text: &'t str, from: usize, to: usize, out: &mut Vec<(usize, &'t str)>) {
    let piece = &text[from..to];
    let meaningful = piece
        .lines()
        .map(|l| l.split("--").next().unwrap_or("").trim())
        .any(|l| !l.is_empty());
    if meaningful {
        // Errors point at the statement's first line of code, past comments before it.
        let mut at = 0;
        for line in piece.split_inclusive('\n') {
            let code = line.split("--").next().unwrap_or("");
            if !code.trim().is_empty() {
                at += line.len() - line.trim_start().len();
                break;
            }
            at += line.len();
        }
        out.push((from + at, piece.trim()));
    }
}

/// Percent-encodes a URL parameter value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- the description ----

/// ClickHouse, described.
#[derive(Debug)]
pub struct ClickHouse;

/// Seeds: SQL files; CSV (with a header) or JSON Lines files into a table by the columns they
/// name, the table created from `schema` (ClickHouse types) and `engine` when given. Sinks: a
/// table or a query. `sql` tasks.
static RULES: DataRules = DataRules {
    seed_sql: true,
    seed_rows: Some(RowSeeds {
        formats: &[TableFormat::Csv, TableFormat::Jsonl],
        schema: SchemaRule::Optional,
        partition_by: false,
        engine: true,
        csv_options: false,
        folders: false,
        columns_by_name: true,
        example: "table = \"db.table\" with csv = \"rows.csv\" (and schema to create the table)",
        schema_example: "id UInt64, name String",
    }),
    seed_keys: false,
    seed_files: false,
    sink: Some(SinkRules::Table {
        query: true,
        quote: quote_table,
        namespace: "default",
        case_insensitive: false,
    }),
    sql_tasks: true,
    no_data: "",
};

/// `db.table` quoted for ClickHouse: `` `db`.`table` ``.
pub fn quote_table(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// A running ClickHouse.
#[derive(Debug)]
pub struct ClickHouseRunning {
    /// Where it listens.
    pub endpoint: ClickHouseEndpoint,
    process: Option<ServiceProcess>,
}

/// The server's configuration: loopback only, UTC, small caches, its files under `dir`.
fn config_xml(dir: &Path, http_port: u16, native_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<!-- Generated by harness for this environment. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{d}/log/clickhouse-server.log</log>
        <errorlog>{d}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{native_port}</tcp_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
    <shutdown_wait_unfinished>0</shutdown_wait_unfinished>
</yandex>
"#
    )
}

/// The one user, its password kept only as its SHA-256.
fn users_xml(password: &str) -> String {
    let hash: String = Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"<?xml version="1.0"?>
<!-- Generated by harness for this environment. -->
<yandex>
    <profiles>
        <default>
            <background_pool_size>2</background_pool_size>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <{USER}>
            <password_sha256_hex>{hash}</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{USER}>
    </users>
    <quotas>
        <default>
        </default>
    </quotas>
</yandex>
"#
    )
}

/// The server binary: the setting's path, else on PATH, else Debian's `/usr/sbin`.
pub fn server_bin(settings: &Settings) -> Result<PathBuf, String> {
    let bin = &settings.clickhouse.bin;
    let found = if bin.components().count() > 1 {
        Some(bin.clone())
    } else {
        which(&bin.to_string_lossy()).or_else(|| Some(Path::new("/usr/sbin").join(bin)))
    };
    found.filter(|b| b.is_file()).ok_or_else(|| {
        format!(
            "`{}` not found; install the `clickhouse-server` package (scripts/setup.sh does) or set services.clickhouse.bin",
            bin.display()
        )
    })
}

impl Service for ClickHouse {
    fn kind(&self) -> ServiceKind {
        ServiceKind::ClickHouse
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        150
    }

    fn prerequisites(&self, settings: &Settings) -> Vec<Prerequisite> {
        vec![Prerequisite {
            name: "clickhouse-server",
            found: crate::services::clickhouse::server_bin(settings)
                .ok()
                .map(|p| {
                    // 18.16's server has no --version; the package knows.
                    let version = std::process::Command::new("dpkg-query")
                        .args(["-W", "-f=${Version}", "clickhouse-server"])
                        .output()
                        .ok()
                        .filter(|o| o.status.success())
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .unwrap_or_else(|| "?".into());
                    format!("{version} at {}", p.display())
                }),
            how: "only for pipelines with a clickhouse service: apt-get install clickhouse-server (scripts/setup.sh does)",
            required: false,
        }]
    }

    fn start_timeout(&self, settings: &Settings) -> Duration {
        settings.clickhouse.start_timeout
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let fail = |m: String| ctx.fail(ServiceKind::ClickHouse, m);
            let bin = server_bin(ctx.settings).map_err(fail)?;
            let dir = ctx.dir.join("clickhouse");
            std::fs::create_dir_all(dir.join("log"))
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
            let password = super::password(ctx.secret, ServiceKind::ClickHouse);
            std::fs::write(dir.join("users.xml"), users_xml(&password))
                .map_err(|e| fail(e.to_string()))?;
            let log = dir.join("log/clickhouse-server.err.log");
            let how = Serve {
                service: "clickhouse",
                log: &log,
                port_taken: "Address already in use",
                timeout: ctx.settings.clickhouse.start_timeout,
                stop_signal: libc::SIGTERM,
                log_owner: None,
            };
            // Two ports: the native one is chosen afresh for every attempt, like the HTTP one.
            let native = std::sync::Mutex::new(0u16);
            let command = |http_port: u16| {
                let native_port = crate::process::free_port().unwrap_or(0);
                if let Ok(mut n) = native.lock() {
                    *n = native_port;
                }
                let config = dir.join("config.xml");
                let _ = std::fs::write(&config, config_xml(&dir, http_port, native_port));
                let mut cmd = Command::new(&bin);
                cmd.arg(format!("--config-file={}", config.display()))
                    .current_dir(&dir);
                cmd
            };
            let at = |port: u16| ClickHouseEndpoint::new("127.0.0.1", port, 0, password.clone());
            let (proc, http_port) = serve(how, command, |port| {
                let ep = at(port);
                async move { ep.ready().await }
            })
            .await?;
            let native_port = native.lock().map(|n| *n).unwrap_or(0);
            Ok(Box::new(ClickHouseRunning {
                endpoint: ClickHouseEndpoint::new("127.0.0.1", http_port, native_port, password),
                process: Some(proc),
            }) as Box<dyn Running>)
        })
    }

    fn image(&self) -> Option<ImageSpec> {
        Some(ImageSpec {
            service: "clickhouse",
            files: &[
                (
                    "Dockerfile",
                    include_str!("../../../containers/clickhouse/Dockerfile"),
                ),
                (
                    "entrypoint.sh",
                    include_str!("../../../containers/clickhouse/entrypoint.sh"),
                ),
                (
                    "config.xml",
                    include_str!("../../../containers/clickhouse/config.xml"),
                ),
            ],
            needs_jars: false,
        })
    }

    fn container(&self, ctx: &StartContext<'_>) -> Option<Result<Container, InfraError>> {
        Some(Ok(Container {
            image: self.image()?,
            jars: None,
            ports: vec![8123, 9000],
            env: vec![(
                "CLICKHOUSE_PASSWORD".into(),
                super::password(ctx.secret, ServiceKind::ClickHouse),
            )],
            mounts: vec![],
            args: vec![],
        }))
    }

    fn connect<'a>(
        &'a self,
        ports: Vec<u16>,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, String>> {
        Box::pin(async move {
            let [http_port, native_port] = ports[..] else {
                return Err("expected two ports".into());
            };
            let endpoint = ClickHouseEndpoint::new(
                "127.0.0.1",
                http_port,
                native_port,
                super::password(ctx.secret, ServiceKind::ClickHouse),
            );
            if !endpoint.ready().await {
                return Err("not answering SELECT 1 yet".into());
            }
            Ok(Box::new(ClickHouseRunning {
                endpoint,
                process: None,
            }) as Box<dyn Running>)
        })
    }
}

impl Running for ClickHouseRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::ClickHouse
    }

    fn exited(&self) -> Option<String> {
        self.process.as_ref()?.exit_note()
    }

    fn endpoint(&self) -> String {
        format!(
            "http://{USER}@{}:{} (native port {})",
            self.endpoint.host, self.endpoint.http_port, self.endpoint.native_port
        )
    }

    fn task_env(&self) -> Vec<(String, String)> {
        vec![
            ("HARNESS_CLICKHOUSE_URL".into(), self.endpoint.url()),
            (
                "AIRFLOW_CONN_CLICKHOUSE_DEFAULT".into(),
                self.endpoint.native_url(),
            ),
        ]
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(self.endpoint.reset())
    }

    fn seed<'a>(
        &'a self,
        seed: &'a Seed,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            match &seed.kind {
                SeedKind::Sql { path } => self.endpoint.seed_sql(path, &seed.display).await,
                SeedKind::Rows {
                    table,
                    format,
                    path,
                    columns,
                    schema,
                    engine,
                    ..
                } => {
                    self.endpoint
                        .seed_table(
                            table,
                            *format,
                            path,
                            &seed.display,
                            columns,
                            schema.as_deref(),
                            engine.as_deref(),
                        )
                        .await
                }
                _ => Err(super::not_for(seed, ServiceKind::ClickHouse)),
            }
        })
    }

    fn read<'a>(
        &'a self,
        sink: &'a Sink,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let SinkSpec::Table {
                query: Some(query),
                key,
                float_digits,
                ..
            } = &sink.spec
            else {
                return Err(format!("{}: not a clickhouse sink", sink.origin));
            };
            let table = self
                .endpoint
                .read(query)
                .await
                .map_err(|e| format!("{}: {e}", sink.origin))?;
            super::render_table(sink, table, key, *float_digits)
        })
    }

    fn sql(&self) -> Option<SqlRunner> {
        let endpoint = self.endpoint.clone();
        Some(SqlRunner(std::sync::Arc::new(move |text, origin| {
            let endpoint = endpoint.clone();
            Box::pin(async move { endpoint.run_sql(&text, &origin).await })
        })))
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The server waits for open connections before it stops: close ours first.
            let ClickHouseRunning { endpoint, process } = *self;
            drop(endpoint);
            if let Some(p) = process {
                p.stop().await;
            }
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::line_col;
    use crate::snapshot::Value;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let sql = "CREATE DATABASE a; -- one; two\nINSERT INTO t VALUES ('x;y');\n/* ; */ SELECT 1;\n-- only a comment\n";
        let got: Vec<&str> = statements(sql).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            got,
            vec![
                "CREATE DATABASE a",
                "-- one; two\nINSERT INTO t VALUES ('x;y')",
                "/* ; */ SELECT 1"
            ]
        );
        let (offset, _) = statements(sql)[1];
        assert_eq!(line_col(sql, offset).0, 2);
    }

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

    #[test]
    fn server_errors_are_reduced_to_their_message_and_row() {
        let body = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: x (at row 3)\n, e.what() = DB::Exception\n";
        let m = server_message(body);
        assert_eq!(m, "Cannot parse input: expected , before: x (at row 3)");
        assert_eq!(row_of(&m), Some(3));
    }
}
