//! Framing: a 4-byte big-endian length, then that many bytes of msgpack. Framing knows nothing
//! of meaning; [`crate::message`] gives the bytes their type.
//!
//! The length is checked against a limit *before* anything is allocated, so a peer cannot make
//! us reserve memory by announcing a huge frame.

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default limit for one frame (`max_frame_bytes`): big enough for a 10 MB return with room to
/// spare, small enough that a bad peer cannot exhaust memory.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// Limit for every frame before the peer is authenticated: a hello (protocol, id) and the
/// master's answer to it. Small, so that a peer with a throwaway key costs the master little.
pub const PRE_AUTH_MAX_FRAME: usize = 4 * 1024;

/// Frames up to this size are copied behind their length and written in one go.
const COPIED_FRAME_MAX: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes (max_frame_bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Decode(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Reads one frame and decodes it as `T`. A clean close before the length is [`FrameError::Closed`].
pub async fn read_frame<T, R>(reader: &mut R, max: usize) -> Result<T, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let bytes = read_frame_bytes(reader, max).await?;
    decode(&bytes)
}

pub async fn read_frame_bytes<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len_buf = [0u8; 4];
    match reader.read_exact(&mut len_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len_buf) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // Grow the buffer as bytes arrive rather than reserving the announced length up front: a
    // peer that announces a large frame and sends it slowly (or never) holds only what it sent.
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    reader.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() < len {
        return Err(FrameError::Closed);
    }
    Ok(buf)
}

/// Encodes `msg` and writes it as one frame, refusing to send what the peer would refuse.
pub async fn write_frame<T, W>(writer: &mut W, msg: &T, max: usize) -> Result<(), FrameError>
where
    T: Serialize + ?Sized,
    W: AsyncWrite + Unpin,
{
    let bytes = encode(msg)?;
    write_frame_bytes(writer, &bytes, max).await
}

pub async fn write_frame_bytes<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8], max: usize) -> Result<(), FrameError> {
    if bytes.len() > max {
        return Err(FrameError::TooLarge { len: bytes.len(), max });
    }
    let len = (bytes.len() as u32).to_be_bytes();
    if bytes.len() <= COPIED_FRAME_MAX {
        // One write: over TLS, one record and one system call rather than two, which counts
        // when a publish goes to 50,000 minions.
        let mut framed = Vec::with_capacity(4 + bytes.len());
        framed.extend_from_slice(&len);
        framed.extend_from_slice(bytes);
        writer.write_all(&framed).await?;
    } else {
        // Written in two parts rather than copied: a frame may be 64 MiB.
        writer.write_all(&len).await?;
        writer.write_all(bytes).await?;
    }
    writer.flush().await?;
    Ok(())
}

/// Appends `msg` as one frame (length, then msgpack) to `buf`, so that many small frames go
/// out in one write.
pub fn append_frame<T: Serialize + ?Sized>(buf: &mut Vec<u8>, msg: &T, max: usize) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(e) = rmp_serde::encode::write_named(buf, msg) {
        buf.truncate(start);
        return Err(FrameError::Encode(e.to_string()));
    }
    let len = buf.len() - start - 4;
    if len > max {
        buf.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// msgpack with field names (maps, not arrays), so messages stay readable and extensible.
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, FrameError> {
    rmp_serde::to_vec_named(msg).map_err(|e| FrameError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(bytes).map_err(|e| FrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &serde_json::json!({"a": [1, "two"]}), 1024).await.unwrap();
        let v: serde_json::Value = read_frame(&mut buf.as_slice(), 1024).await.unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, "two"]}));

        let err = read_frame::<serde_json::Value, _>(&mut buf.as_slice(), 4).await.unwrap_err();
        assert!(err.to_string().contains("exceeds the limit of 4 bytes"), "{err}");

        let huge = (u32::MAX).to_be_bytes();
        let err = read_frame_bytes(&mut huge.as_slice(), DEFAULT_MAX_FRAME).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));

        let err = read_frame_bytes(&mut [0u8, 0, 0, 9, 1].as_slice(), 100).await.unwrap_err();
        assert!(matches!(err, FrameError::Closed));

        // An announced length reserves nothing: the buffer follows the bytes that arrived.
        let mut announced_big = (1u32 << 20).to_be_bytes().to_vec();
        announced_big.extend_from_slice(&[0u8; 10]);
        let err = read_frame_bytes(&mut announced_big.as_slice(), 2 << 20).await.unwrap_err();
        assert!(matches!(err, FrameError::Closed));

        // Frames appended to one buffer read back one by one; one too large leaves nothing.
        let mut many = Vec::new();
        append_frame(&mut many, &serde_json::json!("one"), 64).unwrap();
        append_frame(&mut many, &serde_json::json!([2]), 64).unwrap();
        let err = append_frame(&mut many, &"x".repeat(100), 64).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 102, max: 64 }), "{err}");
        let mut reader = many.as_slice();
        assert_eq!(read_frame::<serde_json::Value, _>(&mut reader, 64).await.unwrap(), serde_json::json!("one"));
        assert_eq!(read_frame::<serde_json::Value, _>(&mut reader, 64).await.unwrap(), serde_json::json!([2]));
        assert!(matches!(read_frame::<serde_json::Value, _>(&mut reader, 64).await, Err(FrameError::Closed)));

        let garbage = [0, 0, 0, 3, 0xc1, 0xc1, 0xc1];
        let err = read_frame::<serde_json::Value, _>(&mut garbage.as_slice(), 100).await.unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
    }
}
