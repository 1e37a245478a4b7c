//! `embkit projector`: one self-contained HTML page to explore word
//! vectors offline: a 2-D or 3-D map (PCA or t-SNE), a search box that
//! lists a word's nearest neighbours by cosine similarity, and words on
//! hover.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use embkit::format::write_atomically;
use serde_json::json;

use super::neighbors::{Source, Table};
use super::plot::{
    project, read_metadata, select_rows, source_name, Categories, Coloring, Method, Rows,
};

/// The page; `/*EMBKIT_DATA*/` is replaced by the data as JSON.
const TEMPLATE: &str = include_str!("../projector.html");
const DATA_MARK: &str = "/*EMBKIT_DATA*/";

/// Write an HTML page (one file, no network needed) that shows the
/// vectors on a 2-D or 3-D map, lists the nearest neighbours (cosine) of
/// a word typed in its search box, and shows a point's word on hover.
/// The page holds the full vectors of the `--rows` words; neighbours are
/// computed among them. Open `page.html#search=WORD` to search on load.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub rows: Rows,
    #[command(flatten)]
    pub method: Method,
    /// Dimensions of the map: 2, or 3 (rotated by dragging).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
    #[command(flatten)]
    pub coloring: Coloring,
    /// How many of the most frequent words are labelled on the map.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub top_labels: usize,
    /// The page's title (by default it names the vectors).
    #[arg(long)]
    pub title: Option<String>,
    /// The page to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `embkit projector`.
pub fn run(args: Args) -> Result<()> {
    let ext = args.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("html" | "htm")) {
        bail!("{}: the page's name must end in .html", args.out.display());
    }
    let table = Table::load(&args.source)?;
    let ids = select_rows(&table, args.rows.rows, &[])?;
    let dims = usize::from(args.dims);
    let projected = project(&table, &ids, &args.method, dims)?;
    let words: Vec<&str> = ids.iter().map(|&id| table.word(id)).collect();
    let mut raw = Vec::with_capacity(ids.len() * table.vectors.dim() * 4);
    for &id in &ids {
        raw.extend(table.vectors.row(id).iter().flat_map(|x| x.to_le_bytes()));
    }
    let name = source_name(&args.source);
    let mut data = json!({
        "title": args.title.clone().unwrap_or_else(|| format!("{name}: {} words", ids.len())),
        "subtitle": format!(
            "{} of {} words ({} dimensions) of {name}",
            projected.method,
            ids.len(),
            table.vectors.dim()
        ),
        "words": words,
        "dim": table.vectors.dim(),
        "dims": dims,
        "axes": projected.axes,
        "coords": projected.coords.iter().copied().collect::<Vec<f32>>(),
        "vectors": base64(&raw),
        "labelled": args.top_labels,
    });
    if let (Some(path), Some(column)) = (&args.coloring.metadata, &args.coloring.color_by) {
        let categories = Categories::new(&read_metadata(path, column, &table)?, &ids);
        let index: Vec<i64> =
            categories.of_point.iter().map(|c| c.map_or(-1, |c| c as i64)).collect();
        data["category"] = json!(index);
        data["categories"] = json!(categories.names);
        data["other"] = json!(categories.other);
        data["color_by"] = json!(column);
    }
    // Inside <script>, "</" could end the element early: `<\/` is the
    // same JSON string.
    let data = serde_json::to_string(&data)?.replace("</", "<\\/");
    let page = TEMPLATE.replacen(DATA_MARK, &data, 1);
    write_atomically(&args.out, page.as_bytes())
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} words, {}, {} KiB); open it in a browser",
        args.out.display(),
        ids.len(),
        projected.method,
        page.len() / 1024
    );
    Ok(())
}

/// Standard base64 with padding (RFC 4648), which the page decodes with
/// `atob`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn the_template_has_one_data_mark_and_no_network() {
        assert_eq!(TEMPLATE.matches(DATA_MARK).count(), 1);
        assert!(!TEMPLATE.contains("http://") && !TEMPLATE.contains("https://"));
    }
}
