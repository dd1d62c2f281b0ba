//! Hive metastore client side: a minimal Thrift client (binary protocol, unframed, as the
//! metastore serves by default) for the few calls the harness makes itself: readiness
//! (`get_all_databases`) and the reset between scenarios (drop every non-default database and
//! every table of `default`). Seeding and reading tables go through the Spark session
//! (`services::spark`), which speaks the metastore's full protocol.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::ServiceError;

/// Where a metastore listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveEndpoint {
    /// Host (loopback).
    pub host: String,
    /// Thrift port.
    pub port: u16,
    /// The warehouse folder as jobs see it (an `hdfs://` URL).
    pub warehouse: String,
    /// The metastore's log, quoted when a call fails.
    pub log: Option<std::path::PathBuf>,
}

impl HiveEndpoint {
    /// `thrift://host:port`.
    pub fn uri(&self) -> String {
        format!("thrift://{}:{}", self.host, self.port)
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Thrift) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let addr = format!("{}:{}", self.host, self.port);
        tokio::task::spawn_blocking(move || {
            let mut t = Thrift::connect(&addr)?;
            f(&mut t)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The metastore's databases (a real metastore call: the readiness check).
    pub async fn databases(&self) -> Result<Vec<String>, String> {
        self.call(|t| t.get_all_databases()).await
    }

    /// True when the metastore answers a call.
    pub async fn ready(&self) -> bool {
        self.databases().await.is_ok()
    }

    /// Drops every database but `default` (with its tables) and every table of `default`; their
    /// files are removed with the HDFS namespace's reset.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        self.call(|t| {
            for db in t.get_all_databases()? {
                if db == "default" {
                    for table in t.get_all_tables("default")? {
                        t.drop_table("default", &table)?;
                    }
                } else {
                    t.drop_database(&db)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|message| {
            let tail = self
                .log
                .as_deref()
                .map(|l| crate::backend::local::log_tail(l, 15).join("\n  "))
                .unwrap_or_default();
            ServiceError::Unavailable {
                service: "hive",
                message: format!("{message}\nlast lines of the metastore's log:\n  {tail}"),
            }
        })
    }
}

const VERSION_1: u32 = 0x8001_0000;
const CALL: u32 = 1;
const REPLY: u32 = 2;
const EXCEPTION: u32 = 3;
const T_STOP: u8 = 0;
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;

/// One connection speaking Thrift's binary protocol.
struct Thrift {
    out: TcpStream,
    input: BufReader<TcpStream>,
    seq: i32,
}

/// An argument of a call.
enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
}

impl Thrift {
    fn connect(addr: &str) -> Result<Thrift, String> {
        let sock = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let out = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        out.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let input = BufReader::new(out.try_clone().map_err(|e| e.to_string())?);
        Ok(Thrift { out, input, seq: 0 })
    }

    fn get_all_databases(&mut self) -> Result<Vec<String>, String> {
        self.request("get_all_databases", &[])?;
        self.string_list_reply("get_all_databases")
    }

    fn get_all_tables(&mut self, db: &str) -> Result<Vec<String>, String> {
        self.request("get_all_tables", &[Arg::Str(db)])?;
        self.string_list_reply("get_all_tables")
    }

    fn drop_database(&mut self, db: &str) -> Result<(), String> {
        // drop_database(1: name, 2: deleteData, 3: cascade)
        self.request(
            "drop_database",
            &[Arg::Str(db), Arg::Bool(true), Arg::Bool(true)],
        )?;
        self.void_reply("drop_database")
    }

    fn drop_table(&mut self, db: &str, table: &str) -> Result<(), String> {
        // drop_table(1: dbname, 2: name, 3: deleteData)
        self.request(
            "drop_table",
            &[Arg::Str(db), Arg::Str(table), Arg::Bool(true)],
        )?;
        self.void_reply("drop_table")
    }

    fn request(&mut self, method: &str, args: &[Arg<'_>]) -> Result<(), String> {
        self.seq += 1;
        let mut buf = Vec::new();
        buf.extend((VERSION_1 | CALL).to_be_bytes());
        put_string(&mut buf, method);
        buf.extend(self.seq.to_be_bytes());
        for (i, a) in args.iter().enumerate() {
            let id = (i + 1) as i16;
            match a {
                Arg::Str(s) => {
                    buf.push(T_STRING);
                    buf.extend(id.to_be_bytes());
                    put_string(&mut buf, s);
                }
                Arg::Bool(b) => {
                    buf.push(T_BOOL);
                    buf.extend(id.to_be_bytes());
                    buf.push(u8::from(*b));
                }
            }
        }
        buf.push(T_STOP);
        self.out
            .write_all(&buf)
            .map_err(|e| format!("{method}: {e}"))
    }

    /// Reads a reply header; a Thrift exception becomes an error.
    fn reply_header(&mut self, method: &str) -> Result<(), String> {
        let head = self.u32()?;
        if head & 0xffff_0000 != VERSION_1 {
            return Err(format!("{method}: not a Thrift binary reply"));
        }
        let _name = self.string()?;
        let _seq = self.u32()?;
        match head & 0xff {
            REPLY => Ok(()),
            EXCEPTION => {
                let (msg, _) = self.exception_struct()?;
                Err(format!("{method}: {msg}"))
            }
            other => Err(format!("{method}: unexpected message type {other}")),
        }
    }

    fn string_list_reply(&mut self, method: &str) -> Result<Vec<String>, String> {
        self.reply_header(method)?;
        let mut result = None;
        loop {
            let ty = self.byte()?;
            if ty == T_STOP {
                break;
            }
            let id = self.i16()?;
            match (id, ty) {
                (0, T_LIST) => {
                    let (_elem, n) = (self.byte()?, self.u32()?);
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(self.string()?);
                    }
                    result = Some(items);
                }
                (_, T_STRUCT) => return Err(format!("{method}: {}", self.exception_struct()?.0)),
                _ => self.skip(ty)?,
            }
        }
        result.ok_or_else(|| format!("{method}: empty reply"))
    }

    fn void_reply(&mut self, method: &str) -> Result<(), String> {
        self.reply_header(method)?;
        loop {
            let ty = self.byte()?;
            if ty == T_STOP {
                return Ok(());
            }
            let _id = self.i16()?;
            if ty == T_STRUCT {
                let (msg, _) = self.exception_struct()?;
                return Err(format!("{method}: {msg}"));
            }
            self.skip(ty)?;
        }
    }

    /// Reads a struct whose field 1 is a message (every metastore exception, and
    /// TApplicationException).
    fn exception_struct(&mut self) -> Result<(String, i32), String> {
        let (mut msg, mut kind) = (String::from("unknown error"), 0);
        loop {
            let ty = self.byte()?;
            if ty == T_STOP {
                return Ok((msg, kind));
            }
            let id = self.i16()?;
            match (id, ty) {
                (1, T_STRING) => msg = self.string()?,
                (2, T_I32) => kind = self.u32()? as i32,
                _ => self.skip(ty)?,
            }
        }
    }

    fn skip(&mut self, ty: u8) -> Result<(), String> {
        match ty {
            T_BOOL | T_BYTE => self.bytes(1).map(drop),
            T_I16 => self.bytes(2).map(drop),
            T_I32 => self.bytes(4).map(drop),
            T_DOUBLE | T_I64 => self.bytes(8).map(drop),
            T_STRING => self.string().map(drop),
            T_STRUCT => loop {
                let t = self.byte()?;
                if t == T_STOP {
                    return Ok(());
                }
                self.i16()?;
                self.skip(t)?;
            },
            T_MAP => {
                let (k, v, n) = (self.byte()?, self.byte()?, self.u32()?);
                for _ in 0..n {
                    self.skip(k)?;
                    self.skip(v)?;
                }
                Ok(())
            }
            T_SET | T_LIST => {
                let (e, n) = (self.byte()?, self.u32()?);
                for _ in 0..n {
                    self.skip(e)?;
                }
                Ok(())
            }
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut b = vec![0; n];
        self.input
            .read_exact(&mut b)
            .map_err(|e| format!("metastore connection: {e}"))?;
        Ok(b)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        if n > 64 << 20 {
            return Err("metastore reply too large".into());
        }
        Ok(String::from_utf8_lossy(&self.bytes(n)?).into_owned())
    }
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u32).to_be_bytes());
    buf.extend(s.as_bytes());
}
