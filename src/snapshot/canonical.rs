//! Canonical forms. The same data always renders to the same bytes: rows are ordered by the
//! declared key (then by the whole row), keys and set members are sorted, numbers have one
//! spelling, and NULL is never confused with the empty string.

use std::cmp::Ordering;
use std::fmt::Write as _;

use super::nested;
use crate::prefault;

mod keys;

pub use keys::{KeyEntry, KeySpace, KeyValue};

/// The text of a cell: up to 24 bytes held in the cell itself, longer ones on the heap. Most
/// cells are short (dates, names, codes), so a table of millions of rows is mostly one block
/// per row rather than one per cell, to allocate as it is read, to walk as it is rendered and
/// to free once rendered.
pub type Text = compact_str::CompactString;

/// One value of a table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A binary floating-point number.
    Float(f64),
    /// An exact decimal, as the database spelled it (its scale is part of the type).
    Numeric(Text),
    /// Anything else, as text.
    Text(Text),
    /// A value replaced by a redaction: shown bare, as its placeholder.
    Redacted(Text),
    /// An array: elements in order (`[1, 2, NULL]`).
    List(Vec<Value>),
    /// A map (or a JSON object): entries in any order, rendered sorted by key
    /// (`{"a": 1, "b": 2}`).
    Map(Vec<(Value, Value)>),
    /// A struct (or a tuple): named fields in their declared order (`{id: 1, name: "x"}`).
    Struct(Vec<(String, Value)>),
}

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Numeric(_) => 2,
            Value::Text(_) => 3,
            Value::List(_) => 4,
            Value::Map(_) => 5,
            Value::Struct(_) => 6,
            Value::Redacted(_) => 7,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Numeric(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// A total order: NULL first, numbers numerically, text by bytes, lists and maps element by
    /// element (maps in key order), structs field by field.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Text(a), Value::Text(b)) | (Value::Redacted(a), Value::Redacted(b)) => a.cmp(b),
            (a, b) if a.rank() == 2 && b.rank() == 2 => {
                let (x, y) = (
                    a.as_f64().unwrap_or(f64::NAN),
                    b.as_f64().unwrap_or(f64::NAN),
                );
                x.total_cmp(&y)
                    .then_with(|| a.render(None).cmp(&b.render(None)))
            }
            (Value::List(a), Value::List(b)) => nested::cmp_lists(a, b),
            (Value::Map(a), Value::Map(b)) => nested::cmp_maps(a, b),
            (Value::Struct(a), Value::Struct(b)) => nested::cmp_structs(a, b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    /// The value's one spelling. `float_digits` rounds floats to that many decimals.
    pub fn render(&self, float_digits: Option<u32>) -> String {
        let mut out = String::new();
        self.write_to(&mut out, float_digits);
        out
    }

    /// Appends the value's one spelling to `out` (no string of its own: a snapshot of a million
    /// rows writes ten million values).
    pub fn write_to(&self, out: &mut String, float_digits: Option<u32>) {
        match self {
            Value::Null => out.push_str("NULL"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_float(out, *f, float_digits),
            Value::Numeric(n) | Value::Redacted(n) => out.push_str(n),
            Value::Text(s) => quote_into(out, s),
            Value::List(items) => nested::write_list(out, items, float_digits),
            Value::Map(entries) => nested::write_map(out, entries, float_digits),
            Value::Struct(fields) => nested::write_struct(out, fields, float_digits),
        }
    }
}

/// Shortest round-trip spelling of a float (or fixed decimals), with `-0` folded into `0`.
pub fn format_float(f: f64, digits: Option<u32>) -> String {
    let mut out = String::new();
    write_float(&mut out, f, digits);
    out
}

fn write_float(out: &mut String, f: f64, digits: Option<u32>) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let start = out.len();
    let _ = match digits {
        Some(d) => write!(out, "{:.*}", d as usize, f),
        None => write!(out, "{f:?}"),
    };
    // Rounding can give "-0.000"; a zero has no sign.
    let s = &out[start..];
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        out.remove(start);
    }
}

/// Appends `s` double-quoted with JSON escapes; text with nothing to escape is copied as it is.
pub fn quote_into(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&quote(s));
    }
}

/// Double-quoted, with JSON escapes: unambiguous and readable.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// Quotes bytes: as text when they are UTF-8, else as `b"..."` with `\xNN` escapes.
pub fn quote_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => quote(s),
        Err(_) => {
            let mut out = String::from("b\"");
            for &c in b {
                if c.is_ascii_graphic() && c != b'"' && c != b'\\' || c == b' ' {
                    out.push(c as char);
                } else {
                    let _ = write!(out, "\\x{c:02x}");
                }
            }
            out.push('"');
            out
        }
    }
}

/// A column of a table sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type, as the source names it.
    pub type_name: String,
}

/// Rows read from a table sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Columns, in the source's order.
    pub columns: Vec<Column>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// What a snapshot says about where it came from.
#[derive(Debug, Clone)]
pub struct Header {
    /// Sink name.
    pub sink: String,
    /// What was read.
    pub source: String,
}

impl Header {
    /// Writes the header lines.
    pub fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# harness snapshot v1");
        let _ = writeln!(out, "# sink: {}", self.sink);
        let _ = writeln!(out, "# source: {}", self.source);
    }
}

impl Table {
    /// Renders the table: a header with the columns and the row count, then one line per row,
    /// ordered by the `key` columns and then by the whole row. Fails on an unknown key column.
    pub fn render(
        &self,
        header: &Header,
        key: &[String],
        float_digits: Option<u32>,
    ) -> Result<String, String> {
        let mut key_idx = Vec::new();
        for k in key {
            match self.columns.iter().position(|c| &c.name == k) {
                Some(i) => key_idx.push(i),
                None => {
                    let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(format!(
                        "key column `{k}` is not among the columns: {}",
                        names.join(", ")
                    ));
                }
            }
        }
        let rows = self.ordered_rows(&key_idx);
        let mut out = String::new();
        header.write(&mut out);
        self.write_rows(&mut out, rows, key, float_digits);
        Ok(out)
    }

    /// The rows in rendering order: by the `key_idx` columns, then by the whole row.
    ///
    /// The sort moves compact entries, one per row: the index of the row and a prefix of its
    /// first ordering value (its kind and eight bytes whose order agrees with
    /// [`Value::total_cmp`] within the column). Only rows whose prefixes tie are compared in
    /// full. A sort that compared the rows themselves would fetch two scattered rows for every
    /// comparison, which on millions of rows is mostly waiting for memory.
    fn ordered_rows(&self, key_idx: &[usize]) -> Ordered<'_> {
        let full = |a: &Vec<Value>, b: &Vec<Value>| {
            key_idx
                .iter()
                .map(|&i| a[i].total_cmp(&b[i]))
                .chain(a.iter().zip(b).map(|(x, y)| x.total_cmp(y)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        let first = key_idx
            .first()
            .copied()
            .or((!self.columns.is_empty()).then_some(0));
        let fits = |col: usize| {
            u32::try_from(self.rows.len()).is_ok() && self.rows.iter().all(|r| col < r.len())
        };
        let Some(col) = first.filter(|&c| fits(c)) else {
            let mut rows: Vec<&Vec<Value>> = self.rows.iter().collect();
            rows.sort_unstable_by(|a, b| full(a, b));
            return Ordered::Rows(rows);
        };
        // One pass over the rows: each number gets the prefix of its own kind, and the column's
        // kinds are noted on the way; when they turn out mixed, the numbers' prefixes are dropped
        // after it, from the compact entries.
        let mut numbers = Numbers::default();
        let mut order: Vec<Entry> = Vec::with_capacity(self.rows.len());
        let room = std::mem::size_of_val(order.spare_capacity_mut());
        prefault::ahead(order.as_ptr().cast(), room, |progress| {
            for (i, r) in self.rows.iter().enumerate() {
                let v = &r[col];
                numbers.see(v);
                order.push(Entry {
                    prefix: prefix(v),
                    row: i as u32,
                    rank: v.rank(),
                });
                if i % 4096 == 0 {
                    let size = std::mem::size_of::<Entry>();
                    progress.at(order.len() * size, order.capacity() * size);
                }
            }
        });
        if numbers.mixed() {
            let number = Value::Int(0).rank();
            for e in order.iter_mut().filter(|e| e.rank == number) {
                e.prefix = 0;
            }
        }
        // A radix sort by kind and prefix (linear in the rows: a comparison sort's log n grows
        // with the table), then each run of equal prefixes by the full comparison. Rows equal
        // under this order render the same, so the order among them does not show in the text.
        radsort::sort_by_key(&mut order, |e| (e.rank, e.prefix));
        for run in order.chunk_by_mut(|a, b| (a.rank, a.prefix) == (b.rank, b.prefix)) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| {
                    full(&self.rows[a.row as usize], &self.rows[b.row as usize])
                });
            }
        }
        Ordered::Entries(&self.rows, order)
    }

    /// The rows part of a rendering (no header), for snapshots that combine a table with more.
    pub fn render_rows(&self, key: &[String], float_digits: Option<u32>) -> Result<String, String> {
        let full = self.render(
            &Header {
                sink: String::new(),
                source: String::new(),
            },
            key,
            float_digits,
        )?;
        Ok(full.lines().skip(3).map(|l| format!("{l}\n")).collect())
    }

    fn write_rows(
        &self,
        out: &mut String,
        rows: Ordered<'_>,
        key: &[String],
        float_digits: Option<u32>,
    ) {
        let order = if key.is_empty() {
            "whole row".to_string()
        } else {
            key.join(", ")
        };
        let _ = writeln!(out, "# order: {order}");
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.type_name))
            .collect();
        let _ = writeln!(out, "columns: {}", cols.join(" | "));
        let _ = writeln!(out, "rows: {}", rows.len());
        out.push('\n');
        // The text's room is reserved from a sample of rows, and its pages are faulted in on
        // another CPU ahead of the rows written into them.
        let _ = out.try_reserve(self.estimate(&rows, float_digits));
        let (start, room) = (out.as_ptr(), out.capacity());
        prefault::ahead(start, room, |progress| {
            // Rows are written in key order, not in the order they lie in memory (the order a
            // sink returned them in), so each would wait for memory. They are taken in batches:
            // every value of a batch's rows is read first, in a loop of reads that do not wait
            // on one another, so many rows are on their way from memory at once; the batch's
            // lines are then written from the processor's caches. Written each in its turn, a
            // row's reads wait behind the writing of the rows before it, and only a few rows
            // are on their way at a time. The rows' places in the table and then their cells
            // are also asked for ahead of their turn.
            const AHEAD: usize = 16;
            const BATCH_ROWS: usize = 256;
            const BATCH_BYTES: usize = 64 << 10;
            let mut n = 0;
            while n < rows.len() {
                let (mut end, mut bytes) = (n, 0);
                while end < rows.len() && end - n < BATCH_ROWS && bytes < BATCH_BYTES {
                    if let Some(far) = rows.get(end + 2 * AHEAD) {
                        prefetch(std::ptr::from_ref::<Vec<Value>>(far).cast(), 1);
                    }
                    if let Some(near) = rows.get(end + AHEAD) {
                        prefetch(near.as_ptr().cast(), std::mem::size_of_val(near.as_slice()));
                    }
                    if let Some(row) = rows.get(end) {
                        for v in row {
                            // A read the compiler keeps: the value's kind.
                            std::hint::black_box(std::mem::discriminant(v));
                        }
                        bytes += std::mem::size_of_val(row.as_slice());
                    }
                    end += 1;
                }
                for m in n..end {
                    if let Some(row) = rows.get(m) {
                        self.write_row(out, row, float_digits);
                    }
                }
                progress.at(out.len(), out.capacity());
                n = end;
            }
        });
        if out.capacity() - out.len() >= prefault::WORTH {
            out.shrink_to_fit();
        }
    }

    fn write_row(&self, out: &mut String, row: &[Value], float_digits: Option<u32>) {
        for (i, (c, v)) in self.columns.iter().zip(row.iter()).enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            out.push_str(&c.name);
            out.push('=');
            v.write_to(out, float_digits);
        }
        out.push('\n');
    }

    /// The bytes the rows' lines will take, from a sample of them spread over the table, with a
    /// little to spare.
    fn estimate(&self, rows: &Ordered<'_>, float_digits: Option<u32>) -> usize {
        const SAMPLE: usize = 64;
        let mut text = String::new();
        let taken = rows.len().min(SAMPLE);
        for k in 0..taken {
            if let Some(row) = rows.get(k * rows.len() / taken) {
                self.write_row(&mut text, row, float_digits);
            }
        }
        let total = (text.len() as u128 * rows.len() as u128)
            .checked_div(taken as u128)
            .unwrap_or(0);
        usize::try_from(total + total / 32).unwrap_or(usize::MAX)
    }
}

/// Asks the processor to bring the `len` bytes at `at` into its cache; a hint that never
/// faults, whatever the address.
#[inline]
fn prefetch(at: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..len.max(1)).step_by(64) {
        // SAFETY: a prefetch reads nothing the program sees and cannot fault; the address is
        // only computed (wrapping), never dereferenced.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                at.wrapping_add(line).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, len);
}

/// The rows in rendering order: sorted themselves, or by compact entries that point at them.
enum Ordered<'t> {
    Rows(Vec<&'t Vec<Value>>),
    Entries(&'t [Vec<Value>], Vec<Entry>),
}

impl<'t> Ordered<'t> {
    fn len(&self) -> usize {
        match self {
            Ordered::Rows(rows) => rows.len(),
            Ordered::Entries(_, order) => order.len(),
        }
    }

    /// The `n`th row in rendering order (its place in the table: nothing of it is read yet).
    fn get(&self, n: usize) -> Option<&'t Vec<Value>> {
        match self {
            Ordered::Rows(rows) => rows.get(n).copied(),
            Ordered::Entries(rows, order) => order.get(n).map(|e| &rows[e.row as usize]),
        }
    }
}

/// One row in [`Table::ordered_rows`]'s sort.
struct Entry {
    prefix: u64,
    row: u32,
    rank: u8,
}

/// The kinds of number one column holds. Numbers of different kinds compare by value as floats,
/// so their prefixes only hold when the column holds one kind.
#[derive(Default)]
struct Numbers {
    ints: bool,
    floats: bool,
    decimals: bool,
}

impl Numbers {
    fn see(&mut self, v: &Value) {
        match v {
            Value::Int(_) => self.ints = true,
            Value::Float(_) => self.floats = true,
            Value::Numeric(_) => self.decimals = true,
            _ => {}
        }
    }

    /// True when the column's numbers are not all ints or all floats.
    fn mixed(&self) -> bool {
        self.decimals || (self.ints && self.floats)
    }
}

/// Eight bytes of `v` whose order, among values of its rank in a column whose numbers are of
/// one kind, never contradicts [`Value::total_cmp`]; equal prefixes say nothing.
fn prefix(v: &Value) -> u64 {
    const SIGN: u64 = 1 << 63;
    match v {
        Value::Bool(b) => u64::from(*b),
        Value::Int(i) => (*i as u64) ^ SIGN,
        Value::Float(f) => {
            // The order of f64::total_cmp, as unsigned integers.
            let bits = f.to_bits();
            if bits & SIGN != 0 { !bits } else { bits | SIGN }
        }
        Value::Text(t) | Value::Redacted(t) => {
            // The first eight bytes, padded with zeros: byte order, as `str`'s.
            let mut head = [0u8; 8];
            let n = t.len().min(8);
            head[..n].copy_from_slice(&t.as_bytes()[..n]);
            u64::from_be_bytes(head)
        }
        _ => 0,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A cell of the kinds the compact sort prefix treats apart, with ties and shared prefixes
    /// made likely.
    fn cell() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::Int),
            prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1)].prop_map(Value::Int),
            prop_oneof![
                Just(0.0),
                Just(-0.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-1.5),
                Just(2.0)
            ]
            .prop_map(Value::Float),
            prop_oneof![Just("1.0"), Just("-2"), Just("2.00")]
                .prop_map(|n| Value::Numeric(n.into())),
            "(abcdefgh|abc|a\\x00|)[a-b\\x00]{0,3}".prop_map(|t| Value::Text(t.into())),
            "[ab]{0,9}".prop_map(|t| Value::Redacted(t.into())),
        ]
    }

    /// Columns of one kind (so that a whole-column prefix applies) or of every kind.
    fn column(kind: usize) -> BoxedStrategy<Value> {
        match kind {
            0 => (-3i64..3).prop_map(Value::Int).boxed(),
            1 => prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(f64::NAN)]
                .prop_map(Value::Float)
                .boxed(),
            2 => "(abcdefgh|)[ab]{0,2}"
                .prop_map(|t| Value::Text(t.into()))
                .boxed(),
            _ => cell().boxed(),
        }
    }

    fn table() -> impl Strategy<Value = Table> {
        (0..4usize, 0..4usize)
            .prop_flat_map(|(a, b)| proptest::collection::vec((column(a), column(b)), 0..40))
            .prop_map(|rows| Table {
                columns: ["a", "b"]
                    .map(|n| Column {
                        name: n.into(),
                        type_name: "t".into(),
                    })
                    .to_vec(),
                rows: rows.into_iter().map(|(a, b)| vec![a, b]).collect(),
            })
    }

    proptest! {
        #[test]
        fn rows_sorted_by_their_compact_prefixes_come_in_the_order_of_the_full_comparison(
            t in table(),
            keyed in any::<bool>(),
        ) {
            let key_idx: Vec<usize> = if keyed { vec![1] } else { vec![] };
            let ordered = t.ordered_rows(&key_idx);
            let got: Vec<Vec<String>> = (0..ordered.len())
                .map(|n| ordered.get(n).expect("a row").iter().map(|v| v.render(None)).collect())
                .collect();
            let mut want: Vec<&Vec<Value>> = t.rows.iter().collect();
            want.sort_by(|a, b| {
                key_idx
                    .iter()
                    .map(|&i| a[i].total_cmp(&b[i]))
                    .chain(a.iter().zip(b.iter()).map(|(x, y)| x.total_cmp(y)))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|r| r.iter().map(|v| v.render(None)).collect())
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    pub(in crate::snapshot) fn header() -> Header {
        Header {
            sink: "s".into(),
            source: "test".into(),
        }
    }

    #[test]
    fn floats_have_one_spelling() {
        assert_eq!(format_float(0.1 + 0.2, None), "0.30000000000000004");
        assert_eq!(format_float(1.0, None), "1.0");
        assert_eq!(format_float(-0.0, None), "0.0");
        assert_eq!(format_float(-0.0001, Some(2)), "0.00");
        assert_eq!(format_float(2.345678, Some(3)), "2.346");
        assert_eq!(format_float(f64::NAN, None), "NaN");
    }

    #[test]
    fn text_without_escapes_is_quoted_as_json_quotes_it() {
        for s in [
            "",
            "plain",
            "a | b=c",
            "é ü 日本",
            "tab\there",
            "q\"uote",
            "back\\slash",
            "\u{7f}\u{1}",
        ] {
            let mut out = String::new();
            quote_into(&mut out, s);
            assert_eq!(out, quote(s), "{s:?}");
        }
    }

    #[test]
    fn null_and_empty_string_differ() {
        assert_eq!(Value::Null.render(None), "NULL");
        assert_eq!(Value::Text(Text::default()).render(None), "\"\"");
        assert_eq!(Value::Text("NULL".into()).render(None), "\"NULL\"");
    }

    #[test]
    fn rows_are_ordered_by_key_then_row_whatever_the_input_order() {
        let table = |rows: Vec<Vec<Value>>| Table {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "int4".into(),
                },
                Column {
                    name: "v".into(),
                    type_name: "text".into(),
                },
            ],
            rows,
        };
        let a = table(vec![
            vec![Value::Int(10), Value::Text("b".into())],
            vec![Value::Int(2), Value::Null],
            vec![Value::Int(2), Value::Text("a".into())],
        ]);
        let mut rows = a.rows.clone();
        rows.reverse();
        let b = table(rows);
        let ra = a.render(&header(), &["id".into()], None).expect("renders");
        assert_eq!(
            ra,
            b.render(&header(), &["id".into()], None).expect("renders")
        );
        let body: Vec<&str> = ra.lines().skip_while(|l| !l.is_empty()).skip(1).collect();
        assert_eq!(
            body,
            vec!["id=2 | v=NULL", "id=2 | v=\"a\"", "id=10 | v=\"b\""]
        );
    }

    #[test]
    fn tables_written_in_many_batches_have_every_row_once_in_key_order() {
        // Narrow rows end a batch at its count of rows, wide ones at its bytes.
        for (width, count) in [(2usize, 1000i64), (120, 150)] {
            let t = Table {
                columns: (0..width)
                    .map(|c| Column {
                        name: format!("c{c}"),
                        type_name: "int8".into(),
                    })
                    .collect(),
                rows: (0..count)
                    .map(|i| {
                        let id = (i * 7919) % count;
                        (0..width as i64)
                            .map(|c| Value::Int(if c == 0 { id } else { id * c }))
                            .collect()
                    })
                    .collect(),
            };
            let text = t.render(&header(), &["c0".into()], None).expect("renders");
            let body: Vec<&str> = text.lines().skip_while(|l| !l.is_empty()).skip(1).collect();
            let mut sorted = t.rows.clone();
            sorted.sort_by_key(|r| match r[0] {
                Value::Int(id) => id,
                _ => unreachable!("ids are ints"),
            });
            let want: Vec<String> = sorted
                .iter()
                .map(|r| {
                    let mut line = String::new();
                    t.write_row(&mut line, r, None);
                    line.trim_end().to_string()
                })
                .collect();
            assert_eq!(body, want, "{width} columns");
        }
    }

    #[test]
    fn unknown_key_column_is_an_error() {
        let t = Table {
            columns: vec![Column {
                name: "id".into(),
                type_name: "int4".into(),
            }],
            rows: vec![],
        };
        let err = t
            .render(&header(), &["nope".into()], None)
            .expect_err("unknown key");
        assert!(err.contains("nope") && err.contains("id"));
    }
}
