//! `.npy` / `.npz` tensors (NumPy format 1.0–3.0): f32, u8, i32 and i64 in C order, enough for image sets exported
//! from NumPy or PyTorch. An `.npz` (zip of `.npy`, stored or deflated) or a folder holds an image array named
//! `x`/`images`/`data` and a label array named `y`/`labels`/`targets`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::identity::{sha256_bytes, sha256_files};
use super::{DataError, DataIdentity, Dataset, Image, Pixels, Sample, numbered_classes};

const IMAGE_KEYS: [&str; 3] = ["x", "images", "data"];
const LABEL_KEYS: [&str; 3] = ["y", "labels", "targets"];

#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// Parse one `.npy` buffer. `path` only names the source in errors.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray, DataError> {
    let bad = |r: String| DataError::format(path, format!("not a supported .npy file: {r}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic".into()));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is unknown"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad("header is truncated".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad(format!("no 'descr' in header {header}")))?;
    let descr = quoted(descr).ok_or_else(|| bad(format!("'descr' is not a quoted string in {header}")))?;
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(
            "Fortran order is not supported (save with np.ascontiguousarray)".into()
        ));
    }
    let shape_txt = dict_value(header, "shape").ok_or_else(|| bad(format!("no 'shape' in header {header}")))?;
    let shape: Vec<usize> = shape_txt
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad(format!("shape {shape_txt} is not a tuple of integers")))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + hlen..];
    let need = |size: usize| {
        if body.len() == n * size {
            Ok(())
        } else {
            Err(bad(format!(
                "shape {shape:?} of {descr} needs {} bytes, found {}",
                n * size,
                body.len()
            )))
        }
    };
    let data = match descr {
        "<f4" => {
            need(4)?;
            NpyData::F32(
                body.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
        "|u1" | "<u1" => {
            need(1)?;
            NpyData::U8(body.to_vec())
        }
        "<i4" => {
            need(4)?;
            NpyData::I32(
                body.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
        "<i8" => {
            need(8)?;
            NpyData::I64(
                body.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            )
        }
        other => {
            return Err(bad(format!(
                "dtype '{other}' is not supported (f32 '<f4', u8 '|u1', i32, i64)"
            )));
        }
    };
    Ok(NpyArray { shape, data })
}

/// The text after `'key':` in a header dict, up to the end of the header.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    Some(rest.trim_start().strip_prefix(':')?.trim_start())
}

/// The leading quoted string of `s` (`'<f4', …` → `<f4`).
fn quoted(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &s[1..];
    rest.find(q).map(|end| &rest[..end])
}

/// Encode a C-order `.npy` (version 1.0); used by tests and tools.
pub fn encode_npy(shape: &[usize], data: &NpyData) -> Vec<u8> {
    let (descr, body): (&str, Vec<u8>) = match data {
        NpyData::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        NpyData::U8(v) => ("|u1", v.clone()),
        NpyData::I32(v) => ("<i4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        NpyData::I64(v) => ("<i8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad so the data starts on a 64-byte boundary, newline-terminated, as NumPy does.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Images as HWC plus labels, in memory.
pub struct NpyDataset {
    pixels: Pixels,
    hwc: [usize; 3],
    labels: Vec<i64>,
    classes: Vec<String>,
    identity: DataIdentity,
}

fn find_key<'a>(names: &'a [String], keys: &[&str]) -> Option<&'a String> {
    keys.iter()
        .find_map(|k| names.iter().find(|n| n.trim_end_matches(".npy") == *k))
}

impl NpyDataset {
    /// An `.npz` file.
    pub fn open_npz(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(DataError::io(path))?;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..]))
            .map_err(|e| DataError::format(path, format!("not a readable .npz (zip) archive: {e}")))?;
        let names: Vec<String> = zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .collect();
        let pick = |keys: &[&str]| {
            find_key(&names, keys).cloned().ok_or_else(|| {
                DataError::format(
                    path,
                    format!("no array named {} (archive holds {names:?})", keys.join("/")),
                )
            })
        };
        let (xk, yk) = (pick(&IMAGE_KEYS)?, pick(&LABEL_KEYS)?);
        let mut read = |k: &str| -> Result<NpyArray, DataError> {
            let mut f = zip
                .by_name(k)
                .map_err(|e| DataError::format(path, format!("{k}: {e}")))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| DataError::format(path, format!("{k}: {e}")))?;
            parse_npy(&path.join(k), &buf)
        };
        let (x, y) = (read(&xk)?, read(&yk)?);
        Self::from_arrays(path, x, y, sha256_bytes(&bytes))
    }

    /// A folder holding `x.npy` and `y.npy` (or `images`/`labels`, `data`/`targets`).
    pub fn open_dir(dir: &Path) -> Result<Self, DataError> {
        let names: Vec<String> = std::fs::read_dir(dir)
            .map_err(DataError::io(dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".npy"))
            .collect();
        let pick = |keys: &[&str]| -> Result<PathBuf, DataError> {
            find_key(&names, keys)
                .map(|n| dir.join(n))
                .ok_or_else(|| DataError::format(dir, format!("no {}.npy here (found {names:?})", keys.join(".npy/"))))
        };
        let (xp, yp) = (pick(&IMAGE_KEYS)?, pick(&LABEL_KEYS)?);
        let read = |p: &Path| {
            std::fs::read(p)
                .map_err(DataError::io(p))
                .and_then(|b| parse_npy(p, &b))
        };
        let (x, y) = (read(&xp)?, read(&yp)?);
        let sha = sha256_files(&[&xp, &yp])?;
        Self::from_arrays(dir, x, y, sha)
    }

    fn from_arrays(path: &Path, x: NpyArray, y: NpyArray, sha256: String) -> Result<Self, DataError> {
        let n = x.shape.first().copied().unwrap_or(0);
        let (hwc, chw) = match x.shape[..] {
            [_, h, w] => ([h, w, 1], false),
            [_, c, h, w] if matches!(c, 1 | 3) && !matches!(w, 1 | 3) => ([h, w, c], true),
            [_, h, w, c] => ([h, w, c], false),
            _ => {
                return Err(DataError::format(
                    path,
                    format!("images must be [N,H,W], [N,H,W,C] or [N,C,H,W]; found {:?}", x.shape),
                ));
            }
        };
        let labels: Vec<i64> = match y.data {
            NpyData::I64(v) => v,
            NpyData::I32(v) => v.into_iter().map(i64::from).collect(),
            NpyData::U8(v) => v.into_iter().map(i64::from).collect(),
            NpyData::F32(v) => {
                if v.iter().any(|l| l.fract() != 0.0) {
                    return Err(DataError::format(path, "labels are f32 with fractional values"));
                }
                v.into_iter().map(|l| l as i64).collect()
            }
        };
        if y.shape != [n] {
            return Err(DataError::format(
                path,
                format!("labels must be [{n}] to match the images, found {:?}", y.shape),
            ));
        }
        if let Some(l) = labels.iter().find(|&&l| l < 0) {
            return Err(DataError::format(path, format!("negative label {l}")));
        }
        let pixels = match x.data {
            NpyData::U8(v) => Pixels::U8(if chw { chw_to_hwc(&v, hwc) } else { v }),
            NpyData::F32(v) => Pixels::F32(if chw { chw_to_hwc(&v, hwc) } else { v }),
            _ => return Err(DataError::format(path, "images must be f32 or u8")),
        };
        let max = labels.iter().copied().max().unwrap_or(0) as usize;
        let identity = DataIdentity {
            path: path.display().to_string(),
            format: "npy".into(),
            split: None,
            count: n,
            sha256,
            hashed: "files".into(),
        };
        Ok(NpyDataset {
            pixels,
            hwc,
            labels,
            classes: numbered_classes(max + 1),
            identity,
        })
    }
}

fn chw_to_hwc<T: Copy>(v: &[T], [h, w, c]: [usize; 3]) -> Vec<T> {
    let per = h * w * c;
    let mut out = Vec::with_capacity(v.len());
    for img in v.chunks_exact(per) {
        for p in 0..h * w {
            for ch in 0..c {
                out.push(img[ch * h * w + p]);
            }
        }
    }
    out
}

impl Dataset for NpyDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn class_names(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, i: usize) -> i64 {
        self.labels[i]
    }
    fn sample(&self, i: usize) -> Result<Sample, DataError> {
        let [h, w, c] = self.hwc;
        let per = h * w * c;
        let image = match &self.pixels {
            Pixels::U8(v) => Image::u8(h, w, c, v[i * per..(i + 1) * per].to_vec()),
            Pixels::F32(v) => Image::f32(h, w, c, v[i * per..(i + 1) * per].to_vec()),
        };
        Ok(Sample {
            image,
            label: self.labels[i],
        })
    }
    fn identity(&self) -> &DataIdentity {
        &self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_each_dtype() {
        for data in [
            NpyData::F32(vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.0]),
            NpyData::U8(vec![0, 1, 2, 253, 254, 255]),
            NpyData::I64(vec![-1, 0, 1, i64::MAX, 5, 6]),
        ] {
            let bytes = encode_npy(&[2, 3], &data);
            assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
            let a = parse_npy(Path::new("a.npy"), &bytes).unwrap();
            assert_eq!(a.shape, vec![2, 3]);
            assert_eq!(a.data, data);
        }
    }

    #[test]
    fn npy_parses_numpy_written_header() {
        // Header bytes exactly as `np.save` (NumPy 2.x) writes them for np.arange(3, dtype=np.int64).
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let mut h = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }".to_string();
        while h.len() < 117 {
            h.push(' ');
        }
        h.push('\n');
        bytes.extend_from_slice(h.as_bytes());
        for v in 0i64..3 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(Path::new("a.npy"), &bytes).unwrap();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(a.data, NpyData::I64(vec![0, 1, 2]));
    }

    #[test]
    fn npy_rejects_fortran_and_short_data() {
        let mut b = encode_npy(&[2, 2], &NpyData::U8(vec![1, 2, 3, 4]));
        let e = parse_npy(Path::new("s.npy"), &b[..b.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.npy") && e.contains("needs 4 bytes, found 3"), "{e}");
        let at = b.windows(5).position(|w| w == b"False").unwrap();
        b[at..at + 5].copy_from_slice(b"True ");
        let e = parse_npy(Path::new("f.npy"), &b).unwrap_err().to_string();
        assert!(e.contains("Fortran"), "{e}");
    }

    #[test]
    fn chw_becomes_hwc() {
        // One 2×2 image with channels R=[0..4], G=[10..14], B=[20..24].
        let chw: Vec<u8> = (0..4).chain(10..14).chain(20..24).collect();
        assert_eq!(
            chw_to_hwc(&chw, [2, 2, 3]),
            vec![0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23]
        );
    }
}
