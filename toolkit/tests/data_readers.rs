//! Readers on files the tests write (CIFAR binary, ImageFolder, npy/npz, IDX) and on the real MNIST and digits in
//! ../shared.

use std::io::Write;
use std::path::Path;

use ratio_testkit::shared;
use toolkit::data::idx::encode_idx;
use toolkit::data::npy::{NpyData, encode_npy};
use toolkit::data::{DataError, Dataset, Format, OpenOptions, Pixels, Split, open};

fn open_path(p: &Path, format: Option<Format>) -> Result<Box<dyn Dataset>, DataError> {
    open(
        p.to_str().unwrap(),
        &OpenOptions {
            format,
            split: Split::Test,
        },
    )
}

fn u8_pixels(ds: &dyn Dataset, i: usize) -> Vec<u8> {
    match ds.sample(i).unwrap().image.pixels {
        Pixels::U8(v) => v,
        Pixels::F32(_) => panic!("expected u8"),
    }
}

#[test]
fn real_mnist_test_split() {
    let ds = open_path(&shared("data/mnist"), None).unwrap();
    assert_eq!(ds.len(), 10_000);
    assert_eq!(ds.identity().format, "idx");
    let mut counts = [0usize; 10];
    for i in 0..ds.len() {
        counts[ds.label(i) as usize] += 1;
    }
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    let s = ds.sample(0).unwrap();
    assert_eq!(
        (s.image.height, s.image.width, s.image.channels, s.label),
        (28, 28, 1, 7)
    );
    let train = open(
        shared("data/mnist").to_str().unwrap(),
        &OpenOptions {
            format: Some(Format::Idx),
            split: Split::Train,
        },
    )
    .unwrap();
    assert_eq!(train.len(), 60_000);
    // First MNIST training labels: 5 0 4 1 9.
    assert_eq!((0..5).map(|i| train.label(i)).collect::<Vec<_>>(), vec![5, 0, 4, 1, 9]);
}

#[test]
fn real_digits_csv() {
    let ds = open_path(&shared("data/digits.csv.gz"), None).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (1797, 10));
    let mut counts = [0usize; 10];
    for i in 0..ds.len() {
        counts[ds.label(i) as usize] += 1;
    }
    assert!(counts.iter().all(|&c| (174..=183).contains(&c)), "{counts:?}");
    // First row of the file: 0,0,5,13,9,1,0,0,… label 0.
    assert_eq!(&u8_pixels(ds.as_ref(), 0)[..6], &[0, 0, 5, 13, 9, 1]);
    assert_eq!(ds.label(0), 0);
}

#[test]
fn idx_pair_from_written_files_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let imgs: Vec<u8> = (0..3 * 2 * 2).map(|v| v as u8 * 10).collect();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), encode_idx(&[3, 2, 2], &imgs)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&encode_idx(&[3], &[2, 0, 1])).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let ds = open_path(dir.path(), None).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(u8_pixels(ds.as_ref(), 1), vec![40, 50, 60, 70]);
    assert_eq!(ds.label(0), 2);
    // A label file of the wrong length is named in the error.
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), encode_idx(&[2], &[0, 1])).unwrap();
    let e = open_path(dir.path(), None).err().unwrap().to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("must be [3]"),
        "{e}"
    );
}

/// A CIFAR record: label byte(s) then R, G, B planes of 32×32.
fn cifar_record(labels: &[u8], fill: [u8; 3]) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in fill {
        r.extend(std::iter::repeat_n(c, 1024));
    }
    r
}

#[test]
fn cifar10_and_cifar100_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = cifar_record(&[3], [10, 20, 30]);
    b.extend(cifar_record(&[9], [1, 2, 3]));
    std::fs::write(dir.path().join("test_batch.bin"), &b).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(dir.path().join("batches.meta.txt"), names).unwrap();
    let ds = open_path(dir.path(), None).unwrap();
    assert_eq!(
        (ds.len(), ds.num_classes(), ds.identity().format.as_str()),
        (2, 10, "cifar10")
    );
    assert_eq!(ds.class_names()[3], "cat");
    let s = ds.sample(0).unwrap();
    assert_eq!(
        (s.image.height, s.image.width, s.image.channels, s.label),
        (32, 32, 3, 3)
    );
    // Planar records become interleaved HWC pixels.
    assert_eq!(&u8_pixels(ds.as_ref(), 1)[..6], &[1, 2, 3, 1, 2, 3]);

    let dir100 = tempfile::tempdir().unwrap();
    let mut b = cifar_record(&[4, 77], [5, 6, 7]);
    b.extend(cifar_record(&[1, 12], [0, 0, 0]));
    std::fs::write(dir100.path().join("test.bin"), &b).unwrap();
    let ds = open_path(dir100.path(), None).unwrap();
    assert_eq!((ds.num_classes(), ds.label(0), ds.label(1)), (100, 77, 12));

    // A truncated batch says what is wrong with which file.
    let f = dir.path().join("test_batch.bin");
    std::fs::write(&f, &cifar_record(&[1], [0, 0, 0])[..3000]).unwrap();
    let e = open_path(&f, None).err().unwrap().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("not a whole number"), "{e}");
}

fn write_png(path: &Path, w: u32, h: u32, v: u8) {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([v, v / 2, 255 - v]));
    img.save(path).unwrap();
}

#[test]
fn image_folder_classes_sorted_and_decoded_lazily() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("zebra", 2), ("ant", 1), ("cat", 3)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..n {
            write_png(&dir.path().join(class).join(format!("{i}.png")), 4, 3, 40 * i as u8);
        }
    }
    std::fs::write(dir.path().join("cat").join("notes.txt"), "not an image").unwrap();
    let ds = open_path(dir.path(), None).unwrap();
    assert_eq!(ds.class_names(), &["ant", "cat", "zebra"]);
    assert_eq!(ds.len(), 6);
    assert_eq!((0..6).map(|i| ds.label(i)).collect::<Vec<_>>(), vec![0, 1, 1, 1, 2, 2]);
    assert_eq!(ds.identity().hashed, "manifest");
    let s = ds.sample(2).unwrap();
    assert_eq!((s.image.height, s.image.width, s.image.channels), (3, 4, 3));
    assert_eq!(&u8_pixels(ds.as_ref(), 2)[..3], &[40, 20, 215]);

    // A corrupt file is reported by name when sampled, not at open.
    std::fs::write(dir.path().join("cat").join("3.png"), b"\x89PNG garbage").unwrap();
    let ds = open_path(dir.path(), None).unwrap();
    let e = ds.sample(4).err().unwrap();
    assert!(matches!(e, DataError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("3.png"), "{e}");

    // An empty class folder is an error naming it.
    std::fs::create_dir(dir.path().join("dog")).unwrap();
    let e = open_path(dir.path(), None).err().unwrap();
    assert!(matches!(e, DataError::EmptyClass { .. }), "{e}");
    assert!(e.to_string().contains("dog"), "{e}");
}

#[test]
fn npy_folder_and_npz_archive() {
    let dir = tempfile::tempdir().unwrap();
    // Two 2×2 RGB images in NCHW, f32.
    let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
    std::fs::write(
        dir.path().join("x.npy"),
        encode_npy(&[2, 3, 2, 2], &NpyData::F32(x.clone())),
    )
    .unwrap();
    std::fs::write(dir.path().join("y.npy"), encode_npy(&[2], &NpyData::I64(vec![1, 0]))).unwrap();
    let ds = open_path(dir.path(), None).unwrap();
    assert_eq!((ds.len(), ds.label(0)), (2, 1));
    let s = ds.sample(1).unwrap();
    assert_eq!((s.image.height, s.image.width, s.image.channels), (2, 2, 3));
    // Image 1 starts at 12: R plane 12..16, G 16..20, B 20..24 → first pixel (12, 16, 20).
    assert_eq!(s.image.to_f32()[..3], [12.0, 16.0, 20.0]);

    let npz = dir.path().join("set.npz");
    {
        let f = std::fs::File::create(&npz).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("images.npy", opts).unwrap();
        z.write_all(&encode_npy(&[3, 2, 2], &NpyData::U8(vec![7; 12]))).unwrap();
        z.start_file("labels.npy", opts).unwrap();
        z.write_all(&encode_npy(&[3], &NpyData::I64(vec![0, 1, 2]))).unwrap();
        z.finish().unwrap();
    }
    let ds = open_path(&npz, None).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (3, 3));
    assert_eq!(u8_pixels(ds.as_ref(), 2), vec![7; 4]);

    // Labels that do not match the image count.
    std::fs::write(dir.path().join("y.npy"), encode_npy(&[3], &NpyData::I64(vec![1, 0, 0]))).unwrap();
    let e = open_path(dir.path(), None).err().unwrap().to_string();
    assert!(e.contains("labels must be [2]"), "{e}");
}

#[test]
fn missing_path_and_unknown_layout() {
    let e = open("/no/such/dataset", &OpenOptions::default()).err().unwrap();
    assert!(matches!(e, DataError::NotFound { .. }));
    assert!(e.to_string().contains("/no/such/dataset"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), "hi").unwrap();
    let e = open_path(dir.path(), None).err().unwrap().to_string();
    assert!(e.contains("--format"), "{e}");
}
