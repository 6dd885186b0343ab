//! Running ACPICA's `iasl` (Debian acpica-tools) on our tables: disassemble
//! with `iasl -d`, recompile the result, fail on any error or warning.
//! Without iasl the tests fail, telling to install acpica-tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Words in iasl's output or in a disassembly that mean something is wrong.
const BAD_WORDS: &[&str] = &[
    "warning",
    "error",
    "incorrect",
    "invalid",
    "unknown",
    "terminates in the middle",
];

/// A scratch directory removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("host-vmm-acpi-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An acpica-tools binary; panics (fails the test) when it is not installed.
fn acpica_tool(name: &str) -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin")]);
    for dir in candidates {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found in PATH or /usr/bin: install acpica-tools (apt-get install acpica-tools)"
    )
}

/// Runs iasl with `args` inside `dir`; returns (success, stdout + stderr).
fn run_iasl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(acpica_tool("iasl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run iasl: {e}: install acpica-tools"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Panics if `text` contains one of [`BAD_WORDS`], showing the line.
fn assert_clean(what: &str, text: &str) {
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        // The compiler summary names "Errors"/"Warnings" with their counts;
        // those are checked by `compile`.
        if lower.contains("compilation successful") || lower.contains("compilation failed") {
            continue;
        }
        if let Some(w) = BAD_WORDS.iter().find(|w| lower.contains(*w)) {
            panic!("{what}: iasl reports {w:?}: {line}\n--- full text ---\n{text}");
        }
    }
}

/// Writes `bytes` to `<name>.dat` in `dir`, disassembles it with `iasl -d`
/// and returns the `.dsl` text, failing on any complaint.
pub fn disassemble(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let dat = format!("{name}.dat");
    std::fs::write(dir.join(&dat), bytes).unwrap();
    let (ok, out) = run_iasl(dir, &["-d", &dat]);
    assert!(ok, "iasl -d {dat} failed:\n{out}");
    assert_clean(&format!("iasl -d {dat}"), &out);
    let dsl = std::fs::read_to_string(dir.join(format!("{name}.dsl")))
        .unwrap_or_else(|e| panic!("iasl -d {dat} wrote no .dsl ({e}):\n{out}"));
    assert_clean(&format!("{name}.dsl"), &dsl);
    dsl
}

/// Compiles `<name>.dsl` (or any source) in `dir` with iasl, requiring
/// "0 Errors, 0 Warnings", and returns the produced `<name>.aml` bytes.
pub fn compile(dir: &Path, name: &str, source: &str) -> Vec<u8> {
    let src = format!("{name}.src.dsl");
    std::fs::write(dir.join(&src), source).unwrap();
    let (ok, out) = run_iasl(dir, &["-p", name, &src]);
    assert!(ok, "iasl {src} failed:\n{out}\n--- source ---\n{source}");
    let summary = out
        .lines()
        .find(|l| l.contains("Compilation successful"))
        .unwrap_or_else(|| panic!("iasl {src}: no success summary:\n{out}"));
    assert!(
        summary.contains(" 0 Errors") && summary.contains(" 0 Warnings"),
        "iasl {src}: {summary}\n{out}"
    );
    std::fs::read(dir.join(format!("{name}.aml")))
        .unwrap_or_else(|e| panic!("iasl {src} wrote no {name}.aml ({e}):\n{out}"))
}

/// Disassembles `bytes` and compiles the disassembly again; returns the
/// recompiled bytes.
pub fn round_trip(dir: &Path, name: &str, bytes: &[u8]) -> Vec<u8> {
    let dsl = disassemble(dir, name, bytes);
    compile(dir, &format!("{name}-re"), &dsl)
}

/// Loads `dsdt` into ACPICA's interpreter (`acpiexec -b`), runs `command`
/// (e.g. "Evaluate \\_S5_") and returns the output, failing on any
/// error, warning or exception.
pub fn acpiexec(dir: &Path, dsdt: &[u8], command: &str) -> String {
    std::fs::write(dir.join("exec-dsdt.dat"), dsdt).unwrap();
    let out = Command::new(acpica_tool("acpiexec"))
        .args(["-b", command, "exec-dsdt.dat"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run acpiexec: {e}: install acpica-tools"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "acpiexec -b {command:?} failed:\n{text}"
    );
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if ["error", "warning", "exception", "ae_"]
            .iter()
            .any(|w| lower.contains(w))
        {
            panic!("acpiexec -b {command:?}: {line}\n--- full output ---\n{text}");
        }
    }
    text
}
