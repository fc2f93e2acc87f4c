//! A file read again whenever it changes (its inode, size or modification
//! time): the users file and the tokens file. A request after an edit
//! sees the new contents; a missing file reads as empty.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What identifies a version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn version(path: &Path) -> Option<Version> {
    let m = std::fs::metadata(path).ok()?;
    Some(Version {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// Turns a file's text into its contents (`path` for messages).
pub type Load<T> = fn(&Path, &str) -> T;

/// A watched file and what was last read from it.
pub struct Watched<T> {
    path: PathBuf,
    what: &'static str,
    load: Load<T>,
    /// The version last read, and its contents.
    cached: Mutex<(Option<Version>, Arc<T>)>,
}

impl<T: Default> Watched<T> {
    /// Watches `path` (`what` names it in the log).
    pub fn new(path: &Path, what: &'static str, load: Load<T>) -> Self {
        let w = Watched {
            path: path.to_path_buf(),
            what,
            load,
            cached: Mutex::new((None, Arc::new(T::default()))),
        };
        w.reload(None);
        w
    }

    fn reload(&self, now: Option<Version>) -> Arc<T> {
        let contents = match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                tracing::info!(path = %self.path.display(), "read the {}", self.what);
                (self.load)(&self.path, &text)
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read the {}", self.what);
                }
                T::default()
            }
        };
        let contents = Arc::new(contents);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        *cached = (now, contents.clone());
        contents
    }

    /// The contents as the file says now.
    pub fn current(&self) -> Arc<T> {
        let now = version(&self.path);
        {
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            if cached.0 == now {
                return cached.1.clone();
            }
        }
        self.reload(now)
    }
}
