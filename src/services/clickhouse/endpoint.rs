//! Where a ClickHouse server listens and how requests reach it: the client of its HTTP
//! interface (one statement per request, the password in headers, the server's error answers
//! reduced to their message), TabSeparated unescaping and identifier quoting, and the reset
//! between scenarios.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::USER;
use crate::services::ServiceError;

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
pub(super) enum ChError {
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
    pub(super) fn new(host: &str, http_port: u16, native_port: u16, password: String) -> Self {
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
    pub(super) async fn request(
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
pub(super) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// The message of a ClickHouse error answer (`Code: 27, e.displayText() = DB::Exception: …`).
pub(super) fn server_message(text: &str) -> String {
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
