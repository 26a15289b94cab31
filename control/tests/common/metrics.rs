//! vipd's Prometheus metrics, scraped and read strictly.

use std::collections::HashMap;

use viplab::Lab;

/// A strict reader of the Prometheus text format: every sample belongs to a
/// family declared by `# TYPE` before it, counters end in `_total`, names
/// and labels are well formed, values are numbers.
pub fn parse_prometheus(text: &str) -> Result<HashMap<String, f64>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(n), Some(_)) if name_ok(n) => {}
                (Some("TYPE"), Some(n), Some(t)) if name_ok(n) => {
                    if !["counter", "gauge"].contains(&t) {
                        return Err(at("unknown type"));
                    }
                    if t == "counter" && !n.ends_with("_total") {
                        return Err(at("counter without _total"));
                    }
                    types.insert(n.to_string(), t.to_string());
                }
                _ => return Err(at("bad comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = value.parse().map_err(|_| at("value not a number"))?;
        let name = series.split('{').next().unwrap_or_default();
        if !name_ok(name) || !types.contains_key(name) {
            return Err(at("sample of an undeclared family"));
        }
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .ok_or_else(|| at("bad label braces"))?;
            let mut rest = inner;
            while !rest.is_empty() {
                let (k, v) = rest.split_once("=\"").ok_or_else(|| at("bad label"))?;
                if !name_ok(k) {
                    return Err(at("bad label name"));
                }
                let mut end = None;
                let mut esc = false;
                for (j, c) in v.char_indices() {
                    match (esc, c) {
                        (true, _) => esc = false,
                        (false, '\\') => esc = true,
                        (false, '"') => {
                            end = Some(j);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| at("unterminated label value"))?;
                rest = v[end + 1..].strip_prefix(',').unwrap_or(&v[end + 1..]);
            }
        }
        if samples.insert(series.to_string(), value).is_some() {
            return Err(at("duplicate series"));
        }
    }
    Ok(samples)
}

/// vipd's /metrics at `addr`, fetched from inside `role`'s namespace and
/// read strictly.
pub fn scrape_metrics(lab: &Lab, role: &str, addr: &str) -> HashMap<String, f64> {
    let text = lab
        .exec_ok(
            role,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                &format!("http://{addr}/metrics"),
            ],
        )
        .expect("metrics answer");
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}
