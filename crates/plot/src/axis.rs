//! What the axes show: data ranges, tick positions and tick labels.

use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};

use anyhow::bail;

use crate::{Chart, Series};

/// Data ranges and what to do with out-of-range values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranges {
    pub(crate) x: (f64, f64),
    pub(crate) y: (f64, f64),
    pub(crate) clamp_y: bool,
}

pub(crate) fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

pub(crate) fn fit_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|&v| usable(v, log)).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        if hi > lo {
            let pad = (hi / lo).powf(0.05);
            (lo / pad, hi * pad)
        } else {
            (lo / 2.0, hi * 2.0)
        }
    } else if hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo - pad, hi + pad)
    }
}

pub(crate) fn ranges(c: &Chart) -> anyhow::Result<Ranges> {
    let pts = || c.series.iter().flat_map(|s| s.points.iter().copied());
    let x = match c.x_range {
        Some(r) => r,
        None => {
            fit_range(pts().filter(|p| usable(p.1, c.log_y)).map(|p| p.0).chain(c.vlines.iter().map(|v| v.1)), c.log_x)
        }
    };
    let y = match c.y_range {
        Some(r) => r,
        None => {
            let ys = pts().filter(|p| usable(p.0, c.log_x)).flat_map(|(_, y, e)| {
                let e = e.filter(|e| e.is_finite()).unwrap_or(0.0).abs();
                [y, y - e, y + e]
            });
            fit_range(ys.chain(c.hlines.iter().map(|h| h.1)), c.log_y)
        }
    };
    for (name, (lo, hi), log) in [("x", x, c.log_x), ("y", y, c.log_y)] {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) || (log && lo <= 0.0) {
            bail!("chart '{}': invalid {name} range [{lo}, {hi}]{}", c.title, if log { " for a log axis" } else { "" });
        }
    }
    Ok(Ranges { x, y, clamp_y: c.y_range.is_some() })
}

/// Tick labels: up to 4 significant digits, scientific outside [1e-3, 1e5).
pub(crate) fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{:.*}", (3 - a.log10().floor() as i32).clamp(0, 6) as usize, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One axis: a linear or logarithmic map of [lo, hi] with the ticks chosen here (plotters'
/// own log axis labels powers of ten only, so an axis spanning less than a decade had none).
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    /// Labelled ticks, with a grid line.
    pub(crate) major: Vec<f64>,
    /// Unlabelled light grid lines.
    pub(crate) minor: Vec<f64>,
}

impl Axis {
    pub(crate) fn new((lo, hi): (f64, f64), log: bool, ticks: Option<&[f64]>) -> Self {
        let inside =
            |v: &f64| v.is_finite() && *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12) && (!log || *v > 0.0);
        let (major, minor) = match ticks {
            Some(t) => (t.iter().copied().filter(inside).collect(), vec![]),
            None if log => log_ticks(lo, hi),
            None => linear_ticks(lo, hi),
        };
        let minor = minor.into_iter().filter(|v| inside(v) && !major.contains(v)).collect();
        Axis { lo, hi, log, major, minor }
    }
}

/// Six to eight 1-2-5 steps, minor lines between them.
fn linear_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let raw = (hi - lo) / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let mult = [1.0, 2.0, 5.0, 10.0].into_iter().find(|m| m * mag >= raw).unwrap_or(10.0);
    let step = mult * mag;
    let snap = |v: f64| if v.abs() < step * 1e-9 { 0.0 } else { v };
    let major: Vec<f64> =
        ((lo / step).ceil() as i64..=(hi / step).floor() as i64).map(|k| snap(k as f64 * step)).collect();
    let sub = if mult == 2.0 { 4.0 } else { 5.0 };
    let fine = step / sub;
    let minor = ((lo / fine).ceil() as i64..=(hi / fine).floor() as i64).map(|k| snap(k as f64 * fine)).collect();
    (major, minor)
}

/// Powers of ten when the axis spans two or more (thinned to at most 8), else 1-2-5 (or 1…9)
/// times powers of ten.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades: Vec<f64> = (k0..=k1).map(|k| 10f64.powi(k)).filter(|v| *v >= lo && *v <= hi).collect();
    let times = |ms: &[f64]| -> Vec<f64> {
        (k0..=k1).flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k))).filter(|v| *v >= lo && *v <= hi).collect()
    };
    if decades.len() >= 2 {
        let every = decades.len().div_ceil(8);
        let major: Vec<f64> =
            decades.iter().copied().enumerate().filter(|(i, _)| i % every == 0).map(|(_, v)| v).collect();
        let minor = if every == 1 { times(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]) } else { decades };
        return (major, minor);
    }
    let one_two_five = times(&[1.0, 2.0, 5.0]);
    let all = times(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    if one_two_five.len() >= 3 {
        (one_two_five, all)
    } else {
        (all, vec![])
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = if self.log {
            (value.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (value - self.lo) / (self.hi - self.lo)
        };
        let px = limit.0 as f64 + t * (limit.1 - limit.0) as f64;
        if px.is_nan() {
            return limit.0;
        }
        px.clamp(-1e7, 1e7).round() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.major.clone(),
            KeyPointWeight::Any => {
                let mut all: Vec<f64> = self.major.iter().chain(&self.minor).copied().collect();
                all.sort_by(f64::total_cmp);
                all
            }
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        format_tick(*value)
    }
}

/// The contiguous runs of drawable points of a series (a skipped point breaks the line).
pub(crate) fn runs(s: &Series, c: &Chart, r: &Ranges) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![];
    let mut cur: Vec<(f64, f64)> = vec![];
    for &(x, y, _) in &s.points {
        let y = if r.clamp_y && y.is_finite() && (c.log_y || y > r.y.0) {
            // On a fixed range, values beyond it sit on its edge (zeros on a log axis included).
            y.clamp(r.y.0, r.y.1)
        } else {
            y
        };
        if usable(x, c.log_x) && usable(y, c.log_y) {
            cur.push((x, y));
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn in_range(v: f64, (lo, hi): (f64, f64)) -> bool {
    v >= lo && v <= hi
}
