//! A `drbd` disk's meta volume: two small records at its start.
//!
//! - Sector 0 (4 KiB), *data*: whether this node's copy is consistent
//!   (whole and current as of the last sync into it). Written by this
//!   node when the disk is created, and by the primary, over the
//!   replication link, when a sync into this copy starts (inconsistent)
//!   and ends (consistent) — as DRBD's meta data keeps the disk state.
//! - Sector 1 (4 KiB), *writer*: written by this node only: whether it is
//!   the primary and whether it left its peer in sync when its storage
//!   daemon last stopped cleanly. While the daemon runs it says "not in
//!   sync", so a daemon that dies leaves a record that makes the next
//!   start sync the peer in full.
//!
//! Each record is JSON followed by a newline and zeros. The rest of the
//! volume is unused: QEMU 7.2's mirror cannot start from a saved dirty
//! bitmap, so a bitmap kept here would have nothing to feed.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// Size of one record.
pub const RECORD_SIZE: usize = 4096;
const DATA_OFFSET: u64 = 0;
const WRITER_OFFSET: u64 = RECORD_SIZE as u64;
const DATA_FORMAT: &str = "ganeti-rs drbd data 1";
const WRITER_FORMAT: &str = "ganeti-rs drbd writer 1";

/// The state of a node's copy (sector 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataState {
    pub format: String,
    pub disk: String,
    /// The copy is whole and current.
    pub consistent: bool,
    /// The node that wrote this record.
    pub by: String,
}

impl DataState {
    pub fn new(disk: &str, consistent: bool, by: &str) -> Self {
        DataState {
            format: DATA_FORMAT.to_string(),
            disk: disk.to_string(),
            consistent,
            by: by.to_string(),
        }
    }

    /// The record as written to the meta volume.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode(self, &self.disk)
    }
}

/// What this node knows as a writer (sector 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterState {
    pub format: String,
    pub disk: String,
    pub primary: bool,
    /// The peer had every write when this node's daemon last stopped.
    pub peer_in_sync: bool,
}

impl WriterState {
    pub fn new(disk: &str, primary: bool, peer_in_sync: bool) -> Self {
        WriterState {
            format: WRITER_FORMAT.to_string(),
            disk: disk.to_string(),
            primary,
            peer_in_sync,
        }
    }
}

fn meta_err(disk: &str, path: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::Meta {
        disk: disk.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn encode<T: Serialize>(record: &T, disk: &str) -> Result<Vec<u8>> {
    let mut buf = serde_json::to_vec(record)
        .map_err(|e| meta_err(disk, Path::new(""), format!("cannot encode: {e}")))?;
    buf.push(b'\n');
    if buf.len() > RECORD_SIZE {
        return Err(meta_err(disk, Path::new(""), "record too large"));
    }
    buf.resize(RECORD_SIZE, 0);
    Ok(buf)
}

fn read<T: DeserializeOwned>(
    path: &Path,
    offset: u64,
    disk: &str,
    format: &str,
) -> Result<Option<T>> {
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|e| StorageError::io("open the meta volume", path, e))?;
    let mut buf = vec![0u8; RECORD_SIZE];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| StorageError::io("read the meta volume", path, e))?;
    let end = buf.iter().position(|b| *b == b'\n' || *b == 0).unwrap_or(0);
    if end == 0 {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(&buf[..end])
        .map_err(|e| meta_err(disk, path, format!("unreadable record: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(format) {
        return Err(meta_err(disk, path, format!("not a '{format}' record")));
    }
    if value.get("disk").and_then(|d| d.as_str()) != Some(disk) {
        return Err(meta_err(
            disk,
            path,
            format!(
                "it belongs to disk {}",
                value.get("disk").unwrap_or(&serde_json::Value::Null)
            ),
        ));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| meta_err(disk, path, format!("unreadable record: {e}")))
}

fn write(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open the meta volume", path, e))?;
    file.write_all_at(bytes, offset)
        .and_then(|()| file.sync_data())
        .map_err(|e| StorageError::io("write the meta volume", path, e))
}

/// The data record of `disk` in the meta volume at `path` (`None`: never
/// written).
pub fn read_data(path: &Path, disk: &str) -> Result<Option<DataState>> {
    read(path, DATA_OFFSET, disk, DATA_FORMAT)
}

pub fn write_data(path: &Path, state: &DataState) -> Result<()> {
    write(path, DATA_OFFSET, &state.encode()?)
}

/// The writer record of `disk` in the meta volume at `path`.
pub fn read_writer(path: &Path, disk: &str) -> Result<Option<WriterState>> {
    read(path, WRITER_OFFSET, disk, WRITER_FORMAT)
}

pub fn write_writer(path: &Path, state: &WriterState) -> Result<()> {
    write(path, WRITER_OFFSET, &encode(state, &state.disk)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_belong_to_their_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("meta");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        assert_eq!(read_data(&path, "d1").unwrap(), None);
        assert_eq!(read_writer(&path, "d1").unwrap(), None);
        let data = DataState::new("d1", false, "node2");
        write_data(&path, &data).unwrap();
        let writer = WriterState::new("d1", true, true);
        write_writer(&path, &writer).unwrap();
        assert_eq!(read_data(&path, "d1").unwrap(), Some(data));
        assert_eq!(read_writer(&path, "d1").unwrap(), Some(writer));
        let err = read_data(&path, "d2").unwrap_err();
        assert!(err.to_string().contains("belongs to disk"), "{err}");
        // A record is one sector: the other stays as it was.
        write_data(&path, &DataState::new("d1", true, "node1")).unwrap();
        assert!(read_writer(&path, "d1").unwrap().unwrap().peer_in_sync);
        assert_eq!(
            DataState::new("d1", true, "n").encode().unwrap().len(),
            RECORD_SIZE
        );
    }
}
