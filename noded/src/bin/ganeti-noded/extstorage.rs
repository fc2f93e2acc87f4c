//! ExtStorage providers (Ganeti's ExtStorage interface): a directory of
//! the search path with the scripts `create`, `remove`, `grow`, `attach`,
//! `detach`, `setinfo`, `verify` (and optionally `snapshot`, `open`,
//! `close`) and a `parameters.list`. This node only finds and checks
//! them; the `ext` disk template is not implemented.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rpc::api::{ExtStorageDiagnose, ExtStorageProvider};
use tracing::warn;

use crate::handlers::{CallResult, State};

/// Every file of a provider and whether it is required, in the order they
/// are checked.
const FILES: &[(&str, bool)] = &[
    ("attach", true),
    ("close", false),
    ("create", true),
    ("detach", true),
    ("grow", true),
    ("open", false),
    ("remove", true),
    ("setinfo", true),
    ("snapshot", false),
    ("verify", true),
    ("parameters.list", true),
];

/// `extstorage_diagnose`: every directory entry of the search path, valid
/// or not.
pub fn diagnose(s: &State, _r: ExtStorageDiagnose) -> CallResult<Vec<ExtStorageProvider>> {
    let mut out = Vec::new();
    for dir in s.paths.extstorage_search_path() {
        if !dir.is_dir() {
            continue;
        }
        let mut names: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) => {
                warn!(dir = %dir.display(), "cannot list the ExtStorage directory: {e}");
                break;
            }
        };
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let mut p = ExtStorageProvider {
                name,
                path: path.display().to_string(),
                ..Default::default()
            };
            match check_provider(&p.name, &path) {
                Ok(params) => {
                    p.valid = true;
                    p.parameters = params;
                }
                Err(why) => p.diagnose = why,
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// The provider's parameters, or why it is invalid (Ganeti's messages).
fn check_provider(name: &str, dir: &Path) -> Result<Vec<(String, String)>, String> {
    if !dir.is_dir() {
        return Err(format!(
            "Directory for External Storage Provider {name} not found in search path"
        ));
    }
    let base = dir.display();
    for (file, required) in FILES {
        let path = dir.join(file);
        let st = match std::fs::metadata(&path) {
            Ok(st) => st,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(format!(
                    "File '{file}' under path '{base}' is missing ({})",
                    errno_or_str(&e)
                ))
            }
        };
        if !st.is_file() {
            return Err(format!(
                "File '{file}' under path '{base}' is not a regular file"
            ));
        }
        if *file != "parameters.list" && st.permissions().mode() & 0o100 == 0 {
            return Err(format!(
                "File '{file}' under path '{base}' is not executable"
            ));
        }
    }
    let list = dir.join("parameters.list");
    let text = std::fs::read_to_string(&list).map_err(|e| {
        format!(
            "Error while reading the EXT parameters file at {}: {}",
            list.display(),
            errno_or_str(&e)
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(2, char::is_whitespace);
            let name = parts.next().filter(|n| !n.is_empty())?;
            let doc = parts.next().unwrap_or("").trim().to_string();
            Some((name.to_string(), doc))
        })
        .collect())
}

/// An I/O error as Ganeti's `ErrnoOrStr` prints it: the errno's name
/// (`ENOENT`).
fn errno_or_str(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objects::paths::Paths;

    fn provider(root: &Path, name: &str, skip: &[&str]) -> std::path::PathBuf {
        let dir = Paths::new(root).extstorage_search_path()[0].join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, required) in FILES {
            if !required || skip.contains(file) {
                continue;
            }
            let p = dir.join(file);
            if *file == "parameters.list" {
                std::fs::write(&p, "pool The pool to use\nsize_hint\n").unwrap();
            } else {
                std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        dir
    }

    #[test]
    fn a_complete_provider_is_valid_with_its_parameters_and_a_missing_script_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(Paths::new(dir.path()), "node1".into(), None);
        provider(dir.path(), "good", &[]);
        let bad = provider(dir.path(), "broken", &["grow"]);
        let rows = diagnose(&state, ExtStorageDiagnose {}).unwrap();
        assert_eq!(rows.len(), 2);
        let (broken, good) = (&rows[0], &rows[1]);
        assert!(good.valid && good.diagnose.is_empty());
        assert_eq!(
            good.parameters,
            vec![
                ("pool".to_string(), "The pool to use".to_string()),
                ("size_hint".to_string(), String::new())
            ]
        );
        assert!(!broken.valid);
        assert_eq!(
            broken.diagnose,
            format!(
                "File 'grow' under path '{}' is missing (ENOENT)",
                bad.display()
            )
        );
    }

    #[test]
    fn a_script_that_cannot_be_executed_makes_the_provider_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let p = provider(dir.path(), "noexec", &[]);
        std::fs::set_permissions(p.join("verify"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_provider("noexec", &p).unwrap_err();
        assert!(e.ends_with("is not executable"), "{e}");
    }

    #[test]
    fn no_search_directory_means_no_providers() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(Paths::new(dir.path()), "node1".into(), None);
        assert!(diagnose(&state, ExtStorageDiagnose {}).unwrap().is_empty());
    }
}
