//! Embeds every file under assets/ (the page and the vendored xterm.js):
//! writes `$OUT_DIR/assets.rs`, a table of (path under assets/, bytes,
//! gzipped). Files that compress well are stored gzipped (xterm.js goes
//! from about 480 KB to 120 KB of the binary, which is copied into every
//! workspace) and sent as they are to browsers, which all take gzip. The
//! page is served from the binary; nothing is read or fetched at run time.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("assets");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut table = String::from("pub static FILES: &[(&str, &[u8], bool)] = &[\n");
    for (i, (name, path)) in files.iter().enumerate() {
        let bytes = std::fs::read(path).expect("reading an asset");
        let gz = gzip(&bytes);
        let (path, gzipped) = if gz.len() * 10 < bytes.len() * 9 {
            let p = out.join(format!("asset-{i}.gz"));
            std::fs::write(&p, gz).expect("writing a compressed asset");
            (p, true)
        } else {
            (path.clone(), false)
        };
        table.push_str(&format!("    ({name:?}, include_bytes!({:?}), {gzipped}),\n", path.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out.join("assets.rs"), table).expect("writing assets.rs");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("compressing in memory");
    e.finish().expect("compressing in memory")
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            files.push((rel.to_string_lossy().into_owned(), path.clone()));
        }
    }
}
