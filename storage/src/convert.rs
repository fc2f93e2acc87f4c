//! Copying one disk's data into another on the same node: the node's
//! half of a disk template conversion (Ganeti's `blockdev_convert`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Result, StorageError};

/// The unit of the copy.
const CHUNK: usize = 1 << 20;

/// Copies the first `size_mib` MiB of `src` into `dst`, then flushes
/// `dst` to stable storage. With `sparse_dst` (a new, empty file), blocks
/// of zeros are skipped rather than written. Returns the bytes written.
pub fn copy_data(src: &Path, dst: &Path, size_mib: u64, sparse_dst: bool) -> Result<u64> {
    let mut input = File::open(src).map_err(|e| StorageError::io("open", src, e))?;
    let mut output = OpenOptions::new()
        .write(true)
        .open(dst)
        .map_err(|e| StorageError::io("open", dst, e))?;
    let total = size_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| StorageError::InvalidSize(format!("{size_mib} MiB overflows")))?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    let mut written = 0u64;
    while done < total {
        let want = (total - done).min(CHUNK as u64) as usize;
        let mut got = 0;
        while got < want {
            match input.read(&mut buf[got..want]) {
                Ok(0) => {
                    return Err(StorageError::InvalidSize(format!(
                        "'{}' ends after {} bytes, before the {size_mib} MiB to copy",
                        src.display(),
                        done + got as u64
                    )))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StorageError::io("read", src, e)),
            }
        }
        let block = &buf[..want];
        if sparse_dst && block.iter().all(|b| *b == 0) {
            output
                .seek(SeekFrom::Current(want as i64))
                .map_err(|e| StorageError::io("seek in", dst, e))?;
        } else {
            output
                .write_all(block)
                .map_err(|e| StorageError::io("write", dst, e))?;
            written += want as u64;
        }
        done += want as u64;
    }
    output
        .sync_all()
        .map_err(|e| StorageError::io("flush", dst, e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_copied_and_zeros_are_skipped_only_into_a_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        let mut data = vec![0u8; 3 << 20];
        data[5] = 1;
        data[(2 << 20) + 7] = 2;
        std::fs::write(&src, &data).unwrap();
        std::fs::write(&dst, vec![0u8; 3 << 20]).unwrap();
        assert_eq!(copy_data(&src, &dst, 3, true).unwrap(), 2 << 20);
        assert_eq!(std::fs::read(&dst).unwrap(), data);
        std::fs::write(&dst, vec![9u8; 3 << 20]).unwrap();
        assert_eq!(copy_data(&src, &dst, 3, false).unwrap(), 3 << 20);
        assert_eq!(std::fs::read(&dst).unwrap(), data);
        let err = copy_data(&src, &dst, 4, false).unwrap_err().to_string();
        assert!(err.contains("ends after 3145728 bytes"), "{err}");
    }
}
