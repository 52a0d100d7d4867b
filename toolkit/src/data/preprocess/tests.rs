//! Resampling is checked against Pillow 13.0.0 (`pip install pillow numpy` in a scratch venv outside the repo).
//! The expected numbers were printed by this script and pasted here:
//!
//! ```python
//! h, w = 5, 7
//! arr = np.array([[[(x*37 + y*71 + c*113) % 256 for c in range(3)] for x in range(w)] for y in range(h)], np.uint8)
//! im = Image.fromarray(arr, "RGB")
//! for f in (Image.BILINEAR, Image.BICUBIC, Image.NEAREST):
//!     for oh, ow in [(3, 4), (11, 9), (2, 3)]:
//!         print(np.asarray(im.resize((ow, oh), f)).flatten().tolist())
//! g = np.array([[x*0.37 - y*1.1 + (x*y) % 3 for x in range(w)] for y in range(h)], np.float32)
//! for f in (Image.BILINEAR, Image.BICUBIC):
//!     print(np.asarray(Image.fromarray(g, "F").resize((3, 2), f)).flatten().tolist())
//! ```

use super::resize::{resize_f32, resize_u8};
use super::*;
use crate::data::Image;

fn test_rgb() -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..5usize {
        for x in 0..7usize {
            for c in 0..3usize {
                v.push(((x * 37 + y * 71 + c * 113) % 256) as u8);
            }
        }
    }
    v
}

#[rustfmt::skip]
const PIL_U8: [(Filter, usize, usize, &[u8]); 9] = [
        (Filter::Bilinear, 3, 4, &[49, 157, 96, 107, 133, 77, 154, 74, 145, 129, 90, 146, 158, 147, 128, 173, 87, 143, 117, 144, 98, 92, 172, 86, 121, 130, 168, 96, 188, 66, 143, 150, 113, 201, 110, 171]),
        (Filter::Bilinear, 11, 9, &[0, 113, 226, 25, 138, 80, 53, 166, 23, 82, 195, 52, 111, 224, 81, 140, 54, 110, 169, 26, 139, 197, 54, 167, 222, 79, 192, 13, 126, 192, 38, 151, 77, 66, 158, 36, 95, 161, 65, 124, 190, 94, 153, 57, 123, 156, 39, 152, 163, 67, 164, 188, 92, 158, 45, 158, 108, 70, 183, 71, 98, 139, 68, 127, 77, 97, 156, 106, 126, 185, 63, 155, 123, 71, 184, 79, 99, 158, 104, 124, 74, 77, 190, 47, 102, 200, 72, 130, 117, 100, 159, 16, 129, 188, 45, 158, 199, 74, 169, 93, 103, 193, 18, 131, 144, 43, 156, 13, 110, 223, 80, 135, 154, 105, 163, 85, 133, 192, 49, 162, 221, 78, 191, 141, 107, 111, 74, 136, 109, 51, 164, 98, 76, 189, 46, 142, 255, 112, 167, 109, 137, 195, 52, 165, 224, 81, 194, 253, 110, 223, 83, 139, 53, 55, 168, 25, 83, 196, 53, 108, 221, 78, 174, 171, 144, 199, 103, 169, 176, 84, 146, 140, 113, 110, 169, 142, 139, 89, 171, 59, 87, 200, 57, 115, 190, 85, 140, 137, 110, 207, 87, 177, 232, 96, 202, 157, 117, 127, 56, 146, 26, 85, 175, 55, 96, 204, 66, 120, 233, 90, 148, 183, 118, 173, 53, 143, 146, 96, 209, 171, 121, 172, 127, 149, 97, 65, 178, 35, 94, 207, 64, 123, 163, 93, 152, 172, 122, 180, 146, 150, 205, 62, 175, 62, 128, 241, 87, 153, 126, 94, 181, 64, 97, 210, 67, 126, 239, 96, 155, 105, 125, 184, 88, 154, 212, 100, 182, 237, 94, 207, 28, 141, 254, 53, 166, 108, 81, 194, 51, 110, 223, 80, 139, 252, 109, 168, 82, 138, 197, 54, 167, 225, 82, 195, 250, 107, 220]),
        (Filter::Bilinear, 2, 3, &[101, 144, 99, 148, 103, 124, 109, 114, 124, 141, 132, 140, 126, 158, 97, 149, 141, 124]),
        (Filter::Bicubic, 3, 4, &[40, 162, 92, 111, 134, 73, 159, 66, 153, 125, 88, 147, 167, 150, 127, 183, 71, 153, 114, 149, 97, 77, 182, 76, 125, 123, 178, 91, 197, 55, 139, 157, 107, 210, 104, 176]),
        (Filter::Bicubic, 11, 9, &[0, 104, 254, 15, 127, 76, 46, 170, 0, 75, 219, 45, 104, 241, 74, 132, 38, 103, 176, 4, 131, 219, 50, 171, 241, 74, 212, 8, 119, 210, 30, 148, 73, 61, 162, 16, 90, 174, 60, 119, 200, 89, 153, 44, 121, 160, 22, 153, 174, 65, 170, 200, 89, 168, 39, 151, 105, 62, 201, 62, 93, 148, 57, 122, 66, 92, 151, 100, 121, 208, 53, 165, 125, 61, 211, 66, 97, 170, 100, 121, 64, 75, 190, 35, 99, 222, 66, 131, 120, 102, 161, 0, 131, 189, 36, 159, 222, 73, 176, 88, 104, 218, 0, 135, 151, 36, 159, 0, 108, 239, 63, 130, 164, 96, 170, 68, 141, 213, 29, 183, 238, 63, 208, 143, 104, 105, 55, 135, 106, 32, 172, 96, 63, 209, 29, 140, 255, 110, 164, 104, 134, 195, 35, 165, 229, 81, 199, 253, 110, 223, 70, 139, 40, 41, 168, 11, 86, 199, 56, 110, 223, 80, 187, 173, 142, 220, 86, 186, 187, 64, 158, 137, 114, 111, 172, 142, 142, 67, 183, 38, 71, 223, 30, 119, 204, 77, 142, 136, 113, 214, 76, 174, 255, 90, 224, 161, 115, 132, 31, 145, 9, 76, 175, 46, 92, 212, 62, 118, 255, 88, 151, 192, 120, 175, 34, 145, 150, 80, 213, 187, 117, 187, 126, 155, 90, 39, 184, 15, 80, 212, 50, 124, 164, 94, 157, 184, 127, 188, 150, 158, 212, 42, 182, 50, 128, 247, 77, 154, 119, 90, 186, 45, 96, 219, 67, 128, 244, 98, 159, 88, 129, 189, 68, 159, 220, 98, 190, 244, 96, 214, 9, 146, 255, 31, 170, 92, 74, 201, 25, 118, 235, 87, 146, 255, 116, 175, 56, 145, 204, 20, 174, 235, 75, 205, 255, 117, 229]),
        (Filter::Bicubic, 2, 3, &[97, 147, 98, 153, 94, 126, 106, 115, 122, 144, 132, 145, 123, 161, 91, 153, 143, 126]),
        (Filter::Nearest, 3, 4, &[0, 113, 226, 74, 187, 44, 148, 5, 118, 222, 79, 192, 142, 255, 112, 216, 73, 186, 34, 147, 4, 108, 221, 78, 28, 141, 254, 102, 215, 72, 176, 33, 146, 250, 107, 220]),
        (Filter::Nearest, 11, 9, &[0, 113, 226, 37, 150, 7, 37, 150, 7, 74, 187, 44, 111, 224, 81, 148, 5, 118, 185, 42, 155, 185, 42, 155, 222, 79, 192, 0, 113, 226, 37, 150, 7, 37, 150, 7, 74, 187, 44, 111, 224, 81, 148, 5, 118, 185, 42, 155, 185, 42, 155, 222, 79, 192, 71, 184, 41, 108, 221, 78, 108, 221, 78, 145, 2, 115, 182, 39, 152, 219, 76, 189, 0, 113, 226, 0, 113, 226, 37, 150, 7, 71, 184, 41, 108, 221, 78, 108, 221, 78, 145, 2, 115, 182, 39, 152, 219, 76, 189, 0, 113, 226, 0, 113, 226, 37, 150, 7, 142, 255, 112, 179, 36, 149, 179, 36, 149, 216, 73, 186, 253, 110, 223, 34, 147, 4, 71, 184, 41, 71, 184, 41, 108, 221, 78, 142, 255, 112, 179, 36, 149, 179, 36, 149, 216, 73, 186, 253, 110, 223, 34, 147, 4, 71, 184, 41, 71, 184, 41, 108, 221, 78, 142, 255, 112, 179, 36, 149, 179, 36, 149, 216, 73, 186, 253, 110, 223, 34, 147, 4, 71, 184, 41, 71, 184, 41, 108, 221, 78, 213, 70, 183, 250, 107, 220, 250, 107, 220, 31, 144, 1, 68, 181, 38, 105, 218, 75, 142, 255, 112, 142, 255, 112, 179, 36, 149, 213, 70, 183, 250, 107, 220, 250, 107, 220, 31, 144, 1, 68, 181, 38, 105, 218, 75, 142, 255, 112, 142, 255, 112, 179, 36, 149, 28, 141, 254, 65, 178, 35, 65, 178, 35, 102, 215, 72, 139, 252, 109, 176, 33, 146, 213, 70, 183, 213, 70, 183, 250, 107, 220, 28, 141, 254, 65, 178, 35, 65, 178, 35, 102, 215, 72, 139, 252, 109, 176, 33, 146, 213, 70, 183, 213, 70, 183, 250, 107, 220]),
        (Filter::Nearest, 2, 3, &[108, 221, 78, 182, 39, 152, 0, 113, 226, 250, 107, 220, 68, 181, 38, 142, 255, 112]),
];

#[test]
fn resize_u8_matches_pillow_bit_exact() {
    let src = test_rgb();
    for (filter, oh, ow, want) in PIL_U8 {
        let got = resize_u8(&src, [5, 7, 3], oh, ow, filter);
        assert_eq!(got, want, "{filter:?} to {oh}x{ow}");
    }
}

#[test]
fn resize_f32_matches_pillow_mode_f() {
    let mut g = Vec::new();
    for y in 0..5usize {
        for x in 0..7usize {
            g.push(x as f32 * 0.37 - y as f32 * 1.1 + ((x * y) % 3) as f32);
        }
    }
    #[rustfmt::skip]
    let cases: [(Filter, [f64; 6]); 2] = [
        (Filter::Bilinear, [-0.1887013018131256, 0.5714973211288452, 1.4359740018844604, -2.4276623725891113, -1.668609619140625, -0.8127272725105286]),
        (Filter::Bicubic, [-0.11398844420909882, 0.7684459090232849, 1.6035168170928955, -2.6357614994049072, -1.754433035850525, -0.9198540449142456]),
    ];
    for (filter, want) in cases {
        let got = resize_f32(&g, [5, 7, 1], 2, 3, filter);
        for (a, b) in got.iter().zip(want) {
            // Pillow accumulates in double and stores f32, as we do; allow one f32 ulp-scale difference.
            assert!((f64::from(*a) - b).abs() < 1e-6, "{filter:?}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn shorter_side_and_crop_follow_torchvision() {
    // torchvision: long side = int(256 * long / short); 480x640 → 256x341, 500x375 → 341x256.
    assert_eq!(resized_size(480, 640, ResizeTo::Shorter(256)), (256, 341));
    assert_eq!(resized_size(500, 375, ResizeTo::Shorter(256)), (341, 256));
    assert_eq!(resized_size(7, 5, ResizeTo::Exact([3, 2])), (3, 2));
    // int(round(x / 2)) with half-to-even: (341 - 224) / 2 = 58.5 → 58; (5 - 2) / 2 = 1.5 → 2.
    assert_eq!(round_half_even(58.5), 58);
    assert_eq!(round_half_even(1.5), 2);
    assert_eq!(round_half_even(2.0), 2);
}

#[test]
fn mnist_preset_normalises_and_lays_out_nchw() {
    let p = Preset::load("mnist").unwrap();
    let img = Image::u8(1, 2, 1, vec![0, 255]);
    let (v, dims) = p.apply(&img).unwrap();
    assert_eq!(dims, [1, 2, 1]);
    // (0/255 − 0.1307)/0.3081 and (1 − 0.1307)/0.3081.
    assert!((v[0] - (-0.424_213)).abs() < 1e-5, "{v:?}");
    assert!((v[1] - 2.821_487).abs() < 1e-5, "{v:?}");
}

#[test]
fn crop_bgr_nhwc_and_per_channel_mean() {
    let mut p = Preset::load("imagenet-tf").unwrap();
    p.pipeline.resize = None;
    p.pipeline.crop = Some([1, 1]);
    p.pipeline.mean = vec![1.0, 2.0, 3.0];
    p.pipeline.std = vec![1.0];
    p.pipeline.channel_order = ChannelOrder::Bgr;
    p.pipeline.layout = Layout::Nhwc;
    // 3×3 RGB, centre pixel (1,1) = [40, 50, 60].
    let mut px = vec![0u8; 27];
    px[12..15].copy_from_slice(&[40, 50, 60]);
    let (v, dims) = p.apply(&Image::u8(3, 3, 3, px)).unwrap();
    assert_eq!(dims, [1, 1, 3]);
    assert_eq!(v, vec![57.0, 48.0, 39.0]);
}

#[test]
fn nchw_planes_are_channel_major() {
    let mut p = Preset::load("cifar10").unwrap();
    p.pipeline.scale = 1.0;
    p.pipeline.mean = vec![0.0];
    p.pipeline.std = vec![1.0];
    let img = Image::u8(1, 2, 3, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(p.apply(&img).unwrap().0, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn fingerprint_ignores_name_but_not_numbers() {
    let a = Preset::load("mnist").unwrap();
    let mut b = a.clone();
    b.name = "renamed".into();
    assert_eq!(a.fingerprint(), b.fingerprint());
    b.pipeline.std = vec![0.3082];
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_ne!(
        Preset::load("mnist").unwrap().fingerprint(),
        Preset::load("fashion-mnist").unwrap().fingerprint()
    );
    assert_eq!(a.fingerprint().len(), 64);
}

#[test]
fn preset_json_round_trip_and_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = Preset::load("imagenet-torchvision").unwrap();
    let f = dir.path().join("p.json");
    std::fs::write(&f, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    let q = Preset::load(f.to_str().unwrap()).unwrap();
    assert_eq!(p, q);
    std::fs::write(&f, r#"{"name":"x","scale":1,"mean":[0],"std":[0]}"#).unwrap();
    let e = Preset::load(f.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("std must be finite and non-zero"), "{e}");
    std::fs::write(&f, r#"{"name":"x","scale":1,"mean":[0],"std":[1],"blur":3}"#).unwrap();
    let e = Preset::load(f.to_str().unwrap()).unwrap_err().to_string();
    assert!(e.contains("p.json") && e.contains("blur"), "{e}");
    let e = Preset::load("imagenet").unwrap_err().to_string();
    assert!(
        e.contains("unknown preset 'imagenet'") && e.contains("imagenet-tf"),
        "{e}"
    );
}

#[test]
fn fit_check_names_the_mismatch() {
    let p = Preset::load("mnist").unwrap();
    p.check_fits("input", &[-1, 1, 28, 28], [28, 28, 1]).unwrap();
    let e = p
        .check_fits("input", &[-1, 3, 224, 224], [28, 28, 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("channels 3") && e.contains("gives 1"), "{e}");
    let t = Preset::load("imagenet-tf").unwrap();
    let e = t
        .check_fits("input", &[1, 1, 28, 28], [28, 28, 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("the model wants height 28, the preset gives 224"), "{e}");
    let mut no_resize = t.clone();
    no_resize.pipeline.resize = None;
    let e = no_resize
        .check_fits("input", &[1, 3, 224, 224], [28, 28, 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("crop 224×224 is larger than the 28×28 image"), "{e}");
    t.check_fits("input", &[1, 3, 224, 224], [480, 640, 3]).unwrap();
    let e = t
        .check_fits("input", &[1, 3, 224, 224], [480, 640, 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("channels 3"), "{e}");
}

#[test]
fn grayscale_matches_pillow_luma() {
    let mut p = Preset::load("mnist").unwrap();
    p.pipeline.scale = 1.0;
    p.pipeline.mean = vec![0.0];
    // Pillow: Image.new("RGB", (1, 1), (200, 100, 50)).convert("L").getpixel((0, 0)) == 124
    // ((200·19595 + 100·38470 + 50·7471 + 32768) >> 16 = 124); a gray pixel keeps its value.
    p.pipeline.std = vec![1.0];
    p.pipeline.grayscale = true;
    let (v, dims) = p.apply(&Image::u8(1, 2, 3, vec![200, 100, 50, 77, 77, 77])).unwrap();
    assert_eq!(dims, [1, 2, 1]);
    assert_eq!(v, vec![124.0, 77.0]);
}
