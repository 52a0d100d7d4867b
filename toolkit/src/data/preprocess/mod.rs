//! Declarative preprocessing: resize → centre crop → scale → per-channel mean/std → channel order → layout →
//! dtype. A [`Preset`] is plain data (JSON), and its [`Preset::fingerprint`] is recorded with every result.

pub mod presets;
pub mod resize;

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Image, Pixels};
pub use resize::Filter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeTo {
    /// Shorter side to this length, aspect kept (torchvision `Resize(int)`).
    Shorter(usize),
    /// Exactly `[height, width]`.
    Exact([usize; 2]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resize {
    pub to: ResizeTo,
    pub filter: Filter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    #[default]
    F32,
    F16,
}

/// The operations, without a name: two presets with equal pipelines have equal fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Convert RGB to one luminance channel first (Pillow's `convert("L")`), for grayscale models fed from
    /// image folders, which decode to RGB.
    #[serde(default)]
    pub grayscale: bool,
    #[serde(default)]
    pub resize: Option<Resize>,
    /// Centre crop `[height, width]`.
    #[serde(default)]
    pub crop: Option<[usize; 2]>,
    /// Multiplies raw pixel values first (1/255 for [0, 1] inputs).
    pub scale: f32,
    /// One value for all channels or one per channel (after `scale`).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    #[serde(default)]
    pub channel_order: ChannelOrder,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub dtype: DType,
}

const PRESET_KEYS: [&str; 10] = [
    "name",
    "grayscale",
    "resize",
    "crop",
    "scale",
    "mean",
    "std",
    "channel_order",
    "layout",
    "dtype",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    #[serde(flatten)]
    pub pipeline: Pipeline,
}

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("unknown preset '{name}' (known: {known}; or pass a .json file)")]
    UnknownPreset { name: String, known: String },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("preset '{preset}': {reason}")]
    Invalid { preset: String, reason: String },
    #[error("preset '{preset}' does not fit the model input '{input}' {model_shape:?} ({layout:?}): {reason}")]
    Mismatch {
        preset: String,
        input: String,
        model_shape: Vec<i64>,
        layout: Layout,
        reason: String,
    },
    #[error(
        "image {index} is {got:?} (H, W, C) after preprocessing, the batch needs {want:?}; add a resize/crop to the preset"
    )]
    Ragged {
        index: usize,
        got: [usize; 3],
        want: [usize; 3],
    },
}

impl Preset {
    /// A built-in name or a JSON file.
    pub fn load(spec: &str) -> Result<Preset, PreprocessError> {
        if let Some(p) = presets::builtin(spec) {
            return Ok(p);
        }
        let path = Path::new(spec);
        if spec.ends_with(".json") || path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| PreprocessError::File {
                path: spec.into(),
                reason: e.to_string(),
            })?;
            let file_err = |reason: String| PreprocessError::File {
                path: spec.into(),
                reason,
            };
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| file_err(format!("not JSON: {e}")))?;
            // serde cannot deny unknown fields through `flatten`, and a misspelt key must not be ignored.
            if let Some(k) = v
                .as_object()
                .and_then(|obj| obj.keys().find(|k| !PRESET_KEYS.contains(&k.as_str())))
            {
                return Err(file_err(format!(
                    "unknown key '{k}' (known: {})",
                    PRESET_KEYS.join(", ")
                )));
            }
            let p: Preset = serde_json::from_value(v).map_err(|e| file_err(format!("not a preset: {e}")))?;
            p.validate()?;
            return Ok(p);
        }
        Err(PreprocessError::UnknownPreset {
            name: spec.into(),
            known: presets::NAMES.join(", "),
        })
    }

    pub fn validate(&self) -> Result<(), PreprocessError> {
        let bad = |r: &str| {
            Err(PreprocessError::Invalid {
                preset: self.name.clone(),
                reason: r.into(),
            })
        };
        let p = &self.pipeline;
        if p.mean.is_empty() || p.std.is_empty() {
            return bad("mean and std need at least one value");
        }
        if p.std.iter().any(|&s| s == 0.0 || !s.is_finite()) || !p.scale.is_finite() {
            return bad("std must be finite and non-zero, scale finite");
        }
        if p.crop.is_some_and(|[h, w]| h == 0 || w == 0)
            || p.resize
                .is_some_and(|r| matches!(r.to, ResizeTo::Shorter(0) | ResizeTo::Exact([0, _] | [_, 0])))
        {
            return bad("resize and crop sizes must be positive");
        }
        Ok(())
    }

    /// sha256 of the canonical JSON of the pipeline (field order fixed by the struct, shortest float form).
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(&self.pipeline).unwrap_or_default();
        converters::ir::model::sha256_hex(&json)
    }

    /// `(H, W, C)` of the output for an input of `(h, w, c)`, or why it cannot be produced.
    pub fn output_hwc(&self, [h, w, c]: [usize; 3]) -> Result<[usize; 3], PreprocessError> {
        let p = &self.pipeline;
        let c = if p.grayscale { 1 } else { c };
        let (mut h, mut w) = (h, w);
        if let Some(r) = p.resize {
            (h, w) = resized_size(h, w, r.to);
        }
        if let Some([ch, cw]) = p.crop {
            if ch > h || cw > w {
                return Err(PreprocessError::Invalid {
                    preset: self.name.clone(),
                    reason: format!("crop {ch}×{cw} is larger than the {h}×{w} image"),
                });
            }
            (h, w) = (ch, cw);
        }
        for (what, v) in [("mean", &p.mean), ("std", &p.std)] {
            if v.len() != 1 && v.len() != c {
                return Err(PreprocessError::Invalid {
                    preset: self.name.clone(),
                    reason: format!("{what} has {} values for a {c}-channel image", v.len()),
                });
            }
        }
        Ok([h, w, c])
    }

    /// Check the output for an `(h, w, c)` image against a model input shape (`≤ 0` = dynamic).
    pub fn check_fits(&self, input: &str, model_shape: &[i64], hwc: [usize; 3]) -> Result<(), PreprocessError> {
        let layout = self.pipeline.layout;
        let mismatch = |reason: String| PreprocessError::Mismatch {
            preset: self.name.clone(),
            input: input.into(),
            model_shape: model_shape.to_vec(),
            layout,
            reason,
        };
        let [h, w, c] = self.output_hwc(hwc)?;
        if model_shape.len() != 4 {
            return Err(mismatch(format!(
                "the model input has rank {}, presets produce rank-4 images",
                model_shape.len()
            )));
        }
        let (mc, mh, mw) = match layout {
            Layout::Nchw => (model_shape[1], model_shape[2], model_shape[3]),
            Layout::Nhwc => (model_shape[3], model_shape[1], model_shape[2]),
        };
        for (what, m, got) in [("channels", mc, c), ("height", mh, h), ("width", mw, w)] {
            if m > 0 && m as usize != got {
                return Err(mismatch(format!("the model wants {what} {m}, the preset gives {got}")));
            }
        }
        Ok(())
    }

    /// Preprocess one image into `out` (length `H·W·C` of the output, in the preset's layout and channel order).
    pub fn apply_into(&self, img: &Image, out: &mut [f32]) -> Result<[usize; 3], PreprocessError> {
        let (pixels, dims) = self.pixels(img)?;
        self.normalize_into(&pixels, dims, out);
        Ok(dims)
    }

    /// The image converted to the preset's colour model (luminance when `grayscale`), borrowed when unchanged.
    pub fn color_converted<'a>(&self, img: &'a Image) -> std::borrow::Cow<'a, Image> {
        if self.pipeline.grayscale && img.channels != 1 {
            std::borrow::Cow::Owned(to_luminance(img))
        } else {
            std::borrow::Cow::Borrowed(img)
        }
    }

    /// The geometric part of the pipeline: colour conversion, resize and centre crop, as raw HWC pixel values
    /// (before `scale`, mean and std), with their `(H, W, C)`.
    pub fn pixels(&self, img: &Image) -> Result<(Vec<f32>, [usize; 3]), PreprocessError> {
        let p = &self.pipeline;
        let [oh, ow, c] = self.output_hwc([img.height, img.width, img.channels])?;
        let img = self.color_converted(img);
        let dims = [img.height, img.width, c];
        // Resize on the source type so u8 images follow Pillow's 8-bit rounding.
        let (rh, rw) = p
            .resize
            .map_or((img.height, img.width), |r| resized_size(img.height, img.width, r.to));
        let pixels: Vec<f32> = match (&img.pixels, p.resize) {
            (Pixels::U8(v), Some(r)) => resize::resize_u8(v, dims, rh, rw, r.filter)
                .into_iter()
                .map(f32::from)
                .collect(),
            (Pixels::F32(v), Some(r)) => resize::resize_f32(v, dims, rh, rw, r.filter),
            (_, None) => img.to_f32(),
        };
        let Some([ch, cw]) = p.crop else {
            return Ok((pixels, [oh, ow, c]));
        };
        // torchvision's center_crop: int(round((h - th) / 2)) with Python's round-half-to-even.
        let (top, left) = (
            round_half_even((rh - ch) as f64 / 2.0),
            round_half_even((rw - cw) as f64 / 2.0),
        );
        let mut out = Vec::with_capacity(oh * ow * c);
        for y in 0..oh {
            let row = ((y + top) * rw + left) * c;
            out.extend_from_slice(&pixels[row..row + ow * c]);
        }
        Ok((out, [oh, ow, c]))
    }

    /// The value part of the pipeline: `(v·scale − mean) / std` per channel, channel order and layout, from HWC
    /// `pixels` of `(h, w, c)` into `out` (length `h·w·c`).
    pub fn normalize_into(&self, pixels: &[f32], [oh, ow, c]: [usize; 3], out: &mut [f32]) {
        let p = &self.pipeline;
        let pick = |v: &[f32], ch: usize| if v.len() == 1 { v[0] } else { v[ch] };
        let plane = oh * ow;
        debug_assert_eq!(out.len(), plane * c);
        for y in 0..oh {
            for x in 0..ow {
                let src = (y * ow + x) * c;
                for ch in 0..c {
                    let v = (pixels[src + ch] * p.scale - pick(&p.mean, ch)) / pick(&p.std, ch);
                    let oc = match p.channel_order {
                        ChannelOrder::Rgb => ch,
                        ChannelOrder::Bgr => c - 1 - ch,
                    };
                    let o = match p.layout {
                        Layout::Nchw => oc * plane + y * ow + x,
                        Layout::Nhwc => (y * ow + x) * c + oc,
                    };
                    out[o] = v;
                }
            }
        }
    }

    pub fn apply(&self, img: &Image) -> Result<(Vec<f32>, [usize; 3]), PreprocessError> {
        let [h, w, c] = self.output_hwc([img.height, img.width, img.channels])?;
        let mut out = vec![0f32; h * w * c];
        self.apply_into(img, &mut out)?;
        Ok((out, [h, w, c]))
    }
}

/// Pillow's RGB → L: `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16` on 8-bit data (ITU-R 601-2 luma); the same
/// weights in floating point for f32 images. Channels past the third (alpha) are ignored.
fn to_luminance(img: &Image) -> Image {
    let c = img.channels;
    match &img.pixels {
        Pixels::U8(v) => Image::u8(
            img.height,
            img.width,
            1,
            v.chunks_exact(c)
                .map(|p| {
                    let (r, g, b) = (u32::from(p[0]), u32::from(p[1 % c]), u32::from(p[2 % c]));
                    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
                })
                .collect(),
        ),
        Pixels::F32(v) => Image::f32(
            img.height,
            img.width,
            1,
            v.chunks_exact(c)
                .map(|p| p[0] * 0.299 + p[1 % c] * 0.587 + p[2 % c] * 0.114)
                .collect(),
        ),
    }
}

/// torchvision's `_compute_resized_output_size` for an int size: the long side is `int(size * long / short)`.
pub fn resized_size(h: usize, w: usize, to: ResizeTo) -> (usize, usize) {
    match to {
        ResizeTo::Exact([eh, ew]) => (eh, ew),
        ResizeTo::Shorter(s) => {
            let (short, long) = if w <= h { (w, h) } else { (h, w) };
            let new_long = (s as f64 * long as f64 / short as f64) as usize;
            if w <= h { (new_long, s) } else { (s, new_long) }
        }
    }
}

fn round_half_even(x: f64) -> usize {
    let r = x.round();
    let r = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    };
    r.max(0.0) as usize
}

#[cfg(test)]
mod tests;
