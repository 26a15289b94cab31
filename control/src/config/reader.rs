//! A span-aware walk over the parsed TOML tree.
//!
//! Serde stops at the first error; operators want every mistake in one run,
//! so the tree is read by hand: each getter records its error and the line of
//! the key, and returns `None` so the caller can keep going.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::ConfigError;

/// Collects errors and remembers on which line each field was written.
pub(super) struct Ctx<'a> {
    file: &'a str,
    newlines: Vec<usize>,
    pub errors: Vec<ConfigError>,
    lines: HashMap<String, usize>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a str, text: &str) -> Self {
        Ctx {
            file,
            newlines: text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
            errors: Vec::new(),
            lines: HashMap::new(),
        }
    }

    /// 1-based line of a byte span.
    pub fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|r| self.newlines.partition_point(|&n| n < r.start) + 1)
    }

    pub fn err(&mut self, line: usize, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            field: field.into(),
            message: message.into(),
        });
    }

    /// Reports an error on a field read earlier, at the line it was written on.
    pub fn err_at(&mut self, field: &str, message: impl Into<String>) {
        let line = self.line_of(field);
        self.err(line, field, message);
    }

    /// The line a field was read from; for a field that was absent (a
    /// default), the line of the nearest enclosing table that was read.
    pub fn line_of(&self, field: &str) -> usize {
        let mut f = field;
        loop {
            if let Some(l) = self.lines.get(f) {
                return *l;
            }
            match f.rfind(['.', '[']) {
                Some(i) => f = &f[..i],
                None => return 0,
            }
        }
    }

    fn remember(&mut self, field: &str, line: usize) {
        self.lines.insert(field.to_string(), line);
    }
}

/// A table (standard or inline) being read, with its dotted path.
#[derive(Clone)]
pub(super) struct Tbl<'a> {
    t: &'a dyn TableLike,
    pub path: String,
    pub line: usize,
}

impl<'a> Tbl<'a> {
    pub fn root(t: &'a dyn TableLike, cx: &mut Ctx) -> Self {
        cx.remember("", 1);
        Tbl {
            t,
            path: String::new(),
            line: 1,
        }
    }

    /// Dotted path of a key in this table.
    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// How the table is written in the file, for messages: `[[service.backend]]`.
    fn label(&self) -> String {
        if self.path.is_empty() {
            return "the top level".to_string();
        }
        let plain = without_indices(&self.path);
        if self.path.ends_with(']') {
            format!("[[{plain}]]")
        } else {
            format!("[{plain}]")
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.t.get(key).is_some_and(|i| !i.is_none())
    }

    /// Reports every key not in `known`, suggesting a near miss.
    pub fn check_keys(&self, cx: &mut Ctx, known: &[&str]) {
        for (key, item) in self.t.iter() {
            if known.contains(&key) {
                continue;
            }
            let line = self
                .t
                .get_key_value(key)
                .and_then(|(k, _)| cx.line(k.span()))
                .or_else(|| cx.line(item.span()))
                .unwrap_or(self.line);
            let hint = match closest(key, known) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => format!("; known keys: {}", known.join(", ")),
            };
            cx.err(
                line,
                self.field(key),
                format!("unknown key `{key}` in {}{hint}", self.label()),
            );
        }
    }

    /// Records the line of a key that is present, for a later `err_at`.
    pub fn mark(&self, cx: &mut Ctx, key: &str) {
        self.get(cx, key);
    }

    fn get(&self, cx: &mut Ctx, key: &str) -> Option<(&'a Item, usize)> {
        let (k, item) = self.t.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        let line = cx
            .line(k.span())
            .or_else(|| cx.line(item.span()))
            .unwrap_or(self.line);
        cx.remember(&self.field(key), line);
        Some((item, line))
    }

    fn value(&self, cx: &mut Ctx, key: &str, expected: &str) -> Option<(&'a Value, usize)> {
        let (item, line) = self.get(cx, key)?;
        match item {
            Item::Value(v) => Some((v, line)),
            other => {
                cx.err(
                    line,
                    self.field(key),
                    format!("expected {expected}, found a {}", other.type_name()),
                );
                None
            }
        }
    }

    /// Reports an array of tables that came out empty: absent, or written
    /// as `key = []` (a wrongly shaped value has its own error already).
    pub fn need_entries(&self, cx: &mut Ctx, key: &str, message: &str) {
        let field = self.field(key);
        if !self.has(key) {
            cx.err(self.line, field, message);
        } else if !cx.errors.iter().any(|e| e.field == field) {
            cx.err_at(&field, message);
        }
    }

    /// `value` if given, else a "missing" error when the key is absent.
    pub fn must<T>(&self, key: &str, value: Option<T>, cx: &mut Ctx) -> Option<T> {
        if value.is_none() && !self.has(key) {
            cx.err(
                self.line,
                self.field(key),
                format!("required key `{key}` is missing from {}", self.label()),
            );
        }
        value
    }

    pub fn str(&self, cx: &mut Ctx, key: &str) -> Option<String> {
        let (v, line) = self.value(cx, key, "a string")?;
        as_str(cx, v, &self.field(key), line).map(str::to_string)
    }

    pub fn int(&self, cx: &mut Ctx, key: &str, min: i64, max: i64) -> Option<i64> {
        let (v, line) = self.value(cx, key, "an integer")?;
        as_int(cx, v, &self.field(key), line, min, max)
    }

    /// An integer converted to the field's type; `min..=max` must fit it.
    pub fn num<T: TryFrom<i64>>(&self, cx: &mut Ctx, key: &str, min: i64, max: i64) -> Option<T> {
        self.int(cx, key, min, max)
            .and_then(|n| T::try_from(n).ok())
    }

    /// Milliseconds given as an integer, within `min..=max`.
    pub fn ms(&self, cx: &mut Ctx, key: &str, min: u64, max: u64) -> Option<Duration> {
        let lo = i64::try_from(min).unwrap_or(i64::MAX);
        let hi = i64::try_from(max).unwrap_or(i64::MAX);
        self.num::<u64>(cx, key, lo, hi).map(Duration::from_millis)
    }

    pub fn bool(&self, cx: &mut Ctx, key: &str) -> Option<bool> {
        let (v, line) = self.value(cx, key, "true or false")?;
        match v {
            Value::Boolean(b) => Some(*b.value()),
            other => {
                cx.err(
                    line,
                    self.field(key),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A string parsed with `FromStr`; `what` names the expected form.
    pub fn parse<T: FromStr>(&self, cx: &mut Ctx, key: &str, what: &str) -> Option<T>
    where
        T::Err: Display,
    {
        let (v, line) = self.value(cx, key, what)?;
        parse_value(cx, v, &self.field(key), line, what)
    }

    /// An array whose elements are read by `elem(cx, value, field, line)`.
    pub fn list<T>(
        &self,
        cx: &mut Ctx,
        key: &str,
        mut elem: impl FnMut(&mut Ctx, &Value, &str, usize) -> Option<T>,
    ) -> Option<Vec<T>> {
        let (v, line) = self.value(cx, key, "an array")?;
        let field = self.field(key);
        let Value::Array(arr) = v else {
            cx.err(
                line,
                field,
                format!("expected an array, found {}", describe(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for (i, e) in arr.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let l = cx.line(e.span()).unwrap_or(line);
            cx.remember(&f, l);
            match elem(cx, e, &f, l) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// An array of strings each parsed with `FromStr`.
    pub fn parse_list<T: FromStr>(&self, cx: &mut Ctx, key: &str, what: &str) -> Option<Vec<T>>
    where
        T::Err: Display,
    {
        self.list(cx, key, |cx, v, f, l| parse_value(cx, v, f, l, what))
    }

    pub fn str_list(&self, cx: &mut Ctx, key: &str) -> Option<Vec<String>> {
        self.list(cx, key, |cx, v, f, l| {
            as_str(cx, v, f, l).map(str::to_string)
        })
    }

    /// A command: a string split on whitespace, or an array of strings.
    pub fn command(&self, cx: &mut Ctx, key: &str) -> Option<Vec<String>> {
        let words = match self.t.get(key) {
            Some(Item::Value(Value::Array(_))) => self.str_list(cx, key)?,
            _ => self
                .str(cx, key)?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        };
        if words.is_empty() {
            cx.err_at(
                &self.field(key),
                "the command is empty; give the program to run and its arguments",
            );
            return None;
        }
        Some(words)
    }

    /// A sub-table, written `[a.b]`, `b = { … }` or with dotted keys.
    pub fn table(&self, cx: &mut Ctx, key: &str) -> Option<Tbl<'a>> {
        let (item, line) = self.get(cx, key)?;
        let field = self.field(key);
        match item.as_table_like() {
            Some(t) => {
                let line = cx
                    .line(item.span())
                    .filter(|_| item.is_table())
                    .unwrap_or(line);
                cx.remember(&field, line);
                Some(Tbl {
                    t,
                    path: field,
                    line,
                })
            }
            None => {
                cx.err(
                    line,
                    field,
                    format!("expected a table, found {}", item_desc(item)),
                );
                None
            }
        }
    }

    /// An array of tables: `[[a.b]]` sections or an array of inline tables.
    /// Reads every table of the array `key` with `read`: one entry per
    /// table, `None` where that table had errors.
    pub fn each<T>(
        &self,
        cx: &mut Ctx,
        key: &str,
        mut read: impl FnMut(&mut Ctx, &Tbl<'a>) -> Option<T>,
    ) -> Vec<Option<T>> {
        self.tables(cx, key).iter().map(|t| read(cx, t)).collect()
    }

    pub fn tables(&self, cx: &mut Ctx, key: &str) -> Vec<Tbl<'a>> {
        let Some((item, line)) = self.get(cx, key) else {
            return Vec::new();
        };
        let field = self.field(key);
        let mut out = Vec::new();
        let mut push = |cx: &mut Ctx, t: &'a dyn TableLike, span: Option<Range<usize>>| {
            let path = format!("{field}[{}]", out.len());
            let l = cx.line(span).unwrap_or(line);
            cx.remember(&path, l);
            out.push(Tbl { t, path, line: l });
        };
        match item {
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    push(cx, t, t.span());
                }
            }
            Item::Value(Value::Array(arr)) => {
                for (i, v) in arr.iter().enumerate() {
                    match v {
                        Value::InlineTable(t) => push(cx, t, t.span()),
                        other => {
                            let l = cx.line(other.span()).unwrap_or(line);
                            cx.err(
                                l,
                                format!("{field}[{i}]"),
                                format!("expected a table, found {}", describe(other)),
                            );
                        }
                    }
                }
            }
            other => {
                cx.err(
                    line,
                    field,
                    format!(
                        "expected an array of tables (write each entry as [[{}]]), found {}",
                        without_indices(&self.field(key)),
                        item_desc(other)
                    ),
                );
            }
        }
        out
    }
}

/// `service[1].backend` → `service.backend`.
fn without_indices(path: &str) -> String {
    let mut plain = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => plain.push(c),
            _ => {}
        }
    }
    plain
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string \"{}\"", s.value()),
        Value::Integer(i) => format!("the integer {}", i.value()),
        Value::Float(f) => format!("the float {}", f.value()),
        Value::Boolean(b) => format!("the boolean {}", b.value()),
        other => format!("a {}", other.type_name()),
    }
}

fn item_desc(item: &Item) -> String {
    match item {
        Item::Value(v) => describe(v),
        other => format!("a {}", other.type_name()),
    }
}

pub(super) fn as_str<'v>(cx: &mut Ctx, v: &'v Value, field: &str, line: usize) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s.value()),
        other => {
            cx.err(
                line,
                field,
                format!("expected a string, found {}", describe(other)),
            );
            None
        }
    }
}

pub(super) fn as_int(
    cx: &mut Ctx,
    v: &Value,
    field: &str,
    line: usize,
    min: i64,
    max: i64,
) -> Option<i64> {
    match v {
        Value::Integer(i) => {
            let n = *i.value();
            if (min..=max).contains(&n) {
                Some(n)
            } else {
                cx.err(
                    line,
                    field,
                    format!("{n} is out of range: must be between {min} and {max}"),
                );
                None
            }
        }
        other => {
            cx.err(
                line,
                field,
                format!("expected an integer, found {}", describe(other)),
            );
            None
        }
    }
}

fn parse_value<T: FromStr>(
    cx: &mut Ctx,
    v: &Value,
    field: &str,
    line: usize,
    what: &str,
) -> Option<T>
where
    T::Err: Display,
{
    let s = as_str(cx, v, field, line)?;
    match s.parse() {
        Ok(x) => Some(x),
        Err(e) => {
            cx.err(line, field, format!("`{s}` is not {what}: {e}"));
            None
        }
    }
}

/// The known key closest to a misspelt one, if it is an obvious typo.
pub(super) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_obvious_typos_only() {
        let known = ["backend", "vip", "port", "scheduler"];
        assert_eq!(closest("bakend", &known), Some("backend"));
        assert_eq!(closest("schedular", &known), Some("scheduler"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
