//! A keyed table snapshot against its golden in one merge pass. Both sides are rendered sorted
//! by the sink's key, so walking them side by side pairs every row with its golden row, and the
//! same walk gives the line diff: an unchanged row is an equal line, a changed row a deleted
//! and an inserted line, a removed or added row a deleted or an inserted line. Rows stay lines
//! of the two texts (nothing is kept per row), and the unified diff is written from the few
//! operations found, by reading the texts once more.
//!
//! The text is the one a line diff (`similar`'s Myers) gives, because the pass is only taken
//! when that diff has a single answer: every line is unique on its side (the keys strictly
//! increase) and every line the two sides share is paired by the walk (equal lines have equal
//! keys, and the walk pairs equal keys). Where that is not shown — keys not unique or not in
//! the order the walk reads, columns that differ in name or order, lines that do not parse —
//! [`explain`] says `None` and the general comparison runs.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use similar::DiffOp;
use similar::udiff::UnifiedHunkHeader;

use super::table::{self, TableDiff, Tolerances};

/// Lines of context around each change in the unified diff, as [`super::diff::unified`] has.
const CONTEXT: usize = 3;

/// The unified diff (`None` when the texts are equal) and the row-by-row account of a keyed
/// table snapshot against its golden, in one pass over both; `None` when the texts do not meet
/// the pass's conditions (see the module's documentation).
pub fn explain(
    golden: &str,
    actual: &str,
    golden_name: &str,
    key: &[String],
    tol: &Tolerances,
) -> Option<(Option<String>, TableDiff)> {
    if key.is_empty() || golden.contains('\r') || actual.contains('\r') {
        return None;
    }
    let (g, a) = (Side::read(golden)?, Side::read(actual)?);
    let same_names = g.columns.len() == a.columns.len()
        && g.columns.iter().zip(&a.columns).all(|(x, y)| x.0 == y.0);
    if !same_names || g.columns.is_empty() {
        return None;
    }
    let key_idx: Vec<usize> = key
        .iter()
        .map(|k| g.columns.iter().position(|c| &c.0 == k))
        .collect::<Option<_>>()?;
    let mut ops = Ops::default();
    align_headers(&g, &a, &mut ops)?;
    let schema = table::schema(&g.columns, &a.columns);
    let mut diff = TableDiff {
        key: key.to_vec(),
        key_note: None,
        preamble_changed: g.preamble != a.preamble,
        schema: schema.changes,
        added: vec![],
        removed: vec![],
        changed: vec![],
        tolerated: 0,
        golden_rows: g.rows,
        actual_rows: a.rows,
    };
    let columns = &g.columns;
    let upto = key_idx.iter().max().map_or(0, |m| m + 1);
    let (mut gr, mut ar) = (
        Rows::new(&g, columns, &key_idx, upto),
        Rows::new(&a, columns, &key_idx, upto),
    );
    let (g_off, a_off) = (g.header_lines, a.header_lines);
    let (mut g_cells, mut a_cells) = (Vec::new(), Vec::new());
    gr.advance()?;
    ar.advance()?;
    loop {
        let order = match (gr.line, ar.line) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), Some(_)) => cmp_keys(&gr.key, &ar.key),
        };
        let (gl, al) = (gr.line.unwrap_or(""), ar.line.unwrap_or(""));
        match order {
            Ordering::Equal if gl == al => {
                // One check of the line holds for both sides.
                cells(gl, columns, &mut g_cells)?;
                ops.equal(g_off + gr.index, a_off + ar.index);
            }
            Ordering::Equal => {
                cells(gl, columns, &mut g_cells)?;
                cells(al, columns, &mut a_cells)?;
                ops.delete(g_off + gr.index, a_off + ar.index);
                ops.insert(g_off + gr.index, a_off + ar.index);
                let key_cells: Vec<&str> = key_idx.iter().map(|&i| g_cells[i]).collect();
                if let Some(changed) = table::changed_row(
                    key,
                    &key_cells,
                    (&g_cells, &a_cells),
                    &schema.common,
                    tol,
                    &mut diff.tolerated,
                ) {
                    diff.changed.push(changed);
                }
            }
            Ordering::Less => {
                cells(gl, columns, &mut g_cells)?;
                ops.delete(g_off + gr.index, a_off + ar.index);
                diff.removed.push(gl.to_string());
            }
            Ordering::Greater => {
                cells(al, columns, &mut a_cells)?;
                ops.insert(g_off + gr.index, a_off + ar.index);
                diff.added.push(al.to_string());
            }
        }
        if order != Ordering::Greater {
            gr.advance()?;
        }
        if order != Ordering::Less {
            ar.advance()?;
        }
    }
    let ops = ops.finish();
    let text = (golden != actual).then(|| unified(golden, actual, golden_name, ops));
    Some((text, diff))
}

/// One side: its header lines (up to the blank line before the rows), its columns and rows.
struct Side<'a> {
    /// The header's lines, each with its end of line.
    header: Vec<&'a str>,
    /// How many lines the header has.
    header_lines: usize,
    /// Lines before the `columns:` line, as [`table::Parsed`] has them.
    preamble: String,
    columns: Vec<(String, String)>,
    /// The rows' lines, each ending with a new line, and nothing else.
    body: &'a str,
    /// How many rows the `rows:` line announces.
    rows: usize,
}

impl<'a> Side<'a> {
    fn read(text: &'a str) -> Option<Side<'a>> {
        let mut header = Vec::new();
        let mut preamble = String::new();
        let mut at = 0;
        let mut lines = text.split_inclusive('\n');
        let columns = loop {
            let line = lines.next()?;
            header.push(line);
            at += line.len();
            let bare = line.strip_suffix('\n')?;
            if let Some(rest) = bare.strip_prefix("columns:") {
                break table::parse_columns(rest.trim_start());
            }
            preamble.push_str(bare);
            preamble.push('\n');
        };
        let count = lines.next()?;
        let rows: usize = count
            .strip_suffix('\n')?
            .strip_prefix("rows: ")?
            .trim()
            .parse()
            .ok()?;
        let blank = lines.next()?;
        if blank != "\n" {
            return None;
        }
        header.push(count);
        header.push(blank);
        at += count.len() + blank.len();
        let body = &text[at..];
        // The rows and nothing after them; the count of lines is checked as they are read.
        if rows == 0 && !body.is_empty() || rows > 0 && !body.ends_with('\n') {
            return None;
        }
        Some(Side {
            header_lines: header.len(),
            header,
            preamble,
            columns,
            body,
            rows,
        })
    }
}

/// Pairs the header lines of both sides into `ops`; `None` when they could pair in more than
/// one way (a line twice on one side, pairs out of order) or could be taken for a row.
fn align_headers(g: &Side<'_>, a: &Side<'_>, ops: &mut Ops) -> Option<()> {
    let row_start = format!("{}=", g.columns[0].0);
    for side in [&g.header, &a.header] {
        for (i, line) in side.iter().enumerate() {
            if line.starts_with(&row_start) || side[..i].contains(line) {
                return None;
            }
        }
    }
    let (mut gi, mut ai) = (0, 0);
    for (i, line) in g.header.iter().enumerate() {
        let Some(j) = a.header.iter().position(|l| l == line) else {
            continue;
        };
        if j < ai {
            return None;
        }
        for k in gi..i {
            ops.delete(k, ai);
        }
        for k in ai..j {
            ops.insert(i, k);
        }
        ops.equal(i, j);
        (gi, ai) = (i + 1, j + 1);
    }
    for k in gi..g.header.len() {
        ops.delete(k, ai);
    }
    for k in ai..a.header.len() {
        ops.insert(g.header.len(), k);
    }
    Some(())
}

/// Every cell of `line` into `out`; `None` when the line does not hold the columns.
fn cells<'a>(line: &'a str, columns: &[(String, String)], out: &mut Vec<&'a str>) -> Option<()> {
    out.clear();
    table::split_row(line, columns, out)
}

/// The rows of one side, read one at a time with their key, each key checked to come strictly
/// after the one before.
struct Rows<'a, 'c> {
    rest: &'a str,
    columns: &'c [(String, String)],
    key_idx: &'c [usize],
    /// Cells to split to reach every key cell.
    upto: usize,
    /// Rows announced, rows read.
    count: usize,
    read: usize,
    /// The current row's index, line and key (`line` is `None` past the last row).
    index: usize,
    line: Option<&'a str>,
    key: Vec<KeyCell<'a>>,
    previous: Vec<KeyCell<'a>>,
    split: Vec<&'a str>,
}

impl<'a, 'c> Rows<'a, 'c> {
    fn new(
        side: &Side<'a>,
        columns: &'c [(String, String)],
        key_idx: &'c [usize],
        upto: usize,
    ) -> Self {
        Rows {
            rest: side.body,
            columns,
            key_idx,
            upto,
            count: side.rows,
            read: 0,
            index: 0,
            line: None,
            key: Vec::new(),
            previous: Vec::new(),
            split: Vec::new(),
        }
    }

    /// Moves to the next row; `None` when the rows are not as the pass needs them.
    fn advance(&mut self) -> Option<()> {
        if self.line.is_some() {
            self.index += 1;
        }
        if self.rest.is_empty() {
            self.line = None;
            return (self.read == self.count).then_some(());
        }
        if self.read == self.count {
            return None;
        }
        let end = self.rest.find('\n')?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        self.read += 1;
        self.split.clear();
        table::split_row_upto(line, self.columns, self.upto, &mut self.split)?;
        std::mem::swap(&mut self.key, &mut self.previous);
        self.key.clear();
        self.key
            .extend(self.key_idx.iter().map(|&i| KeyCell::of(self.split[i])));
        if self.line.is_some() && cmp_keys(&self.previous, &self.key) != Ordering::Less {
            return None;
        }
        self.line = Some(line);
        Some(())
    }
}

/// A key cell as rendered, with what orders it: the kinds in the order of
/// `Value::total_cmp` (NULL, booleans, numbers, text), then its spelling.
#[derive(Debug, Clone, Copy)]
struct KeyCell<'a> {
    text: &'a str,
    sort: Sort<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Sort<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Number(f64),
    /// Quoted text: what is inside the quotes, and whether it holds escapes.
    Text(&'a str, bool),
    /// Anything else (nested values, placeholders): by spelling only.
    Other,
}

impl Sort<'_> {
    fn rank(&self) -> u8 {
        match self {
            Sort::Null => 0,
            Sort::Bool(_) => 1,
            Sort::Int(_) | Sort::Number(_) => 2,
            Sort::Text(..) => 3,
            Sort::Other => 4,
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Sort::Int(i) => *i as f64,
            Sort::Number(f) => *f,
            _ => f64::NAN,
        }
    }
}

impl<'a> KeyCell<'a> {
    fn of(text: &'a str) -> KeyCell<'a> {
        let sort = match text {
            "NULL" => Sort::Null,
            "true" => Sort::Bool(true),
            "false" => Sort::Bool(false),
            _ if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') => {
                let inner = &text[1..text.len() - 1];
                Sort::Text(inner, inner.contains('\\'))
            }
            _ => match text.parse::<i64>() {
                Ok(i) => Sort::Int(i),
                Err(_) => table::number(text).map_or(Sort::Other, Sort::Number),
            },
        };
        KeyCell { text, sort }
    }
}

/// The text of a quoted cell with its escapes read.
fn unescaped<'a>(inner: &'a str, escaped: bool, quoted: &str) -> Cow<'a, str> {
    if !escaped {
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<String>(quoted).map_or(Cow::Borrowed(inner), Cow::Owned)
}

/// A total order on key cells that is the order rows are rendered in, for the values a key
/// usually holds; ties (equal numbers spelled apart) go by spelling, so that cells are equal
/// only when they are spelled the same.
fn cmp_cells(x: &KeyCell<'_>, y: &KeyCell<'_>) -> Ordering {
    let by_kind = match (x.sort, y.sort) {
        (Sort::Bool(a), Sort::Bool(b)) => a.cmp(&b),
        (Sort::Int(a), Sort::Int(b)) => a.cmp(&b),
        (Sort::Text(a, ea), Sort::Text(b, eb)) => {
            if ea || eb {
                unescaped(a, ea, x.text).cmp(&unescaped(b, eb, y.text))
            } else {
                a.cmp(b)
            }
        }
        (a, b) if a.rank() == 2 && b.rank() == 2 => a.as_f64().total_cmp(&b.as_f64()),
        (a, b) => a.rank().cmp(&b.rank()),
    };
    by_kind.then_with(|| x.text.cmp(y.text))
}

fn cmp_keys(x: &[KeyCell<'_>], y: &[KeyCell<'_>]) -> Ordering {
    x.iter()
        .zip(y)
        .map(|(a, b)| cmp_cells(a, b))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The line diff's operations, joined as `similar` joins them: neighbouring equal lines into
/// one run, and the deleted and inserted lines between two runs into one replacement.
#[derive(Debug, Default)]
struct Ops {
    done: Vec<DiffOp>,
    /// (old index, new index, length) of the equal run under way.
    equal: Option<(usize, usize, usize)>,
    /// (old index, length, new index) of the deleted lines under way.
    deleted: Option<(usize, usize, usize)>,
    /// (old index, new index, length) of the inserted lines under way.
    inserted: Option<(usize, usize, usize)>,
}

impl Ops {
    fn equal(&mut self, old: usize, new: usize) {
        self.flush_changes();
        match &mut self.equal {
            Some((_, _, len)) => *len += 1,
            None => self.equal = Some((old, new, 1)),
        }
    }

    fn delete(&mut self, old: usize, new: usize) {
        self.flush_equal();
        match &mut self.deleted {
            Some((_, len, _)) => *len += 1,
            None => self.deleted = Some((old, 1, new)),
        }
    }

    fn insert(&mut self, old: usize, new: usize) {
        self.flush_equal();
        match &mut self.inserted {
            Some((_, _, len)) => *len += 1,
            None => self.inserted = Some((old, new, 1)),
        }
    }

    fn flush_equal(&mut self) {
        if let Some((old_index, new_index, len)) = self.equal.take() {
            self.done.push(DiffOp::Equal {
                old_index,
                new_index,
                len,
            });
        }
    }

    fn flush_changes(&mut self) {
        let op = match (self.deleted.take(), self.inserted.take()) {
            (Some((old_index, old_len, _)), Some((_, new_index, new_len))) => DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            },
            (Some((old_index, old_len, new_index)), None) => DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            },
            (None, Some((old_index, new_index, new_len))) => DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            },
            (None, None) => return,
        };
        self.done.push(op);
    }

    fn finish(mut self) -> Vec<DiffOp> {
        self.flush_equal();
        self.flush_changes();
        self.done
    }
}

/// Reads the lines of a text in order, each with its end of line.
struct Cursor<'a> {
    lines: std::str::SplitInclusive<'a, char>,
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            lines: text.split_inclusive('\n'),
            next: 0,
        }
    }

    /// Line `at`, which comes at or after every line asked for before.
    fn line(&mut self, at: usize) -> &'a str {
        let skip = at - self.next;
        self.next = at + 1;
        self.lines.nth(skip).unwrap_or("")
    }
}

/// The unified diff of `ops` as `similar` writes it: a header naming the golden, then hunks
/// with three lines of context.
fn unified(golden: &str, actual: &str, golden_name: &str, ops: Vec<DiffOp>) -> String {
    let mut out = String::new();
    let (mut old, mut new) = (Cursor::new(golden), Cursor::new(actual));
    for (n, group) in similar::group_diff_ops(ops, CONTEXT)
        .into_iter()
        .filter(|g| !g.is_empty())
        .enumerate()
    {
        if n == 0 {
            let _ = writeln!(out, "--- {golden_name} (golden)");
            let _ = writeln!(out, "+++ {golden_name} (actual)");
        }
        let _ = writeln!(out, "{}", UnifiedHunkHeader::new(&group));
        for op in &group {
            match *op {
                DiffOp::Equal { old_index, len, .. } => {
                    for i in old_index..old_index + len {
                        out.push(' ');
                        out.push_str(old.line(i));
                    }
                }
                DiffOp::Delete {
                    old_index, old_len, ..
                } => {
                    for i in old_index..old_index + old_len {
                        out.push('-');
                        out.push_str(old.line(i));
                    }
                }
                DiffOp::Insert {
                    new_index, new_len, ..
                } => {
                    for i in new_index..new_index + new_len {
                        out.push('+');
                        out.push_str(new.line(i));
                    }
                }
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => {
                    for i in old_index..old_index + old_len {
                        out.push('-');
                        out.push_str(old.line(i));
                    }
                    for i in new_index..new_index + new_len {
                        out.push('+');
                        out.push_str(new.line(i));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::canonical::{Column, Header, Table, Value};
    use crate::snapshot::diff;
    use crate::snapshot::table::Tolerance;

    /// A small deterministic generator (xorshift), so that every run tests the same tables.
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    fn render(columns: &[(&str, &str)], rows: Vec<Vec<Value>>, key: &[String]) -> String {
        Table {
            columns: columns
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    type_name: t.to_string(),
                })
                .collect(),
            rows,
        }
        .render(
            &Header {
                sink: "s".into(),
                source: "test".into(),
            },
            key,
            None,
        )
        .expect("renders")
    }

    /// What the general comparison says: the line diff and the row account apart.
    fn general(g: &str, a: &str, key: &[String], tol: &Tolerances) -> (Option<String>, TableDiff) {
        let rows = table::compare(
            &table::parse(g).expect("golden parses"),
            &table::parse(a).expect("actual parses"),
            key,
            tol,
        );
        (diff::unified(g, a, "g.snap"), rows)
    }

    fn assert_same(g: &str, a: &str, key: &[String], tol: &Tolerances) {
        let merged = explain(g, a, "g.snap", key, tol).expect("the merge pass applies");
        assert_eq!(
            merged,
            general(g, a, key, tol),
            "golden:\n{g}\nactual:\n{a}"
        );
    }

    fn key(k: &str) -> Vec<String> {
        vec![k.to_string()]
    }

    /// A keyed row: an id, a score, a text that may need escapes, a flag.
    fn row(id: i64, rng: &mut Gen) -> Vec<Value> {
        let texts = ["plain", "a | b=c", "q\"uote", "tab\there", "", "é"];
        vec![
            Value::Int(id),
            Value::Float(rng.below(1000) as f64 / 8.0),
            Value::Text(texts[rng.below(texts.len() as u64) as usize].into()),
            if rng.below(5) == 0 {
                Value::Null
            } else {
                Value::Bool(rng.below(2) == 1)
            },
        ]
    }

    const COLUMNS: &[(&str, &str)] = &[
        ("id", "int8"),
        ("score", "float8"),
        ("note", "text"),
        ("ok", "bool"),
    ];

    #[test]
    fn the_merge_pass_gives_the_line_diffs_text_and_the_same_row_account() {
        let mut rng = Gen(0x9e37_79b9);
        for round in 0..300 {
            let n = 1 + rng.below(if round % 10 == 0 { 400 } else { 30 }) as i64;
            let golden: Vec<Vec<Value>> = (0..n).map(|i| row(i * 3 - 20, &mut rng)).collect();
            let mut actual = Vec::new();
            for r in &golden {
                match rng.below(10) {
                    0 => {}
                    1 => actual.push(row(r[0].render(None).parse::<i64>().unwrap_or(0), &mut rng)),
                    2 => {
                        actual.push(r.clone());
                        let Value::Int(id) = r[0] else { continue };
                        actual.push(row(id + 1, &mut rng));
                    }
                    _ => actual.push(r.clone()),
                }
            }
            if rng.below(4) == 0 {
                actual.push(row(-1000 - rng.below(50) as i64, &mut rng));
            }
            let (g, a) = (
                render(COLUMNS, golden, &key("id")),
                render(COLUMNS, actual, &key("id")),
            );
            if g != a {
                assert_same(&g, &a, &key("id"), &Tolerances::new());
            }
        }
    }

    #[test]
    fn text_keys_with_escapes_tolerances_and_a_changed_type_give_the_same_account() {
        let text = |s: &str| Value::Text(s.into());
        let cols = [("name", "text"), ("score", "float8")];
        let names = [
            "", "a", "a\"b", "a\\b", "a\tb", "a b", "ab", "b", "é", "\u{1}x",
        ];
        let golden: Vec<Vec<Value>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| vec![text(n), Value::Float(i as f64)])
            .collect();
        let mut actual = golden.clone();
        actual[2][1] = Value::Float(2.0005);
        actual[4][1] = Value::Float(40.0);
        actual.remove(6);
        actual.push(vec![text("zz\"z"), Value::Null]);
        let tol: Tolerances = [(
            "score".to_string(),
            Tolerance {
                abs: Some(0.001),
                rel: None,
            },
        )]
        .into();
        let (g, a) = (
            render(&cols, golden, &key("name")),
            render(&cols, actual, &key("name")),
        );
        assert_same(&g, &a, &key("name"), &tol);
        assert_same(
            &g,
            &a.replace("score float8", "score float4"),
            &key("name"),
            &tol,
        );
        let (_, rows) = explain(&g, &a, "g.snap", &key("name"), &tol).expect("applies");
        assert_eq!(rows.tolerated, 1);
        assert_eq!(rows.changed.len(), 1);
    }

    #[test]
    fn a_changed_header_line_is_diffed_with_the_rows() {
        let mut rng = Gen(7);
        let rows: Vec<Vec<Value>> = (0..20).map(|i| row(i, &mut rng)).collect();
        let g = render(COLUMNS, rows.clone(), &key("id"));
        let a = render(COLUMNS, rows[..19].to_vec(), &key("id"))
            .replace("# source: test", "# source: other");
        assert_same(&g, &a, &key("id"), &Tolerances::new());
        let (lines, rows) =
            explain(&g, &a, "g.snap", &key("id"), &Tolerances::new()).expect("applies");
        assert!(rows.preamble_changed);
        let lines = lines.expect("differs");
        assert!(lines.contains("-rows: 20\n+rows: 19\n"), "{lines}");
    }

    #[test]
    fn rows_the_pass_cannot_pair_one_way_are_left_to_the_general_comparison() {
        let mut rng = Gen(11);
        let rows: Vec<Vec<Value>> = (0..10).map(|i| row(i, &mut rng)).collect();
        let g = render(COLUMNS, rows.clone(), &key("id"));
        let mut twice = rows.clone();
        twice.push(rows[3].clone());
        let dup = render(COLUMNS, twice, &key("id"));
        let none = |g: &str, a: &str, k: &str| explain(g, a, "g.snap", &key(k), &Tolerances::new());
        // A key twice, rows not sorted by the key, renamed columns, no key, a damaged line.
        assert!(none(&g, &dup, "id").is_none());
        assert!(none(&g, &render(COLUMNS, rows.clone(), &key("score")), "id").is_none());
        assert!(
            none(
                &g,
                &g.replace("note=", "memo=")
                    .replace("note text", "memo text"),
                "id"
            )
            .is_none()
        );
        assert!(explain(&g, &dup, "g.snap", &[], &Tolerances::new()).is_none());
        assert!(none(&g, &g.replace("rows: 10", "rows: 11"), "id").is_none());
        assert!(none(&g, &format!("{g}\n"), "id").is_none());
        // The general comparison still explains what the pass leaves.
        let (lines, rows) =
            diff::explain(&g, &dup, "g.snap", Some((&key("id"), &Tolerances::new())));
        assert!(lines.is_some());
        assert!(rows.expect("an account").key_note.is_some());
    }
}
