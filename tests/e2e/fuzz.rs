//! A bounded fuzz run of the parsers that read files from strangers:
//! devcontainer.json (and what `resolve` does with it), the image label
//! `devcontainer.metadata`, and provider manifests (with option
//! resolution). Seeds are the conformance corpus and the built-in and test
//! manifests; each input gets one to three mutations, from a fixed seed so a
//! failure reproduces. Nothing may panic, abort, hang or balloon: a panic
//! fails the test and names the input, which is kept on disk; an abort (a
//! stack overflow) ends the test binary, which fails it too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::common::repo_root;

/// xorshift64*: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(name)) {
            out.push(p);
        }
    }
}

fn seeds(name: &str, dirs: &[&str]) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    for d in dirs {
        files_named(&repo_root().join(d), name, &mut paths);
    }
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(seeds.len() >= 3, "too few seeds for {name} in {dirs:?}");
    seeds
}

const PALETTE: &[u8] = b"[]{}\",:/*\\\n '#-&!|>$}0e.+";
const BURSTS: &[&str] = &["[", "{\"a\":", "{", "- ", "  ", "${", "\"", "a: [", "a: {b: ", "*a ", "&a "];

fn mutate(rng: &mut Rng, input: &[u8], all: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 => {
                let end = (at + rng.below(64)).min(v.len());
                v.drain(at..end);
            }
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(v.len() + 1);
                    v.insert(i, PALETTE[rng.below(PALETTE.len())]);
                }
            }
            2 => {
                let end = (at + rng.below(200)).min(v.len());
                let piece = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, piece);
            }
            3 => {
                // Nesting or repetition bursts: the shapes that broke den.
                let n = [10, 200, 3_000, 30_000][rng.below(4)];
                let burst = BURSTS[rng.below(BURSTS.len())].repeat(n);
                v.splice(at..at, burst.into_bytes());
            }
            4 => v.truncate(at),
            5 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            6 => {
                let other = &all[rng.below(all.len())];
                let s = rng.below(other.len());
                let e = (s + rng.below(400)).min(other.len());
                v.splice(at..at, other[s..e].iter().copied());
            }
            _ => {
                let odd = ["1e999999", "-0", "99999999999999999999999", "\"\\u0000\"", "\"\\ud800\"", "null", "0x10"];
                v.splice(at..at, odd[rng.below(odd.len())].bytes());
            }
        }
    }
    v
}

/// Runs `check` on `rounds` mutated inputs; a panic fails the test with
/// the input saved for replay.
fn fuzz(kind: &str, seeds: &[Vec<u8>], rounds: usize, seed: u64, check: impl Fn(&str)) {
    let mut rng = Rng(seed);
    for round in 0..rounds {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, seeds);
        let text = String::from_utf8_lossy(&input).into_owned();
        if std::env::var_os("DEN_FUZZ_TRACE").is_some() {
            std::fs::write(std::env::temp_dir().join(format!("den-fuzz-{kind}-last")), &input).unwrap();
        }
        if catch_unwind(AssertUnwindSafe(|| check(&text))).is_err() {
            let keep = std::env::temp_dir().join(format!("den-fuzz-{kind}-{round}"));
            std::fs::write(&keep, &input).unwrap();
            panic!("{kind} round {round} panicked; input kept at {}", keep.display());
        }
    }
}

#[test]
fn devcontainer_configs_and_labels_never_crash_the_parser() {
    let seeds = seeds("devcontainer.json", &["tests/conformance", "examples"]);
    let path = Path::new("/fuzz/.devcontainer/devcontainer.json");
    let no_env = |_: &str| None;
    fuzz("config", &seeds, 6_000, 0x5eed_0001, |text| {
        if let Ok(loaded) = den_devcontainer::load_str(text, path) {
            let r = den_devcontainer::resolve(&loaded, Path::new("/fuzz/p,source=/etc"), &no_env);
            let _ = r.label_entry();
            // What `up` puts into the label goes through the label parser.
            let label = serde_json::Value::Array(vec![r.raw.clone()]).to_string();
            let _ = den_devcontainer::parse_metadata_label(&label);
        }
    });
    fuzz("label", &seeds, 2_000, 0x5eed_0002, |text| {
        let _ = den_devcontainer::parse_metadata_label(text);
    });
}

#[test]
fn provider_manifests_never_crash_the_parser() {
    let seeds = seeds("provider.yaml", &["providers", "tests/providers"]);
    fuzz("manifest", &seeds, 4_000, 0x5eed_0003, |text| {
        let Ok(m) = den_provider::Manifest::parse(text, "fuzz") else { return };
        // Option commands would run a mutated shell script: resolve only
        // manifests without any.
        if m.options.values().all(|o| o.command.trim().is_empty()) {
            if let Ok(r) = den_provider::resolve_options_partial(&m, &Default::default(), &[]) {
                for lines in m.exec.values() {
                    let _ = den_provider::expand_options(&lines.script(), &r);
                }
            }
        }
    });
}
