//! Figures for the reproduction report, drawn with `plotters` to both PNG and SVG.
//!
//! Every public drawing function takes a path *stem* and writes `stem.png` and `stem.svg`, each
//! atomically (temporary file in the same directory, then rename). Text in the PNG is rendered
//! with a subset of DejaVu Sans embedded in the binary (`experiments/assets/`), so figures draw
//! the same on a machine with no system fonts; the SVG names the `sans-serif` family and lets
//! the viewer choose.
//!
//! The building block is a [`Chart`] (one set of axes: series with optional error bars,
//! horizontal / vertical reference lines, a legend and caption lines under the axes). Charts are
//! drawn alone with [`line_chart`] or side by side with [`panel_grid`]; [`Chart::scatter_with_fit`]
//! and [`Chart::density`] build the correlation and spectral-density charts, and
//! [`scatter_with_fit`], [`density_chart`] and [`density_pair`] draw them directly.
//!
//! Points with a NaN or infinite coordinate (or a non-positive one on a log axis) are skipped;
//! a line is broken where one is skipped. A chart with no series still draws its (empty) axes.
//!
//! ```no_run
//! use slt_experiments::figures::{line_chart, Chart, Series};
//! let chart = Chart::new("LLC vs width", "hidden width", "λ̂")
//!     .log_x()
//!     .series(Series::line_points("SGD", vec![(16.0, 10.0, Some(0.5)), (64.0, 20.0, Some(0.8))]))
//!     .series(Series::line_points("NGD", vec![(16.0, 12.0, Some(0.4)), (64.0, 26.0, Some(1.1))]))
//!     .annotation("Welch t-test, width 64: t = 4.2, p = 0.003");
//! line_chart(std::path::Path::new("results/fig1"), &chart)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use plotters::chart::SeriesAnno;
use plotters::coord::ranged1d::{KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, DrawingErrorKind};

/// The embedded font (a subset of DejaVu Sans 2.37; licence in `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// Width × height in pixels of a figure holding one chart.
pub const SINGLE_SIZE: (u32, u32) = (960, 640);
/// Width × height in pixels of one panel of a [`panel_grid`].
pub const PANEL_SIZE: (u32, u32) = (640, 480);

/// The matplotlib "tab10" colours: series `i` gets `PALETTE[i % 10]` unless it names one.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesStyle {
    /// A solid line through the points.
    Line,
    /// A dashed line through the points.
    Dashed,
    /// Markers only.
    Points,
    /// A solid line with a marker at each point.
    #[default]
    LinePoints,
}

/// One series: `(x, y, optional ± y error)` points, drawn in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Legend entry; an empty label leaves the series out of the legend.
    pub label: String,
    pub points: Vec<(f64, f64, Option<f64>)>,
    pub style: SeriesStyle,
    /// Index into [`PALETTE`]; `None`: the series' position in the chart.
    pub color: Option<usize>,
}

impl Series {
    pub fn new(label: impl Into<String>, style: SeriesStyle, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self { label: label.into(), points, style, color: None }
    }
    /// A solid line, points given with optional error bars.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::Line, points)
    }
    /// A line with markers, points given with optional error bars.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::LinePoints, points)
    }
    /// Markers only, points given with optional error bars.
    pub fn points(label: impl Into<String>, points: Vec<(f64, f64, Option<f64>)>) -> Self {
        Self::new(label, SeriesStyle::Points, points)
    }
    /// A line from plain `(x, y)` pairs (no error bars).
    pub fn xy(label: impl Into<String>, style: SeriesStyle, xy: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self::new(label, style, xy.into_iter().map(|(x, y)| (x, y, None)).collect())
    }
    pub fn with_color(mut self, palette_index: usize) -> Self {
        self.color = Some(palette_index);
        self
    }
    pub fn with_style(mut self, style: SeriesStyle) -> Self {
        self.style = style;
        self
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// The corner holding the fewest data points.
    #[default]
    Auto,
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
    /// No legend.
    Hidden,
}

/// One set of axes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Horizontal reference lines `(legend label, y)`, dashed (e.g. the SGD level in Fig. 3).
    pub hlines: Vec<(String, f64)>,
    /// Vertical reference lines `(legend label, x)`, dotted (e.g. the split epoch).
    pub vlines: Vec<(String, f64)>,
    /// Lines of text printed under the axes (test statistics, p-values, run counts).
    pub annotations: Vec<String>,
    /// Fixed x range; `None`: fitted to the data (log axes: widened to whole decades).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range; `None`: fitted to the data. Lines leaving a fixed range are clipped to it.
    pub y_range: Option<(f64, f64)>,
    /// Labelled x ticks (e.g. the widths 16, 32, …, 256 on a log axis); `None`: chosen
    /// automatically (1-2-5 steps; powers of ten on log axes spanning two decades or more).
    pub x_ticks: Option<Vec<f64>>,
    /// Labelled y ticks; `None`: automatic.
    pub y_ticks: Option<Vec<f64>>,
    pub legend: LegendPosition,
}

/// A spectral density on a grid (e.g. `slt_hessian::SlqDensity`'s `grid` and `density`).
#[derive(Debug, Clone, Copy)]
pub struct DensityCurve<'a> {
    pub label: &'a str,
    pub grid: &'a [f64],
    pub density: &'a [f64],
}

/// On a log-y density chart, the axis spans this many decades below the peak.
pub const DENSITY_DECADES: f64 = 10.0;

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), ..Default::default() }
    }
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
    pub fn hline(mut self, label: impl Into<String>, y: f64) -> Self {
        self.hlines.push((label.into(), y));
        self
    }
    pub fn vline(mut self, label: impl Into<String>, x: f64) -> Self {
        self.vlines.push((label.into(), x));
        self
    }
    pub fn annotation(mut self, line: impl Into<String>) -> Self {
        self.annotations.push(line.into());
        self
    }
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    pub fn x_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.x_ticks = Some(ticks);
        self
    }
    pub fn y_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.y_ticks = Some(ticks);
        self
    }
    pub fn legend(mut self, position: LegendPosition) -> Self {
        self.legend = position;
        self
    }

    /// A correlation chart: the points, and the least-squares line labelled with Pearson's r,
    /// its p-value and n (when they are defined; otherwise the points alone, with the reason
    /// under the axes). Non-finite pairs are dropped before fitting.
    pub fn scatter_with_fit(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        label: impl Into<String>,
        points: &[(f64, f64)],
    ) -> Self {
        let pts: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        let mut chart =
            Chart::new(title, x_label, y_label).series(Series::xy(label, SeriesStyle::Points, pts.iter().copied()));
        let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
        match (slt_stats::linear_fit(&xs, &ys), slt_stats::pearson(&xs, &ys)) {
            (Some((a, b)), Ok(c)) => {
                let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
                let line = Series::xy(
                    format!("least squares: r = {:.3}, p = {}, n = {}", c.r, format_p(c.p_value), c.n),
                    SeriesStyle::Line,
                    [(lo, a + b * lo), (hi, a + b * hi)],
                )
                .with_color(3);
                chart = chart.series(line);
            }
            (_, Err(e)) => chart = chart.annotation(format!("no fit: {e}")),
            (None, Ok(_)) => chart = chart.annotation("no fit: x is constant"),
        }
        chart
    }

    /// A spectral-density chart: x = eigenvalue, y = density, one line per curve. With `log_y`
    /// the y axis spans [`DENSITY_DECADES`] decades below the highest peak and smaller values
    /// (zeros included) sit on the bottom edge.
    pub fn density(title: impl Into<String>, curves: &[DensityCurve<'_>], log_y: bool) -> Self {
        let mut chart = Chart::new(title, "eigenvalue", "density");
        chart.log_y = log_y;
        chart.legend = if curves.iter().any(|c| !c.label.is_empty()) {
            LegendPosition::UpperRight
        } else {
            LegendPosition::Hidden
        };
        for c in curves {
            chart.series.push(Series::xy(
                c.label,
                SeriesStyle::Line,
                c.grid.iter().copied().zip(c.density.iter().copied()),
            ));
        }
        if log_y {
            if let Some(range) = density_log_range(curves) {
                chart.y_range = Some(range);
            }
        }
        chart
    }
}

fn density_log_range(curves: &[DensityCurve<'_>]) -> Option<(f64, f64)> {
    let peak = curves.iter().flat_map(|c| c.density.iter().copied()).filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    (peak > 0.0).then(|| {
        let hi = 10f64.powf(peak.log10().ceil());
        let lo = 10f64.powf((peak.log10() - DENSITY_DECADES).floor());
        (lo, if hi <= peak { hi * 10.0 } else { hi })
    })
}

/// A p-value for a legend or caption: 3 significant digits, scientific below 1e-3.
pub fn format_p(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// The two files a figure was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureFiles {
    pub png: PathBuf,
    pub svg: PathBuf,
}

fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not parse".to_string())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// A plotters error (whose error types carry a backend parameter) as text.
fn pe<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e:?}")
}

/// The embedded font, parsed once.
fn glyph_font() -> &'static ab_glyph::FontRef<'static> {
    static PARSED: OnceLock<ab_glyph::FontRef<'static>> = OnceLock::new();
    PARSED.get_or_init(|| {
        ab_glyph::FontRef::try_from_slice(FONT).expect("the embedded font parses (checked by ensure_font)")
    })
}

/// A bitmap backend whose text is laid out properly: plotters' own `ab_glyph` renderer drops
/// each glyph's side bearing and vertical metrics (uneven letter spacing, combining marks such
/// as the hat of λ̂ drawn beside their letter). This wrapper places glyphs at their pen
/// position, with kerning, and reports a text box of ascent − descent, so centred labels are
/// centred. Everything except text goes straight to the wrapped backend.
struct GlyphText<B>(B);

impl<B> GlyphText<B> {
    /// The glyphs of `text` at `size` px: (glyph, pen x), and the total advance.
    fn layout(text: &str, size: f32) -> (Vec<ab_glyph::Glyph>, f32) {
        use ab_glyph::{Font, ScaleFont};
        let font = glyph_font().as_scaled(size);
        let mut caret = 0f32;
        let mut prev: Option<ab_glyph::GlyphId> = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                caret += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(size, ab_glyph::point(caret, font.ascent())));
            caret += font.h_advance(id);
            prev = Some(id);
        }
        (glyphs, caret)
    }

    fn text_height(size: f32) -> f32 {
        use ab_glyph::{Font, ScaleFont};
        let font = glyph_font().as_scaled(size);
        font.ascent() - font.descent()
    }
}

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;
    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (iw, ih): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, (iw, ih), src)
    }
    fn estimate_text_size<S: plotters_backend::BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let size = style.size() as f32;
        let (_, width) = Self::layout(text, size);
        Ok((width.ceil() as u32, Self::text_height(size).ceil() as u32))
    }
    fn draw_text<S: plotters_backend::BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        use ab_glyph::Font;
        use plotters_backend::text_anchor::{HPos as H, VPos as V};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        let (glyphs, width) = Self::layout(text, size);
        let height = Self::text_height(size);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            H::Left => 0.0,
            H::Center => -width / 2.0,
            H::Right => -width,
        };
        let dy = match anchor.v_pos {
            V::Top => 0.0,
            V::Center => -height / 2.0,
            V::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut pixels = Vec::new();
        for g in glyphs {
            if let Some(outline) = glyph_font().outline_glyph(g) {
                let b = outline.px_bounds();
                outline.draw(|x, y, coverage| {
                    if coverage > 0.0 {
                        let (px, py) =
                            ((b.min.x + x as f32 + dx).round() as i32, (b.min.y + y as f32 + dy).round() as i32);
                        pixels.push((px, py, coverage.min(1.0)));
                    }
                });
            }
        }
        for (x, y, coverage) in pixels {
            let (x, y) = trans.transform(x, y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                self.0.draw_pixel((x, y), BackendColor { alpha: color.alpha * coverage as f64, rgb: color.rgb })?;
            }
        }
        Ok(())
    }
}

/// Renders `charts` in a `rows` × `cols` grid (optionally under a figure title) to
/// `stem.png` and `stem.svg`.
fn write_figure(
    stem: &Path,
    title: &str,
    rows: usize,
    cols: usize,
    charts: &[Chart],
    panel: (u32, u32),
) -> anyhow::Result<FigureFiles> {
    let files = FigureFiles { png: with_suffix(stem, "png"), svg: with_suffix(stem, "svg") };
    let context = || format!("drawing figure {}", files.png.display());
    ensure_font().with_context(context)?;
    if rows == 0 || cols == 0 {
        bail!("{}: a {rows} × {cols} grid holds no panels", stem.display());
    }
    if charts.len() > rows * cols {
        bail!("{}: {} charts do not fit a {rows} × {cols} grid", stem.display(), charts.len());
    }
    let title_h = if title.is_empty() { 0 } else { 44 };
    let size = (panel.0 * cols as u32, panel.1 * rows as u32 + title_h);

    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = GlyphText(BitMapBackend::with_buffer(&mut rgb, size)).into_drawing_area();
        draw_grid(&root, title, title_h, rows, cols, charts).with_context(context)?;
        root.present().map_err(pe).with_context(context)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().context("encoding PNG")?;
        w.write_image_data(&rgb).context("encoding PNG")?;
    }

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_grid(&root, title, title_h, rows, cols, charts)
            .with_context(|| format!("drawing figure {}", files.svg.display()))?;
        root.present().map_err(pe)?;
    }
    crate::store::write_atomic(&files.png, &png_bytes)?;
    crate::store::write_atomic(&files.svg, svg.as_bytes())?;
    Ok(files)
}

fn draw_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    title_h: u32,
    rows: usize,
    cols: usize,
    charts: &[Chart],
) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let body = if title.is_empty() {
        root.clone()
    } else {
        let (top, body) = root.split_vertically(title_h);
        let w = top.dim_in_pixel().0 as i32;
        top.draw(&Text::new(
            title.to_string(),
            (w / 2, title_h as i32 / 2),
            font(26.0).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(pe)?;
        body
    };
    let panels = body.split_evenly((rows, cols));
    for (area, chart) in panels.iter().zip(charts) {
        draw_chart(area, chart)?;
    }
    Ok(())
}

/// Data ranges and what to do with out-of-range values.
#[derive(Debug, Clone, Copy)]
struct Ranges {
    x: (f64, f64),
    y: (f64, f64),
    clamp_y: bool,
}

fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

fn fit_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
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

fn ranges(c: &Chart) -> anyhow::Result<Ranges> {
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
fn format_tick(v: f64) -> String {
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
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    /// Labelled ticks, with a grid line.
    major: Vec<f64>,
    /// Unlabelled light grid lines.
    minor: Vec<f64>,
}

impl Axis {
    fn new((lo, hi): (f64, f64), log: bool, ticks: Option<&[f64]>) -> Self {
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

fn draw_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &Chart) -> anyhow::Result<()> {
    let r = ranges(c)?;
    let line_h = 22u32;
    let (plot, notes) = if c.annotations.is_empty() {
        (area.clone(), None)
    } else {
        let h = area.dim_in_pixel().1;
        let notes_h = (line_h * c.annotations.len() as u32 + 8).min(h / 2);
        let (p, n) = area.split_vertically(h - notes_h);
        (p, Some(n))
    };
    let x = Axis::new(r.x, c.log_x, c.x_ticks.as_deref());
    let y = Axis::new(r.y, c.log_y, c.y_ticks.as_deref());
    draw_axes(&plot, c, &r, x, y)?;
    if let Some(notes) = notes {
        for (i, line) in c.annotations.iter().enumerate() {
            notes.draw(&Text::new(line.clone(), (70, 4 + (i as u32 * line_h) as i32), font(15.0))).map_err(pe)?;
        }
    }
    Ok(())
}

/// The contiguous runs of drawable points of a series (a skipped point breaks the line).
fn runs(s: &Series, c: &Chart, r: &Ranges) -> Vec<Vec<(f64, f64)>> {
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

fn in_range(v: f64, (lo, hi): (f64, f64)) -> bool {
    v >= lo && v <= hi
}

/// The emptiest corner, in the axes' own (log or linear) coordinates.
fn auto_legend(c: &Chart, r: &Ranges) -> SeriesLabelPosition {
    let norm = |v: f64, (lo, hi): (f64, f64), log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let mut counts = [0usize; 4]; // UR, UL, LR, LL
    for s in &c.series {
        for &(x, y, _) in &s.points {
            if !(usable(x, c.log_x) && usable(y, c.log_y)) {
                continue;
            }
            let (u, v) = (norm(x, r.x, c.log_x), norm(y, r.y, c.log_y));
            let (right, left, top, bottom) = (u > 0.55, u < 0.45, v > 0.65, v < 0.35);
            counts[0] += (right && top) as usize;
            counts[1] += (left && top) as usize;
            counts[2] += (right && bottom) as usize;
            counts[3] += (left && bottom) as usize;
        }
    }
    match (0..4).min_by_key(|&i| counts[i]).unwrap_or(0) {
        0 => SeriesLabelPosition::UpperRight,
        1 => SeriesLabelPosition::UpperLeft,
        2 => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::LowerLeft,
    }
}

fn draw_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Chart,
    r: &Ranges,
    xs: Axis,
    ys: Axis,
) -> anyhow::Result<()> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(12).margin_right(24).x_label_area_size(56).y_label_area_size(84);
    if !c.title.is_empty() {
        builder.caption(&c.title, font(22.0));
    }
    let mut chart = builder.build_cartesian_2d(xs, ys).map_err(pe)?;
    let fx = |v: &f64| format_tick(*v);
    let fy = fx;
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .axis_desc_style(font(18.0))
        .label_style(font(15.0))
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .axis_style(BLACK.stroke_width(1))
        .draw()
        .map_err(pe)?;

    let mut any_label = false;
    for (i, s) in c.series.iter().enumerate() {
        let color = PALETTE[s.color.unwrap_or(i) % PALETTE.len()];
        let line = color.stroke_width(2);
        let runs = runs(s, c, r);
        let labelled = !s.label.is_empty();
        let mut legend_done = false;
        // The first drawn part of a labelled series carries its legend entry.
        macro_rules! register {
            ($anno:expr) => {
                if labelled && !legend_done {
                    legend_entry($anno, &s.label, s.style, color);
                    legend_done = true;
                }
            };
        }
        // Lines.
        if matches!(s.style, SeriesStyle::Line | SeriesStyle::LinePoints | SeriesStyle::Dashed) {
            for run in &runs {
                let anno = if s.style == SeriesStyle::Dashed {
                    chart.draw_series(DashedLineSeries::new(run.iter().copied(), 8, 5, line)).map_err(pe)?
                } else {
                    chart.draw_series(LineSeries::new(run.iter().copied(), line)).map_err(pe)?
                };
                register!(anno);
            }
        }
        // Markers (points outside a fixed range are not drawn).
        if matches!(s.style, SeriesStyle::Points | SeriesStyle::LinePoints) {
            let pts: Vec<(f64, f64)> =
                runs.iter().flatten().copied().filter(|p| in_range(p.1, r.y) && in_range(p.0, r.x)).collect();
            let anno = chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(pe)?;
            register!(anno);
        }
        // Error bars: a vertical segment with 8-pixel caps, clipped to the y range.
        let bars: Vec<(f64, f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(x, y, e)| {
                let e = e?.abs();
                if !(e.is_finite() && e > 0.0 && usable(x, c.log_x) && usable(y, c.log_y) && in_range(x, r.x)) {
                    return None;
                }
                let lo = (y - e).max(r.y.0);
                let hi = (y + e).min(r.y.1);
                (lo < hi).then_some((x, lo, hi))
            })
            .collect();
        let cap =
            |x: f64, y: f64| EmptyElement::at((x, y)) + PathElement::new(vec![(-5, 0), (5, 0)], color.stroke_width(2));
        chart
            .draw_series(
                bars.iter().map(|&(x, lo, hi)| PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(2))),
            )
            .map_err(pe)?;
        chart
            .draw_series(bars.iter().flat_map(|&(x, lo, hi)| {
                [(y_is_edge(lo, r.y.0), cap(x, lo)), (y_is_edge(hi, r.y.1), cap(x, hi))]
                    .into_iter()
                    .filter(|(edge, _)| !edge)
                    .map(|(_, c)| c)
            }))
            .map_err(pe)?;
        any_label |= labelled && legend_done;
    }

    // Reference lines.
    let refs = [RGBColor(0, 0, 0), RGBColor(110, 110, 110), RGBColor(170, 170, 170)];
    for (i, (label, y)) in c.hlines.iter().enumerate() {
        if !(usable(*y, c.log_y) && in_range(*y, r.y)) {
            continue;
        }
        let style = refs[i % refs.len()].stroke_width(2);
        let anno = chart.draw_series(DashedLineSeries::new([(r.x.0, *y), (r.x.1, *y)], 10, 6, style)).map_err(pe)?;
        if !label.is_empty() {
            anno.label(label.as_str()).legend(move |(lx, ly)| {
                EmptyElement::at((lx, ly))
                    + PathElement::new(vec![(0, 0), (9, 0)], style)
                    + PathElement::new(vec![(15, 0), (24, 0)], style)
            });
            any_label = true;
        }
    }
    for (i, (label, x)) in c.vlines.iter().enumerate() {
        if !(usable(*x, c.log_x) && in_range(*x, r.x)) {
            continue;
        }
        let style = refs[i % refs.len()].stroke_width(2);
        let anno = chart.draw_series(DashedLineSeries::new([(*x, r.y.0), (*x, r.y.1)], 3, 4, style)).map_err(pe)?;
        if !label.is_empty() {
            anno.label(label.as_str()).legend(move |(lx, ly)| {
                EmptyElement::at((lx, ly))
                    + PathElement::new(vec![(0, 0), (3, 0)], style)
                    + PathElement::new(vec![(7, 0), (10, 0)], style)
                    + PathElement::new(vec![(14, 0), (17, 0)], style)
                    + PathElement::new(vec![(21, 0), (24, 0)], style)
            });
            any_label = true;
        }
    }

    let position = match c.legend {
        LegendPosition::Hidden => None,
        LegendPosition::Auto => Some(auto_legend(c, r)),
        LegendPosition::UpperLeft => Some(SeriesLabelPosition::UpperLeft),
        LegendPosition::UpperRight => Some(SeriesLabelPosition::UpperRight),
        LegendPosition::LowerLeft => Some(SeriesLabelPosition::LowerLeft),
        LegendPosition::LowerRight => Some(SeriesLabelPosition::LowerRight),
    };
    if let (Some(position), true) = (position, any_label) {
        chart
            .configure_series_labels()
            .position(position)
            .margin(10)
            .legend_area_size(30)
            .label_font(font(15.0))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(pe)?;
    }
    Ok(())
}

/// The legend entry of a series: a short line and/or a marker, as the series is drawn.
fn legend_entry<'a, DB: DrawingBackend + 'a>(
    anno: &mut SeriesAnno<'a, DB>,
    label: &str,
    style: SeriesStyle,
    color: RGBColor,
) {
    anno.label(label);
    anno.legend(move |(lx, ly)| {
        let elem = EmptyElement::at((lx + 12, ly));
        let stroke = color.stroke_width(2);
        let (first, second) = match style {
            SeriesStyle::Points => (vec![], vec![]),
            SeriesStyle::Dashed => (vec![(-12, 0), (-3, 0)], vec![(3, 0), (12, 0)]),
            SeriesStyle::Line | SeriesStyle::LinePoints => (vec![(-12, 0), (12, 0)], vec![]),
        };
        let radius = if matches!(style, SeriesStyle::Line | SeriesStyle::Dashed) { 0 } else { 4 };
        let marker = if radius == 0 { TRANSPARENT.filled() } else { color.filled() };
        elem + PathElement::new(first, stroke) + PathElement::new(second, stroke) + Circle::new((0, 0), radius, marker)
    });
}

fn y_is_edge(v: f64, edge: f64) -> bool {
    v == edge
}

/// Draws one chart to `stem.png` and `stem.svg` ([`SINGLE_SIZE`] pixels).
pub fn line_chart(stem: &Path, chart: &Chart) -> anyhow::Result<FigureFiles> {
    write_figure(stem, "", 1, 1, std::slice::from_ref(chart), SINGLE_SIZE)
}

/// Draws `charts` row by row in a `rows` × `cols` grid ([`PANEL_SIZE`] pixels each) under an
/// optional figure `title` ("" for none). Fewer charts than cells leave the last cells blank;
/// more is an error.
pub fn panel_grid(stem: &Path, title: &str, rows: usize, cols: usize, charts: &[Chart]) -> anyhow::Result<FigureFiles> {
    write_figure(stem, title, rows, cols, charts, PANEL_SIZE)
}

/// A correlation figure ([`Chart::scatter_with_fit`]): the points, the least-squares line and
/// Pearson's r in the legend.
pub fn scatter_with_fit(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    label: &str,
    points: &[(f64, f64)],
) -> anyhow::Result<FigureFiles> {
    line_chart(stem, &Chart::scatter_with_fit(title, x_label, y_label, label, points))
}

/// A spectral density (x = eigenvalue, y = density; `log_y` as in [`Chart::density`]).
pub fn density_chart(stem: &Path, title: &str, curve: DensityCurve<'_>, log_y: bool) -> anyhow::Result<FigureFiles> {
    if curve.grid.len() != curve.density.len() {
        bail!("{}: density grid has {} points but density {}", stem.display(), curve.grid.len(), curve.density.len());
    }
    line_chart(stem, &Chart::density(title, &[curve], log_y))
}

/// Two spectral densities side by side (e.g. SGD and NGD solutions), with the same y axis so
/// they compare at a glance; each panel is titled by its curve's label.
pub fn density_pair(
    stem: &Path,
    title: &str,
    left: DensityCurve<'_>,
    right: DensityCurve<'_>,
    log_y: bool,
) -> anyhow::Result<FigureFiles> {
    for c in [left, right] {
        if c.grid.len() != c.density.len() {
            bail!(
                "{}: density '{}' has {} grid points but {} values",
                stem.display(),
                c.label,
                c.grid.len(),
                c.density.len()
            );
        }
    }
    let shared_y = if log_y {
        density_log_range(&[left, right])
    } else {
        let peak = [left, right]
            .iter()
            .flat_map(|c| c.density.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        (peak > 0.0).then_some((0.0, peak * 1.05))
    };
    let panel = |c: DensityCurve<'_>| {
        let mut chart = Chart::density(c.label, &[DensityCurve { label: "", ..c }], log_y);
        chart.y_range = shared_y.or(chart.y_range);
        chart
    };
    panel_grid(stem, title, 1, 2, &[panel(left), panel(right)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width and height from a PNG's IHDR chunk, after checking the signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// Decodes the PNG fully (catches truncated or corrupt data) and returns its RGB pixels.
    fn decode(path: &Path) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn check(files: &FigureFiles, size: (u32, u32), texts: &[&str]) -> Vec<u8> {
        let bytes = std::fs::read(&files.png).unwrap();
        assert_eq!(png_size(&bytes), size);
        let (info, pixels) = decode(&files.png);
        assert_eq!((info.width, info.height, info.color_type), (size.0, size.1, png::ColorType::Rgb));
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..80.min(svg.len())]);
        for t in texts {
            assert!(svg.contains(t), "SVG lacks {t:?}");
        }
        pixels
    }

    /// Pixels neither white nor light grey (grid): text, axes, data.
    fn dark_pixels(rgb: &[u8]) -> usize {
        rgb.chunks(3).filter(|p| p.iter().map(|&v| v as u32).sum::<u32>() < 300).count()
    }

    fn demo_chart() -> Chart {
        Chart::new("LLC vs width", "hidden width", "λ̂ (LLC)")
            .log_x()
            .x_ticks(vec![16.0, 32.0, 64.0, 128.0])
            .series(Series::line_points(
                "SGD",
                vec![
                    (16.0, 10.0, Some(0.5)),
                    (32.0, 14.0, Some(0.9)),
                    (64.0, 19.0, Some(0.8)),
                    (128.0, 24.0, Some(1.3)),
                ],
            ))
            .series(Series::line_points(
                "NGD",
                vec![
                    (16.0, 12.5, Some(0.4)),
                    (32.0, f64::NAN, None),
                    (64.0, 26.0, Some(1.1)),
                    (128.0, 33.0, Some(2.0)),
                ],
            ))
            .hline("SGD at width 256", 27.0)
            .annotation("Welch t-test at width 128: t = 3.84, df = 7.1, p = 0.0061")
            .annotation("5 seeds per point; error bars: ± 1 standard error")
    }

    #[test]
    fn line_chart_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let files = line_chart(&dir.path().join("fig1"), &demo_chart()).unwrap();
        assert_eq!(files.png, dir.path().join("fig1.png"));
        let pixels =
            check(&files, SINGLE_SIZE, &["LLC vs width", "hidden width", "λ̂ (LLC)", "SGD", "NGD", "p = 0.0061"]);
        // Text and lines were really rasterised (the embedded font works): lots of dark pixels.
        assert!(dark_pixels(&pixels) > 3000, "{}", dark_pixels(&pixels));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn nan_points_log_axes_and_empty_charts_draw() {
        let dir = tempfile::tempdir().unwrap();
        // Only unusable points (NaN, and values ≤ 0 on log axes): valid, titled, empty axes.
        let bad = Chart::new("nothing to show", "x", "y").log_x().log_y().series(Series::points(
            "bad",
            vec![(f64::NAN, 1.0, None), (0.0, 1.0, None), (1.0, -2.0, Some(f64::NAN)), (1.0, f64::INFINITY, None)],
        ));
        let files = line_chart(&dir.path().join("bad"), &bad).unwrap();
        check(&files, SINGLE_SIZE, &["nothing to show"]);
        let empty = Chart::new("empty", "x", "y");
        check(&line_chart(&dir.path().join("empty"), &empty).unwrap(), SINGLE_SIZE, &["empty"]);
        // A single point on linear axes (zero-width range) and a constant series.
        let one = Chart::new("one point", "x", "y").series(Series::points("p", vec![(3.0, 3.0, Some(1.0))]));
        check(&line_chart(&dir.path().join("one"), &one).unwrap(), SINGLE_SIZE, &["one point"]);
        // An impossible fixed range is an error naming the chart.
        let err = line_chart(&dir.path().join("x"), &Chart::new("inverted", "x", "y").y_range(2.0, 1.0)).unwrap_err();
        assert!(format!("{err:#}").contains("inverted"), "{err:#}");
        let err =
            line_chart(&dir.path().join("x"), &Chart::new("neg", "x", "y").log_y().y_range(-1.0, 1.0)).unwrap_err();
        assert!(format!("{err:#}").contains("log axis"), "{err:#}");
    }

    #[test]
    fn panels_scatter_and_density() {
        let dir = tempfile::tempdir().unwrap();
        let a = demo_chart();
        let b = Chart::new("λ̂ over epochs", "epoch", "λ̂")
            .series(Series::line(
                "NGD lr 1e-2",
                (0..20).map(|e| (e as f64, 10.0 + (e as f64).sqrt() * 3.0, None)).collect(),
            ))
            .series(Series::new(
                "SGD",
                SeriesStyle::Dashed,
                (0..20).map(|e| (e as f64, 10.0 + e as f64 * 0.05, None)).collect(),
            ))
            .vline("split", 5.0);
        let files =
            panel_grid(&dir.path().join("grid"), "Figure 4: split runs", 1, 2, &[a.clone(), b.clone()]).unwrap();
        check(
            &files,
            (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44),
            &["Figure 4: split runs", "λ̂ over epochs", "LLC vs width", "split"],
        );
        // Three charts in a 2 × 2 grid leave one cell blank; five is an error.
        panel_grid(&dir.path().join("grid3"), "", 2, 2, &[a.clone(), b.clone(), a.clone()]).unwrap();
        let err = panel_grid(&dir.path().join("grid5"), "", 2, 2, &vec![a.clone(); 5]).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");

        let pts: Vec<(f64, f64)> =
            (0..12).map(|i| (i as f64, 2.0 * i as f64 + ((i * 7) % 5) as f64)).chain([(f64::NAN, 1.0)]).collect();
        let files =
            scatter_with_fit(&dir.path().join("corr"), "λ̂ vs validation loss", "validation loss", "λ̂", "epochs", &pts)
                .unwrap();
        check(&files, SINGLE_SIZE, &["λ̂ vs validation loss", "least squares: r = 0.9", "n = 12"]);
        // Too few points for a correlation: drawn, with the reason in the caption.
        let files = scatter_with_fit(&dir.path().join("corr2"), "two points", "x", "y", "p", &[(1.0, 1.0), (2.0, 3.0)])
            .unwrap();
        check(&files, SINGLE_SIZE, &["no fit", "at least 3"]);

        // A Gaussian-mixture "spectral density" with exact zeros in the tails (log-y must not
        // break on them).
        let grid: Vec<f64> = (0..400).map(|i| -2.0 + i as f64 * 0.05).collect();
        let dens = |w: f64| -> Vec<f64> {
            grid.iter()
                .map(|&x| {
                    let d = 0.9 * (-x * x / 0.01).exp() * 4.0 + 0.1 * (-(x - w) * (x - w) / 0.5).exp();
                    if d < 1e-200 {
                        0.0
                    } else {
                        d
                    }
                })
                .collect()
        };
        let (d1, d2) = (dens(8.0), dens(14.0));
        let files = density_chart(
            &dir.path().join("density"),
            "Hessian spectrum",
            DensityCurve { label: "SGD", grid: &grid, density: &d1 },
            true,
        )
        .unwrap();
        check(&files, SINGLE_SIZE, &["Hessian spectrum", "eigenvalue", "density"]);
        let files = density_pair(
            &dir.path().join("pair"),
            "Hessian spectral density",
            DensityCurve { label: "SGD", grid: &grid, density: &d1 },
            DensityCurve { label: "NGD", grid: &grid, density: &d2 },
            true,
        )
        .unwrap();
        check(&files, (2 * PANEL_SIZE.0, PANEL_SIZE.1 + 44), &["SGD", "NGD", "Hessian spectral density"]);
        let err = density_chart(
            &dir.path().join("bad"),
            "t",
            DensityCurve { label: "", grid: &grid, density: &d1[..3] },
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("grid"), "{err}");

        // Keep copies for looking at by hand: SLT_FIGURE_DEMO_DIR=/some/dir cargo test ...
        if let Ok(out) = std::env::var("SLT_FIGURE_DEMO_DIR") {
            let out = Path::new(&out);
            line_chart(&out.join("demo_line"), &demo_chart()).unwrap();
            panel_grid(&out.join("demo_grid"), "Figure 4: split runs", 1, 2, &[a, b]).unwrap();
            scatter_with_fit(&out.join("demo_corr"), "λ̂ vs validation loss", "validation loss", "λ̂", "epochs", &pts)
                .unwrap();
            density_pair(
                &out.join("demo_pair"),
                "Hessian spectral density",
                DensityCurve { label: "SGD", grid: &grid, density: &d1 },
                DensityCurve { label: "NGD", grid: &grid, density: &d2 },
                true,
            )
            .unwrap();
            density_chart(
                &out.join("demo_density"),
                "Hessian spectrum",
                DensityCurve { label: "SGD", grid: &grid, density: &d1 },
                true,
            )
            .unwrap();
        }
    }

    #[test]
    fn tick_formats() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(120.0), "120");
        assert_eq!(format_tick(0.0125), "0.0125");
        assert_eq!(format_tick(2e-5), "2e-5");
        assert_eq!(format_tick(1.5e6), "1.5e6");
        // Log axes: powers of ten over wide ranges, 1-2-5 over narrow ones, given ticks kept.
        let a = Axis::new((3e-9, 40.0), true, None);
        assert_eq!(a.major.len(), 5, "{a:?}"); // 1e-8 … 10 thinned to every other decade
        assert!(a.major.contains(&1e-8) && a.major.contains(&1.0));
        let a = Axis::new((13.0, 300.0), true, None);
        assert_eq!(a.major, vec![20.0, 50.0, 100.0, 200.0]);
        let a = Axis::new((2.5, 8.0), true, None);
        assert_eq!(a.major, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let a = Axis::new((13.0, 300.0), true, Some(&[16.0, 32.0, 64.0, 128.0, 256.0, 512.0]));
        assert_eq!(a.major, vec![16.0, 32.0, 64.0, 128.0, 256.0]);
        let a = Axis::new((-0.1, 1.05), false, None);
        assert_eq!(a.major, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(format_tick(a.major[3]), "0.6");
        assert_eq!(Axis::new((-0.55, 11.55), false, None).major, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(format_p(0.00012), "1.20e-4");
        assert_eq!(format_p(0.0412), "0.041");
    }
}
