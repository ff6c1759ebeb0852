//! Progress of one worker: the last height it has fully handled, kept in a small JSON file that
//! is replaced atomically (write, fsync, rename), so a restart resumes where it stopped and
//! never rescans from the start.

use crate::PortalError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Every block up to this height is relayed (or had nothing to relay).
    pub height: u64,
}

/// The file of one worker.
#[derive(Debug, Clone)]
pub struct ProgressFile {
    path: PathBuf,
}

impl ProgressFile {
    /// The file for link `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        ProgressFile {
            path: dir.join(format!("{name}.json")),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> PortalError {
        PortalError::Progress {
            path: self.path.display().to_string(),
            error: e.to_string(),
        }
    }

    /// The stored progress, if any.
    pub fn load(&self) -> Result<Option<Progress>, PortalError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Replaces the stored progress atomically.
    pub fn save(&self, p: Progress) -> Result<(), PortalError> {
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec(&p).map_err(|e| self.err(e))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.err(e))?;
        f.write_all(&body).map_err(|e| self.err(e))?;
        f.sync_all().map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_a_reopen_and_a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = ProgressFile::new(dir.path(), "a-in");
        assert_eq!(f.load().unwrap(), None);
        f.save(Progress { height: 42 }).unwrap();
        assert_eq!(
            ProgressFile::new(dir.path(), "a-in").load().unwrap(),
            Some(Progress { height: 42 })
        );
        std::fs::write(dir.path().join("a-in.json"), b"{").unwrap();
        assert!(f.load().is_err());
    }
}
