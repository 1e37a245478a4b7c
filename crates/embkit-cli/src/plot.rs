//! Training curves as PNG files, drawn with plotters and a font built into
//! the binary (no system font libraries needed).

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use embkit::History;
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
    write_png(path, |tmp| draw(history, title, tmp))
}

/// Draws a PNG with `draw` into a temporary file beside `path` (named
/// `*.tmp.png`, since the encoder picks the format from the extension),
/// then renames it into place; a failed drawing leaves no file behind.
fn write_png(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ensure_font();
    let tmp = path.with_extension("tmp.png");
    if let Err(err) = draw(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err.context(format!("drawing {}", path.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

fn draw(history: &History, title: &str, path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = history.epochs.iter().map(|e| (e.epoch as f64, e.loss)).collect();
    let val: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| Some((e.epoch as f64, e.val_loss?))).collect();
    let epochs = history.epochs.len().max(1) as f64;
    let ymax = train.iter().chain(&val).map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;

    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..epochs + 0.5, 0.0f64..ymax)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .x_labels(history.epochs.len().clamp(2, 20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(train.clone(), BLUE.stroke_width(2)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(train.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val.clone(), RED.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("validation loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
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
