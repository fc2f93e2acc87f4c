//! Identities and time stamps of new configuration objects.

use crate::model::Timestamp;

/// A new random UUID (version 4), as Ganeti's.
pub fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:x}{:02x}-{:x}{:x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 0x0f, b[7], 8 | (b[8] & 0x3), b[8] >> 4, b[9],
        b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// The current time as Ganeti stamps its objects (`ctime`, `mtime`).
pub fn timestamp() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
