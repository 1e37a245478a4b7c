//! Figures as PNG or SVG files (training curves, projections, histograms,
//! bench bars), drawn with plotters and a font built into the binary (no
//! system font libraries needed).

use std::path::Path;
use std::sync::Once;

use anyhow::{bail, Context, Result};
use embkit::History;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Only fails for a font that cannot be parsed, and this one is
        // built in.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws the loss per epoch (and the validation loss, when there is one)
/// into a PNG at `path`, written to a temporary file and renamed.
pub fn loss_curve(history: &History, title: &str, path: &Path) -> Result<()> {
    let mut figure = Curves::from_history(history, title);
    figure.panels.truncate(1);
    save(&figure, path)
}

/// Draws a PNG with `draw` into a temporary file beside `path` (named
/// `*.tmp.png`, since the encoder picks the format from the extension),
/// then renames it into place; a failed drawing leaves no file behind.
fn write_png(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    write_via_temp(path, "png", draw)
}

/// Draws into a temporary file `*.tmp.{ext}` beside `path` with `draw`,
/// then renames it into place; a failed drawing leaves no file behind.
fn write_via_temp(path: &Path, ext: &str, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ensure_font();
    let tmp = path.with_extension(format!("tmp.{ext}"));
    if let Err(err) = draw(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.context(format!("drawing {}", path.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The image types [`save`] writes, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A PNG bitmap (`.png`).
    Png,
    /// An SVG drawing (`.svg`).
    Svg,
}

impl ImageFormat {
    /// The format `path`'s extension names (any case).
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => bail!(
                "{}: the output name must end in .png or .svg (it picks the image type)",
                path.display()
            ),
        }
    }
}

/// Something [`save`] can draw: a size in pixels and a drawing on any
/// plotters backend.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on `root`, which is already white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `figure` into `path`, a PNG or an SVG by the extension, through
/// a temporary file that is renamed into place.
pub fn save(figure: &impl Figure, path: &Path) -> Result<()> {
    let format = ImageFormat::from_path(path)?;
    let size = figure.size();
    match format {
        ImageFormat::Png => write_via_temp(path, "png", |tmp| {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            figure.draw(&root)?;
            root.present().map_err(err)
        }),
        ImageFormat::Svg => write_via_temp(path, "svg", |tmp| {
            let root = SVGBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            figure.draw(&root)?;
            root.present().map_err(err)
        }),
    }
}

/// Colours for categories: Tableau 10, which stays distinguishable for
/// most readers.
pub const CATEGORY_COLORS: [RGBColor; 10] = [
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

/// The grey of points outside the coloured categories.
const OTHER: RGBColor = RGBColor(190, 190, 190);

/// One panel of [`Curves`]: a logged value per epoch, for training and
/// (when there is one) validation.
#[derive(Debug, Clone)]
pub struct CurvePanel {
    /// The value's name (the y-axis).
    pub name: String,
    /// `(epoch, value)` on the training data.
    pub train: Vec<(f64, f64)>,
    /// `(epoch, value)` on the validation data.
    pub val: Vec<(f64, f64)>,
    /// Whether the y axis starts at 0 (losses).
    pub from_zero: bool,
}

/// Training curves: one panel per logged value (loss, then each metric),
/// training against validation by epoch.
#[derive(Debug, Clone)]
pub struct Curves {
    /// The figure's title.
    pub title: String,
    /// One panel per value.
    pub panels: Vec<CurvePanel>,
    /// The epoch whose weights were kept after early stopping, marked on
    /// each panel.
    pub restored_epoch: Option<usize>,
}

impl Curves {
    /// The loss and every metric of `history`.
    pub fn from_history(history: &History, title: &str) -> Self {
        let mut names = vec!["loss".to_string()];
        for e in &history.epochs {
            for name in e.metrics.keys().chain(e.val_metrics.keys()) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        let series = |name: &str| -> Vec<(f64, f64)> {
            history
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, e.value(name)?)))
                .filter(|(_, v)| v.is_finite())
                .collect()
        };
        let panels = names
            .iter()
            .map(|name| CurvePanel {
                name: name.clone(),
                train: series(name),
                val: series(&format!("val_{name}")),
                from_zero: name == "loss",
            })
            .collect();
        Self { title: title.to_string(), panels, restored_epoch: history.restored_epoch }
    }

    fn columns(&self) -> usize {
        if self.panels.len() > 1 {
            2
        } else {
            1
        }
    }
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns()).max(1) as u32;
        if self.panels.len() <= 1 {
            (800, 500)
        } else {
            (1200, 50 + 420 * rows)
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        if self.panels.len() <= 1 {
            let panel = self.panels.first().cloned().unwrap_or(CurvePanel {
                name: "loss".into(),
                train: Vec::new(),
                val: Vec::new(),
                from_zero: true,
            });
            return draw_curve(root, &panel, &self.title, self.restored_epoch);
        }
        let root = root.titled(&self.title, ("sans-serif", 24)).map_err(err)?;
        let cols = self.columns();
        let rows = self.panels.len().div_ceil(cols);
        for (panel, area) in self.panels.iter().zip(root.split_evenly((rows, cols))) {
            let caption = format!("{} per epoch", panel.name);
            draw_curve(&area, panel, &caption, self.restored_epoch)?;
        }
        Ok(())
    }
}

/// One value per epoch: training in blue, validation in red (dashed), the
/// restored epoch as a grey vertical line.
fn draw_curve<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &CurvePanel,
    caption: &str,
    restored: Option<usize>,
) -> Result<()> {
    let train = &panel.train;
    let val = &panel.val;
    let all = || train.iter().chain(val).map(|p| p.1);
    let epochs = train.iter().chain(val).map(|p| p.0).fold(1.0f64, f64::max);
    let (lo, hi) = if panel.from_zero {
        (0.0, all().fold(0.0f64, f64::max).max(1e-3) * 1.1)
    } else {
        let lo = all().fold(f64::INFINITY, f64::min);
        let hi = all().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            let pad = ((hi - lo) * 0.1).max(1e-3);
            (lo - pad, hi + pad)
        } else {
            (0.0, 1.0)
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.5f64..epochs + 0.5, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.name.as_str())
        .x_labels((epochs as usize).clamp(2, 20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let blue = BLUE.stroke_width(2);
    chart
        .draw_series(LineSeries::new(train.clone(), blue))
        .map_err(err)?
        .label(format!("training {}", panel.name))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue));
    chart.draw_series(train.iter().map(|&p| Circle::new(p, 3, BLUE.filled()))).map_err(err)?;
    if !val.is_empty() {
        let red = RED.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(val.clone(), 8, 4, red))
            .map_err(err)?
            .label(format!("validation {}", panel.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red));
        chart.draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled()))).map_err(err)?;
    }
    if let Some(epoch) = restored {
        let e = epoch as f64;
        let grey = RGBColor(120, 120, 120).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(vec![(e, lo), (e, hi)], 4, 4, grey))
            .map_err(err)?
            .label(format!("weights kept (epoch {epoch})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    // The legend goes in the corner the curves leave free: the upper
    // right when they end low (losses), the lower right when they end high
    // (accuracies).
    let last = train.last().or(val.last()).map_or(lo, |p| p.1);
    let position = if last > (lo + hi) / 2.0 {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    };
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 14))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A 2-D scatter of points, coloured by category, some with a label.
#[derive(Debug, Clone)]
pub struct Scatter {
    /// The figure's title.
    pub title: String,
    /// The x axis's name.
    pub x_desc: String,
    /// The y axis's name.
    pub y_desc: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Each point's category: an index into `categories`, or `None` for
    /// the grey of the rest.
    pub category: Vec<Option<usize>>,
    /// The legend's names of the categories (at most
    /// [`CATEGORY_COLORS`]`.len()`), and the legend name of the rest.
    pub categories: Vec<String>,
    /// The legend's name of the points without a category, if any.
    pub other: Option<String>,
    /// Labelled points: index into `points`, text.
    pub labels: Vec<(usize, String)>,
}

impl Figure for Scatter {
    fn size(&self) -> (u32, u32) {
        (1000, 850)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let range = |f: fn(&(f64, f64)) -> f64| {
            let lo = self.points.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = self.points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() {
                return -1.0..1.0;
            }
            let pad = ((hi - lo) * 0.06).max(1e-6);
            lo - pad..hi + pad
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(range(|p| p.0), range(|p| p.1))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        // Without categories every point is blue; with them, the points
        // outside them are grey.
        let rest = if self.categories.is_empty() { CATEGORY_COLORS[0] } else { OTHER };
        // The rest first, so coloured points are drawn over grey ones.
        let uncategorised = self
            .points
            .iter()
            .zip(&self.category)
            .filter(|(_, c)| c.is_none())
            .map(|(&p, _)| Circle::new(p, 3, rest.mix(0.7).filled()));
        let series = chart.draw_series(uncategorised).map_err(err)?;
        if let Some(other) = &self.other {
            series
                .label(other.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, rest.filled()));
        }
        for (i, name) in self.categories.iter().enumerate() {
            let c = CATEGORY_COLORS[i % CATEGORY_COLORS.len()];
            let points = self
                .points
                .iter()
                .zip(&self.category)
                .filter(|(_, k)| **k == Some(i))
                .map(|(&p, _)| Circle::new(p, 3, c.mix(0.8).filled()));
            chart
                .draw_series(points)
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        }
        let labels = self.labels.iter().filter_map(|(i, text)| {
            let p = *self.points.get(*i)?;
            Some(
                EmptyElement::at(p)
                    + Circle::new((0, 0), 4, BLACK.filled())
                    + Text::new(text.clone(), (6, -16), ("sans-serif", 14).into_font()),
            )
        });
        chart.draw_series(labels).map_err(err)?;
        if !self.categories.is_empty() || self.other.is_some() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(("sans-serif", 14))
                .border_style(BLACK)
                .background_style(WHITE.mix(0.85))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A histogram of values, with their mean marked.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// The figure's title.
    pub title: String,
    /// What the values are (the x axis).
    pub x_desc: String,
    /// What is counted (the y axis).
    pub y_desc: String,
    /// The values (NaN and infinite values are left out).
    pub values: Vec<f64>,
    /// The number of bins.
    pub bins: usize,
}

impl Figure for Histogram {
    fn size(&self) -> (u32, u32) {
        (900, 550)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let values: Vec<f64> = self.values.iter().copied().filter(|v| v.is_finite()).collect();
        let bins = self.bins.max(1);
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        };
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0usize; bins];
        for v in &values {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
        let pad = width;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(lo - pad..hi + pad, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 14))
            .disable_x_mesh()
            .draw()
            .map_err(err)?;
        let fill = CATEGORY_COLORS[0].filled();
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &n)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, n as f64)], fill)
            }))
            .map_err(err)?
            .label(format!("{} values in {bins} bins", values.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], fill));
        chart
            .draw_series(counts.iter().enumerate().map(|(b, _)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, counts[b] as f64)], WHITE.stroke_width(1))
            }))
            .map_err(err)?;
        if !values.is_empty() {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let red = RED.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(vec![(mean, 0.0), (mean, top)], 6, 4, red))
                .map_err(err)?
                .label(format!("mean {mean:.4}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// One panel of [`grouped_bars`]: `values[series][group]`, `None` for a
/// missing bar.
pub struct BarPanel {
    /// The panel's caption.
    pub title: String,
    /// One vector per series, one value per group.
    pub values: Vec<Vec<Option<f64>>>,
}

/// Draws grouped bars on a log scale into a PNG at `path`, one panel per
/// entry of `panels` stacked vertically, with one colour per series and a
/// legend (used by `embkit bench --plot`).
pub fn grouped_bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[String],
    panels: &[BarPanel],
) -> Result<()> {
    write_png(path, |tmp| draw_bars(tmp, title, y_desc, groups, series, panels))
}

fn draw_bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[String],
    panels: &[BarPanel],
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let all = || panels.iter().flat_map(|p| p.values.iter().flatten().flatten().copied());
    let positive: Vec<f64> = all().filter(|v| *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if positive.is_empty() {
        (1.0, 10.0)
    } else {
        (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()))
    };
    let height = 60 + 420 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| err(&e))?;
    let (plots, legend) = root.split_horizontally(960);
    let color = |s: usize| Palette99::pick(s).to_rgba();
    for (s, name) in series.iter().enumerate() {
        let y = 60 + 24 * s as i32;
        legend
            .draw(&Rectangle::new([(10, y), (26, y + 14)], color(s).filled()))
            .map_err(|e| err(&e))?;
        let text = Text::new(name.as_str(), (34, y), ("sans-serif", 15));
        legend.draw(&text).map_err(|e| err(&e))?;
    }
    let n_groups = groups.len().max(1) as f64;
    let n_series = series.len().max(1) as f64;
    let width = 0.8 / n_series;
    for (panel, area) in panels.iter().zip(plots.split_evenly((panels.len().max(1), 1))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..n_groups - 0.5, (lo..hi).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    groups.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(&e))?;
        for (s, values) in panel.values.iter().enumerate() {
            let bars = values.iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let x0 = g as f64 - 0.4 + s as f64 * width;
                Some(Rectangle::new([(x0, lo), (x0 + width * 0.9, v.max(lo))], color(s).filled()))
            });
            chart.draw_series(bars).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
