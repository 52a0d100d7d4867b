//! A report as data: sections of text, tables and figures, independent of the output format.

use serde::{Deserialize, Serialize};

use crate::plot::Figure;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A figure plus the file stem its SVG/PNG copies get (`accuracy_vs_ratio` → `figures/accuracy_vs_ratio.svg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureItem {
    pub stem: String,
    pub caption: String,
    pub figure: Figure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Block {
    Text(String),
    /// Bulleted list.
    List(Vec<String>),
    Table(Table),
    Figure(FigureItem),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub title: String,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn figures(&self) -> impl Iterator<Item = &FigureItem> {
        self.sections.iter().flat_map(|s| &s.blocks).filter_map(|b| match b {
            Block::Figure(f) => Some(f),
            _ => None,
        })
    }
}

/// Folder (relative to the report) holding figure files.
pub const FIGURE_DIR: &str = "figures";

pub fn svg_path(stem: &str) -> String {
    format!("{FIGURE_DIR}/{stem}.svg")
}

pub fn png_path(stem: &str) -> String {
    format!("{FIGURE_DIR}/{stem}.png")
}
