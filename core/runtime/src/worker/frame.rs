//! The worker's pipe framing: each frame is a 4-byte little-endian length, a kind byte
//! and the body: a JSON message ([`JSON`]), or a call or response in the plugin
//! protocol's own bytes ([`CALL`], [`RESPONSE`]), which the worker passes between host and
//! library without decoding them. A frame over [`MAX_FRAME`], a length the stream cannot fill, or bytes
//! that are not a message are all a malformed stream: the worker is killed, never trusted.

use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame either side accepts: 256 MiB (a translator's whole output for one
/// machine is far smaller).
pub const MAX_FRAME: u32 = 256 << 20;

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended before a whole frame (or at a frame boundary: `Ok(None)` then).
    #[error("the pipe closed in the middle of a message")]
    Truncated,
    /// A length over [`MAX_FRAME`].
    #[error("a message of {0} bytes, over the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    /// Bytes that are not a message.
    #[error("a malformed message: {0}")]
    Malformed(String),
    /// The pipe itself failed.
    #[error("the pipe failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A frame whose body is a JSON message.
pub const JSON: u8 = b'J';
/// A host's call: the entry point (one byte), then the plugin protocol's request, as
/// the library reads it.
pub const CALL: u8 = b'C';
/// A worker's answer: the library's status (4 bytes, little-endian), then its response,
/// as the library wrote it.
pub const RESPONSE: u8 = b'R';

/// Append one frame of `kind` whose body is `parts`, one after the other, to `buf`.
pub fn push_frame(buf: &mut Vec<u8>, kind: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    let n: usize = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let len = u32::try_from(n)
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("message too large"))?;
    buf.reserve(4 + n);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.push(kind);
    for p in parts {
        buf.extend_from_slice(p);
    }
    Ok(())
}

/// Write one JSON message.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let mut buf = Vec::new();
    push_frame(&mut buf, JSON, &[&body])?;
    w.write_all(&buf)?;
    w.flush()
}

/// Read one frame: its kind and body; `Ok(None)` when the stream ends cleanly between
/// frames.
pub fn read_raw<R: Read>(r: &mut R) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if len == 0 {
        return Err(FrameError::Malformed("an empty frame".into()));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

/// The JSON message of a [`JSON`] frame's body.
pub fn decode<T: DeserializeOwned>(kind: u8, body: &[u8]) -> Result<T, FrameError> {
    if kind != JSON {
        return Err(FrameError::Malformed(format!("a frame of kind {kind}")));
    }
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read one JSON message; `Ok(None)` when the stream ends cleanly between messages.
    fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
        match read_raw(r)? {
            None => Ok(None),
            Some((kind, body)) => decode(kind, &body).map(Some),
        }
    }

    #[test]
    fn frames_round_trip_and_bad_streams_are_named() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &vec!["a".to_string(), "b".to_string()]).unwrap();
        write_frame(&mut buf, &7u32).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame::<_, Vec<String>>(&mut r).unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(read_frame::<_, u32>(&mut r).unwrap(), Some(7));
        assert!(read_frame::<_, u32>(&mut r).unwrap().is_none());
        // Garbage: a huge length, a cut frame, and bytes that are not JSON.
        assert!(matches!(
            read_frame::<_, u32>(&mut &b"garbage!"[..]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            read_frame::<_, u32>(&mut &[5u8, 0, 0, 0, b'1'][..]),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame::<_, u32>(&mut &[2u8, 0, 0, 0, b'x', b'y'][..]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read_frame::<_, u32>(&mut &[1u8, 0][..]),
            Err(FrameError::Truncated)
        ));
    }
}
