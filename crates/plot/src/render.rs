//! How a figure becomes files: the embedded font, text measurement for plotters' layout, the
//! SVG → PNG rasterisation (resvg) and atomic writes.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Context};
use plotters::style::{IntoFont, TextStyle, BLACK};
use plotters_backend::text_anchor::VPos;
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};
use resvg::{tiny_skia, usvg};

/// The embedded font (a subset of DejaVu Sans 2.37; licence in `assets/DejaVuSans-LICENSE.txt`).
pub(crate) static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
/// The embedded font's family name, as resvg's font database knows it.
const FONT_NAME: &str = "DejaVu Sans";
/// What the SVG names: the embedded font first, so viewers that have it draw what the PNG
/// shows; `sans-serif` otherwise.
const FAMILY: &str = "DejaVu Sans, sans-serif";

/// plotters' SVG backend writes `font-size` as the style's size divided by this factor.
const SVG_FONT_SCALE: f64 = 1.24;

/// A black text style whose lines are `height` pixels tall: the font's ascent − descent, as
/// ab_glyph sized text in the figures before (DejaVu Sans: an em of `height / 1.164`).
pub(crate) fn font(height: f64) -> TextStyle<'static> {
    (FAMILY, height / line_height_ems() * SVG_FONT_SCALE).into_font().color(&BLACK)
}

/// The em size in pixels of a plotters text style, as the SVG states it.
fn em_of<S: BackendTextStyle>(style: &S) -> f64 {
    style.size() / SVG_FONT_SCALE
}

/// Ascent − descent of the embedded font in ems (1 if it does not parse: [`ensure_font`]
/// reports that before anything is drawn).
fn line_height_ems() -> f64 {
    metrics().map(|m| m.height).unwrap_or(1.0)
}

/// The embedded font, parsed once, with what measuring text needs.
struct Metrics {
    font: skrifa::FontRef<'static>,
    shaper: harfrust::ShaperData,
    /// Ascent − descent, in ems.
    height: f64,
    /// Ascent and descent (negative), in ems.
    ascent: f64,
    descent: f64,
    units_per_em: f64,
}

fn metrics() -> anyhow::Result<&'static Metrics> {
    static PARSED: OnceLock<Result<Metrics, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            use skrifa::MetadataProvider;
            let font = skrifa::FontRef::new(FONT).map_err(|e| format!("the embedded font does not parse: {e}"))?;
            let m = font.metrics(skrifa::prelude::Size::unscaled(), skrifa::prelude::LocationRef::default());
            let units_per_em = f64::from(m.units_per_em.max(1));
            Ok(Metrics {
                shaper: harfrust::ShaperData::new(&font),
                height: f64::from(m.ascent - m.descent) / units_per_em,
                ascent: f64::from(m.ascent) / units_per_em,
                descent: f64::from(m.descent) / units_per_em,
                units_per_em,
                font,
            })
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Width in pixels of `text` with an em of `em` pixels, shaped as resvg shapes it (harfrust,
/// kerning and mark positioning included).
pub(crate) fn text_width(text: &str, em: f64) -> anyhow::Result<f64> {
    let m = metrics()?;
    let shaper = m.shaper.shaper(&m.font).build();
    let mut buffer = harfrust::UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    let glyphs = shaper.shape(buffer, harfrust::ShapeOptions::new());
    let advance: i64 = glyphs.glyph_positions().iter().map(|p| i64::from(p.x_advance)).sum();
    Ok(advance as f64 * em / m.units_per_em)
}

/// Height in pixels of a line of text with an em of `em` pixels: the font's ascent − descent.
pub(crate) fn text_height(em: f64) -> anyhow::Result<f64> {
    Ok(metrics()?.height * em)
}

/// Width in pixels of `text` drawn with [`font`]`(height)`.
pub(crate) fn styled_width(text: &str, height: f64) -> anyhow::Result<f64> {
    text_width(text, height / line_height_ems())
}

/// A drawing backend that measures text with the embedded font and places it vertically as
/// the figures always have. plotters' own measurement depends on its font features (a crude
/// per-byte estimate without any, an error for an unregistered family with `ab_glyph`);
/// plotters asks the backend when it lays out a chart caption, and this answers with the font
/// resvg will draw. Everything else goes straight to the wrapped backend.
pub(crate) struct Measured<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for Measured<B> {
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
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        (x, y): BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        // plotters' SVG puts the baseline 0.76 em below a top anchor, 0.5 ex (resvg: 0.25 em)
        // below a centre one and 0.5 ex above a bottom one; the figures placed the font's
        // ascent line, the middle of ascent − descent and the descent line there. Moving the
        // anchor (along the text's own vertical) keeps the text where it was.
        let shift = match metrics() {
            Ok(m) => match style.anchor().v_pos {
                VPos::Top => m.ascent - 0.76,
                VPos::Center => (m.ascent + m.descent) / 2.0 - 0.25,
                VPos::Bottom => m.descent + 0.25,
            },
            Err(_) => 0.0,
        };
        let (dx, dy) = style.transform().transform(0, (shift * em_of(style)).round() as i32);
        self.0.draw_text(text, style, (x + dx, y + dy))
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let em = em_of(style);
        let font_error = |e: anyhow::Error| DrawingErrorKind::FontError(e.into());
        let w = text_width(text, em).map_err(font_error)?;
        let h = text_height(em).map_err(font_error)?;
        Ok((w.ceil() as u32, h.ceil() as u32))
    }
}

/// Two touches to plotters' SVG text, before it is written and rasterised:
/// - `font-size` values are rounded to 2 decimals (`12.89`, not `12.886010067114093`);
/// - 1-pixel strokes (axes, grid lines, the legend's border) get
///   `shape-rendering="crispEdges"`: plotters puts them on whole-pixel coordinates, which an
///   anti-aliasing renderer draws as two half-grey pixel rows.
pub(crate) fn tidy_svg(svg: &str) -> String {
    const SIZE: &str = "font-size=\"";
    const THIN: &str = "stroke-width=\"1\"";
    let mut out = String::with_capacity(svg.len() + svg.len() / 8);
    let mut rest = svg;
    loop {
        let next_size = rest.find(SIZE);
        let next_thin = rest.find(THIN);
        match (next_size, next_thin) {
            (Some(i), t) if t.is_none_or(|t| i < t) => {
                let value_start = i + SIZE.len();
                let Some(len) = rest[value_start..].find('"') else { break };
                let value = &rest[value_start..value_start + len];
                out.push_str(&rest[..value_start]);
                match value.parse::<f64>() {
                    Ok(v) if v.is_finite() => out.push_str(&format!("{}", (v * 100.0).round() / 100.0)),
                    _ => out.push_str(value),
                }
                rest = &rest[value_start + len..];
            }
            (_, Some(t)) => {
                let end = t + THIN.len();
                out.push_str(&rest[..end]);
                out.push_str(" shape-rendering=\"crispEdges\"");
                rest = &rest[end..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out
}

/// resvg's font database: the embedded font alone, also standing in for `sans-serif` (no
/// system fonts are loaded).
fn fontdb() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family(FONT_NAME);
        Arc::new(db)
    })
    .clone()
}

/// Checks that the embedded font parses, for both the measurement and resvg.
pub(crate) fn ensure_font() -> anyhow::Result<()> {
    metrics()?;
    let db = fontdb();
    if !db.faces().any(|f| f.families.iter().any(|(name, _)| name == FONT_NAME)) {
        return Err(anyhow!("resvg does not load the embedded font"));
    }
    Ok(())
}

/// Rasterises an SVG document at its own size (1 SVG unit = 1 pixel).
pub(crate) fn rasterise(svg: &str) -> anyhow::Result<tiny_skia::Pixmap> {
    let options = usvg::Options { font_family: FONT_NAME.to_string(), fontdb: fontdb(), ..Default::default() };
    let tree = usvg::Tree::from_str(svg, &options).context("parsing the SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("cannot allocate a {} × {} image", size.width(), size.height()))?;
    resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
    Ok(pixmap)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename (parent
/// directories are created).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Unique among writers: process id, a random number drawn once per process (processes on
    // other hosts sharing the filesystem can have the same id) and a per-process counter.
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static RANDOM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = *RANDOM.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let tmp = dir.join(format!(
        ".{}.{}-{random:016x}-{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("writing {}", path.display()))
    })
}
