//! Notices a SQLite database file deleted or replaced while the store has it open.
//!
//! SQLite keeps writing to the file it opened: once that file is unlinked (or another file is
//! moved over its path), every commit succeeds into an inode nobody will ever read again. So
//! after each commit the writer compares the file at the path with the one the connections
//! opened, and on a difference opens new connections (migrating the new file) and writes the
//! batch again.

use std::path::{Path, PathBuf};

/// The file a SQLite URL names; `None` for PostgreSQL, in-memory databases and `file:` URIs
/// (whose query may point SQLite elsewhere).
pub(crate) fn sqlite_file(url: &crate::url::DatabaseUrl) -> Option<&Path> {
    (url.backend == crate::url::Backend::Sqlite
        && !url.is_memory()
        && !url.target.starts_with("file:"))
    .then(|| Path::new(&url.target))
}

/// Which file a path named when the connections opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileId {
    path: PathBuf,
    #[cfg(unix)]
    device_inode: (u64, u64),
}

impl FileId {
    /// The file at `path` now, if there is one (and this platform can tell files apart).
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        // The store may outlive a change of the working directory: remember where it was.
        let path = std::path::absolute(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(&path).ok()?;
            Some(FileId {
                device_inode: (meta.dev(), meta.ino()),
                path,
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// Why the path no longer names this file, if it does not.
    pub(crate) fn moved(&self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(&self.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("was deleted"),
                // Unreadable metadata is not proof of anything: keep writing.
                Err(_) => None,
                Ok(meta) if (meta.dev(), meta.ino()) != self.device_inode => {
                    Some("was replaced by another file")
                }
                Ok(_) => None,
            }
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn deletion_and_replacement_are_told_apart_from_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        std::fs::write(&path, b"one").unwrap();
        // Held open as SQLite holds it: an open file's inode is not reused by another file.
        let _open = std::fs::File::open(&path).unwrap();
        let id = FileId::of(&path).unwrap();
        assert_eq!(id.moved(), None);
        std::fs::write(&path, b"written in place").unwrap();
        assert_eq!(id.moved(), None, "writing to the file is not moving it");

        std::fs::remove_file(&path).unwrap();
        assert_eq!(id.moved(), Some("was deleted"));

        let other = dir.path().join("restored.db");
        std::fs::write(&other, b"backup").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(id.moved(), Some("was replaced by another file"));
        assert_eq!(FileId::of(&path).unwrap().moved(), None);
    }
}
