//! The watcher's pause, kept as Ganeti keeps it: the file `watcher.pause`
//! in the data directory holds the end of the pause as whole seconds since
//! the epoch. A pause that ended is ignored, and its file removed an hour
//! after its end (as Ganeti's `ReadWatcherPauseFile`); a file that does not
//! hold a number is removed.

use std::path::{Path, PathBuf};

use objects::paths::Paths;

/// How long after its end an old pause file is removed.
const REMOVE_AFTER: f64 = 3600.0;

/// The pause file of the node whose tree `paths` describes.
pub fn file(paths: &Paths) -> PathBuf {
    paths.data_dir().join("watcher.pause")
}

/// Writing or removing the pause file failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot update the watcher pause file {path}")]
pub struct PauseError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Pauses the watcher until `until` (seconds since the epoch), or ends the
/// pause (`None`).
pub fn set(paths: &Paths, until: Option<f64>) -> Result<(), PauseError> {
    let path = file(paths);
    let err = |source| PauseError {
        path: path.clone(),
        source,
    };
    match until {
        Some(t) => {
            std::fs::create_dir_all(paths.data_dir()).map_err(err)?;
            let tmp = path.with_extension("pause.tmp");
            std::fs::write(&tmp, format!("{}\n", t.floor() as i64)).map_err(err)?;
            std::fs::rename(&tmp, &path).map_err(err)
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(e)),
        },
    }
}

/// The end of the pause in force at `now`, if any.
pub fn until(paths: &Paths, now: f64) -> Option<f64> {
    read_at(&file(paths), now)
}

fn read_at(path: &Path, now: f64) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let Ok(value) = text.trim().parse::<i64>() else {
        tracing::warn!(
            "watcher pause file {} holds no number, removing it",
            path.display()
        );
        let _ = std::fs::remove_file(path);
        return None;
    };
    let value = value as f64;
    if now > value + REMOVE_AFTER {
        let _ = std::fs::remove_file(path);
        return None;
    }
    (now <= value).then_some(value)
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_until_its_end_then_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        set(&paths, Some(1000.5)).unwrap();
        assert_eq!(
            std::fs::read_to_string(file(&paths)).unwrap(),
            "1000\n",
            "Ganeti's format: whole seconds"
        );
        assert_eq!(until(&paths, 999.0), Some(1000.0));
        assert_eq!(until(&paths, 1001.0), None);
        assert!(file(&paths).exists(), "kept for an hour after its end");
        assert_eq!(until(&paths, 1000.0 + REMOVE_AFTER + 1.0), None);
        assert!(!file(&paths).exists());
    }

    #[test]
    fn continue_removes_the_pause_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        set(&paths, Some(5000.0)).unwrap();
        set(&paths, None).unwrap();
        assert_eq!(until(&paths, 1.0), None);
        set(&paths, None).unwrap();
        std::fs::write(file(&paths), "soon\n").unwrap();
        assert_eq!(until(&paths, 1.0), None);
        assert!(!file(&paths).exists());
    }
}
