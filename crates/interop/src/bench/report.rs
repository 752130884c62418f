//! The results table: per metric and implementation, one value per repetition; printed as
//! markdown with medians and the ratio ours / Go.

use crate::Impl;

/// One measurement, or why there is none.
#[derive(Debug, Clone)]
pub enum Val {
    /// A number in the row's unit.
    Num(f64),
    /// A failure: a short text for the table, and the whole story for the notes.
    Fail {
        /// For the table cell.
        short: String,
        /// For the list of failures below the table.
        detail: String,
    },
}

impl Val {
    /// A failure whose short text is the first line of `detail` up to its first `: `, cut
    /// to 40 characters.
    pub fn fail(detail: impl Into<String>) -> Val {
        let detail = detail.into();
        let head = detail.lines().next().unwrap_or("");
        let head = head.split(": ").next().unwrap_or(head);
        let mut short: String = head.chars().take(40).collect();
        if short.len() < detail.len() {
            short.push('…');
        }
        Val::Fail { short, detail }
    }
}

#[derive(Debug)]
struct Row {
    label: String,
    decimals: usize,
    go: Vec<Val>,
    ours: Vec<Val>,
}

/// Values collected so far, rows in the order first recorded.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn nums(vals: &[Val]) -> Vec<f64> {
    vals.iter()
        .filter_map(|v| match v {
            Val::Num(x) => Some(*x),
            Val::Fail { .. } => None,
        })
        .collect()
}

fn cell(vals: &[Val], decimals: usize) -> String {
    let ok = nums(vals);
    let failed: Vec<&str> = vals
        .iter()
        .filter_map(|v| match v {
            Val::Fail { short, .. } => Some(short.as_str()),
            Val::Num(_) => None,
        })
        .collect();
    match median(ok) {
        None if failed.is_empty() => "—".to_string(),
        None => failed[0].to_string(),
        Some(m) if failed.is_empty() => format!("{m:.decimals$}"),
        Some(m) => format!("{m:.decimals$} ({}/{} failed)", failed.len(), vals.len()),
    }
}

impl Report {
    /// Adds the row `label` now (rows are printed in the order added), if not there yet.
    pub fn declare(&mut self, label: &str, decimals: usize) -> usize {
        match self.rows.iter().position(|r| r.label == label) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    label: label.to_string(),
                    decimals,
                    go: Vec::new(),
                    ours: Vec::new(),
                });
                self.rows.len() - 1
            }
        }
    }

    /// Adds one value (one repetition) for `imp` to the row `label`, shown with `decimals`.
    pub fn record(&mut self, label: &str, decimals: usize, imp: Impl, v: Val) {
        let i = self.declare(label, decimals);
        match imp {
            Impl::Go => self.rows[i].go.push(v),
            Impl::Rust => self.rows[i].ours.push(v),
        }
    }

    /// The markdown table (median over repetitions), without Go's column values when
    /// `with_go` is false.
    pub fn markdown(&self, with_go: bool) -> String {
        let mut out = String::from("| Metric | Go | ours | ours/Go |\n|---|---:|---:|---:|\n");
        for r in &self.rows {
            let go = if with_go {
                cell(&r.go, r.decimals)
            } else {
                "(no Go)".to_string()
            };
            let ratio = match (median(nums(&r.go)), median(nums(&r.ours))) {
                (Some(g), Some(o)) if with_go && g > 0.0 => ratio(o / g),
                _ => "—".to_string(),
            };
            out.push_str(&format!(
                "| {} | {go} | {} | {ratio} |\n",
                r.label,
                cell(&r.ours, r.decimals)
            ));
        }
        out
    }

    /// Every failure, one per line (`label, impl, rep: detail`).
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows {
            for (imp, vals) in [("Go", &r.go), ("ours", &r.ours)] {
                for (rep, v) in vals.iter().enumerate() {
                    if let Val::Fail { detail, .. } = v {
                        out.push(format!("{} — {imp}, run {}: {detail}", r.label, rep + 1));
                    }
                }
            }
        }
        out
    }
}

/// An ours/Go ratio: two decimals, or two significant digits below 0.1 (0.0050, not 0.00).
pub(crate) fn ratio(r: f64) -> String {
    if r > 0.0 && r < 0.1 {
        let decimals = (1.0 - r.log10().floor()).max(2.0) as usize;
        format!("{r:.decimals$}")
    } else {
        format!("{r:.2}")
    }
}

/// How a table column names an implementation: "Go" or "ours".
pub(crate) fn column_name(imp: crate::Impl) -> &'static str {
    match imp {
        crate::Impl::Go => "Go",
        crate::Impl::Rust => "ours",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ratios_and_failures() {
        let mut r = Report::default();
        for (g, o) in [(1.0, 2.0), (3.0, 4.0), (2.0, 3.0)] {
            r.record("join (s)", 2, Impl::Go, Val::Num(g));
            r.record("join (s)", 2, Impl::Rust, Val::Num(o));
        }
        r.record("many", 1, Impl::Go, Val::Num(10.0));
        r.record(
            "many",
            1,
            Impl::Rust,
            Val::fail("not within 60s (87/100): x"),
        );
        let md = r.markdown(true);
        assert!(md.contains("| join (s) | 2.00 | 3.00 | 1.50 |"), "{md}");
        assert!(
            md.contains("| many | 10.0 | not within 60s (87/100)… | — |"),
            "{md}"
        );
        assert_eq!(r.failures().len(), 1);
        assert!(r.markdown(false).contains("(no Go)"));
    }

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        assert_eq!(ratio(1.5), "1.50");
        assert_eq!(ratio(0.14), "0.14");
        assert_eq!(ratio(0.0051), "0.0051");
        assert_eq!(ratio(0.05), "0.050");
        assert_eq!(ratio(0.0), "0.00");
    }
}
