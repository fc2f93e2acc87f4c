//! LUXI framing: each message is UTF-8 JSON followed by the byte 0x03 (ETX).

use std::io::{self, BufRead, Write};

/// The message terminator.
pub const ETX: u8 = 0x03;

/// Largest message we accept (64 MiB); a peer that sends more is cut off.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// What can go wrong reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between messages.
    #[error("connection closed")]
    Closed,
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message ({0} bytes read)")]
    Truncated(usize),
    /// The message is larger than we accept.
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// The message is not UTF-8.
    #[error("message is not valid UTF-8")]
    NotUtf8,
    #[error("socket error")]
    Io(#[from] io::Error),
}

/// Reads one ETX-terminated message from a buffered reader (blocking).
pub fn read_message<R: BufRead>(r: &mut R) -> Result<String, FrameError> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Err(if buf.is_empty() {
                FrameError::Closed
            } else {
                FrameError::Truncated(buf.len())
            });
        }
        if let Some(pos) = avail.iter().position(|&b| b == ETX) {
            buf.extend_from_slice(&avail[..pos]);
            r.consume(pos + 1);
            break;
        }
        let n = avail.len();
        buf.extend_from_slice(avail);
        r.consume(n);
        if buf.len() > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
    }
    if buf.len() > MAX_MESSAGE {
        return Err(FrameError::TooLarge);
    }
    String::from_utf8(buf).map_err(|_| FrameError::NotUtf8)
}

/// Writes one message followed by ETX (blocking).
pub fn write_message<W: Write>(w: &mut W, msg: &str) -> io::Result<()> {
    let mut out = Vec::with_capacity(msg.len() + 1);
    out.extend_from_slice(msg.as_bytes());
    out.push(ETX);
    w.write_all(&out)?;
    w.flush()
}

/// Async versions for the server side.
#[cfg(feature = "tokio")]
pub mod aio {
    use super::{FrameError, ETX, MAX_MESSAGE};
    use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

    /// Reads one ETX-terminated message.
    pub async fn read_message<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String, FrameError> {
        let mut buf = Vec::new();
        loop {
            let avail = r.fill_buf().await?;
            if avail.is_empty() {
                return Err(if buf.is_empty() {
                    FrameError::Closed
                } else {
                    FrameError::Truncated(buf.len())
                });
            }
            if let Some(pos) = avail.iter().position(|&b| b == ETX) {
                buf.extend_from_slice(&avail[..pos]);
                r.consume(pos + 1);
                break;
            }
            let n = avail.len();
            buf.extend_from_slice(avail);
            r.consume(n);
            if buf.len() > MAX_MESSAGE {
                return Err(FrameError::TooLarge);
            }
        }
        if buf.len() > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        String::from_utf8(buf).map_err(|_| FrameError::NotUtf8)
    }

    /// Writes one message followed by ETX: a small one in one write, a big
    /// one (a listing of thousands of objects) without copying it first.
    pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &str) -> std::io::Result<()> {
        if msg.len() < 64 * 1024 {
            let mut out = Vec::with_capacity(msg.len() + 1);
            out.extend_from_slice(msg.as_bytes());
            out.push(ETX);
            w.write_all(&out).await?;
        } else {
            w.write_all(msg.as_bytes()).await?;
            w.write_all(&[ETX]).await?;
        }
        w.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_consecutive_messages() {
        let mut c = Cursor::new(b"{\"a\":1}\x03{\"b\":2}\x03".to_vec());
        assert_eq!(read_message(&mut c).unwrap(), "{\"a\":1}");
        assert_eq!(read_message(&mut c).unwrap(), "{\"b\":2}");
        assert!(matches!(read_message(&mut c), Err(FrameError::Closed)));
    }

    #[test]
    fn truncated_message_is_reported() {
        let mut c = Cursor::new(b"{\"a\":".to_vec());
        assert!(matches!(
            read_message(&mut c),
            Err(FrameError::Truncated(5))
        ));
    }

    #[test]
    fn invalid_utf8_is_reported() {
        let mut c = Cursor::new(vec![0xff, 0xfe, ETX]);
        assert!(matches!(read_message(&mut c), Err(FrameError::NotUtf8)));
    }

    #[test]
    fn write_appends_etx() {
        let mut v = Vec::new();
        write_message(&mut v, "x").unwrap();
        assert_eq!(v, b"x\x03");
    }
}
