//! Decoded images as the readers hand them out: HWC, u8 or f32.

/// Pixel storage of an HWC image. Readers keep the source's type so preprocessing can match PIL, which works on
/// 8-bit data with fixed-point arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub pixels: Pixels,
}

impl Image {
    pub fn u8(height: usize, width: usize, channels: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), height * width * channels);
        Image {
            height,
            width,
            channels,
            pixels: Pixels::U8(data),
        }
    }

    pub fn f32(height: usize, width: usize, channels: usize, data: Vec<f32>) -> Self {
        debug_assert_eq!(data.len(), height * width * channels);
        Image {
            height,
            width,
            channels,
            pixels: Pixels::F32(data),
        }
    }

    /// Pixel values as f32 (u8 widened), HWC.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.pixels {
            Pixels::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            Pixels::F32(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub image: Image,
    pub label: i64,
}
