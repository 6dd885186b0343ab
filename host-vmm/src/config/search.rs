//! Which configuration file to read (pure: the caller passes what it
//! found out about the process and the file system).
//!
//! The order, first match wins:
//! 1. `--config FILE`;
//! 2. `$HOST_VMM_CONFIG` (when set and not empty);
//! 3. [`SYSTEM_CONFIG`], `/etc/host-vmm/configuration.toml`;
//! 4. the shipped default: for a binary run from a build tree
//!    (`<repo>/target/[<triple>/]<profile>/host-vmm`), the repository's
//!    `configuration.toml` (`<repo>` is the parent of the nearest `target`
//!    directory above the executable);
//! 5. none: the compiled-in defaults (absolute install paths under
//!    `/usr/share/host-vmm`).
//!
//! The current directory is never searched: `sudo host-vmm run` in a
//! directory another user controls would otherwise boot their kernel and
//! initrd. `./configuration.toml` is read only when named (`--config` or
//! the environment).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "HOST_VMM_CONFIG";
/// The system-wide configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/host-vmm/configuration.toml";
/// The name of the shipped configuration at the root of the build tree.
pub const SHIPPED_NAME: &str = "configuration.toml";

/// How the configuration file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    Flag,
    Env,
    System,
    Shipped,
}

impl fmt::Display for FoundBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FoundBy::Flag => "named by --config",
            FoundBy::Env => "named by $HOST_VMM_CONFIG",
            FoundBy::System => "the system configuration",
            FoundBy::Shipped => "the shipped default next to this build of host-vmm",
        })
    }
}

/// The file chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChoice {
    pub path: PathBuf,
    pub found_by: FoundBy,
}

/// What the search looks at.
pub struct SearchInputs<'a> {
    /// `--config`.
    pub explicit: Option<&'a Path>,
    /// The value of [`CONFIG_ENV`].
    pub env: Option<OsString>,
    /// This executable's absolute path (`/proc/self/exe`).
    pub exe: Option<PathBuf>,
    /// Whether a regular file exists at a path.
    pub is_file: &'a dyn Fn(&Path) -> bool,
}

impl SearchInputs<'_> {
    /// The inputs of this process.
    pub fn from_process(explicit: Option<&Path>) -> SearchInputs<'_> {
        SearchInputs {
            explicit,
            env: std::env::var_os(CONFIG_ENV),
            exe: std::env::current_exe().ok(),
            is_file: &|p: &Path| p.is_file(),
        }
    }
}

/// The shipped configuration for an executable at `exe`: `<repo>/configuration.toml`
/// when `exe` sits below `<repo>/target/`; `None` for an installed binary.
pub fn shipped_config(exe: &Path) -> Option<PathBuf> {
    if !exe.is_absolute() {
        return None;
    }
    let target = exe
        .parent()?
        .ancestors()
        .find(|d| d.file_name() == Some("target".as_ref()))?;
    Some(target.parent()?.join(SHIPPED_NAME))
}

/// The file to read (see the module documentation), `None` for the
/// compiled-in defaults. A file named by `--config` or the environment is
/// returned even if it does not exist, so reading it reports the error.
pub fn resolve(inputs: &SearchInputs<'_>) -> Option<ConfigChoice> {
    if let Some(p) = inputs.explicit {
        return Some(ConfigChoice {
            path: p.to_path_buf(),
            found_by: FoundBy::Flag,
        });
    }
    if let Some(p) = inputs.env.as_ref().filter(|p| !p.is_empty()) {
        return Some(ConfigChoice {
            path: PathBuf::from(p),
            found_by: FoundBy::Env,
        });
    }
    let system = Path::new(SYSTEM_CONFIG);
    if (inputs.is_file)(system) {
        return Some(ConfigChoice {
            path: system.to_path_buf(),
            found_by: FoundBy::System,
        });
    }
    let shipped = inputs.exe.as_deref().and_then(shipped_config)?;
    (inputs.is_file)(&shipped).then_some(ConfigChoice {
        path: shipped,
        found_by: FoundBy::Shipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/src/repo/target/release/host-vmm";
    const SHIPPED: &str = "/src/repo/configuration.toml";

    fn run(
        explicit: Option<&str>,
        env: Option<&str>,
        exe: Option<&str>,
        files: &[&str],
    ) -> Option<(String, FoundBy)> {
        let is_file = |p: &Path| files.iter().any(|f| Path::new(f) == p);
        let inputs = SearchInputs {
            explicit: explicit.map(Path::new),
            env: env.map(OsString::from),
            exe: exe.map(PathBuf::from),
            is_file: &is_file,
        };
        resolve(&inputs).map(|c| (c.path.display().to_string(), c.found_by))
    }

    fn found(path: &str, by: FoundBy) -> Option<(String, FoundBy)> {
        Some((path.to_string(), by))
    }

    #[test]
    fn test_search_order_flag_env_system_shipped_defaults() {
        let all = [SYSTEM_CONFIG, SHIPPED, "configuration.toml"];
        assert_eq!(
            run(Some("/x.toml"), Some("/e.toml"), Some(EXE), &all),
            found("/x.toml", FoundBy::Flag)
        );
        assert_eq!(
            run(None, Some("/e.toml"), Some(EXE), &all),
            found("/e.toml", FoundBy::Env)
        );
        assert_eq!(
            run(None, None, Some(EXE), &all),
            found(SYSTEM_CONFIG, FoundBy::System)
        );
        assert_eq!(
            run(None, Some(""), Some(EXE), &[SHIPPED, "configuration.toml"]),
            found(SHIPPED, FoundBy::Shipped),
            "an empty variable is unset"
        );
        assert_eq!(run(None, None, Some(EXE), &[]), None);
        assert_eq!(run(None, None, None, &[SHIPPED]), None);
    }

    /// Issue 10, finding 9: `./configuration.toml` (any relative file in
    /// the current directory) is never picked up unless named.
    #[test]
    fn test_search_never_reads_the_current_directory_unnamed() {
        let cwd = ["configuration.toml", "./configuration.toml"];
        assert_eq!(run(None, None, Some("/usr/bin/host-vmm"), &cwd), None);
        assert_eq!(
            run(Some("configuration.toml"), None, None, &cwd),
            found("configuration.toml", FoundBy::Flag)
        );
        assert_eq!(
            run(None, Some("./configuration.toml"), None, &cwd),
            found("./configuration.toml", FoundBy::Env)
        );
    }

    #[test]
    fn test_named_files_are_returned_even_when_missing() {
        assert_eq!(
            run(Some("/missing.toml"), None, Some(EXE), &[SHIPPED]),
            found("/missing.toml", FoundBy::Flag)
        );
        assert_eq!(
            run(None, Some("/missing.toml"), Some(EXE), &[SHIPPED]),
            found("/missing.toml", FoundBy::Env)
        );
    }

    #[test]
    fn test_shipped_config_is_the_build_trees_root() {
        let s = |e: &str| shipped_config(Path::new(e)).map(|p| p.display().to_string());
        assert_eq!(s(EXE).as_deref(), Some(SHIPPED));
        assert_eq!(
            s("/src/repo/target/debug/host-vmm").as_deref(),
            Some(SHIPPED)
        );
        assert_eq!(
            s("/src/repo/target/x86_64-unknown-linux-musl/release/host-vmm").as_deref(),
            Some(SHIPPED)
        );
        assert_eq!(
            s("/src/repo/target/debug/deps/host_vmm-0123").as_deref(),
            Some(SHIPPED)
        );
        assert_eq!(s("/usr/local/bin/host-vmm"), None);
        assert_eq!(s("target/debug/host-vmm"), None, "relative: never");
        assert_eq!(
            s("/target/host-vmm").as_deref(),
            Some("/configuration.toml")
        );
    }
}
