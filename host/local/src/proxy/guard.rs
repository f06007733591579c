//! A client connection as hyper reads it: every byte passes the [`Scanner`] first (see `framing`),
//! so hyper only ever parses heads the proxy accepted. Writes go straight to the socket.
//!
//! Every read lands straight in hyper's buffer. Bytes the scanner need not look at (the rest of a
//! body of known length, an upgraded stream) are left there unscanned; the rest are scanned where
//! they lie, and what the scanner holds back (an incomplete head, and anything after it) is cut off
//! again and handed to hyper only once released, from a buffer of the guard's.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::framing::{HeadLimits, Refusal, Scanner};
use super::lock;

/// The refusal of one connection, shared by its guard (which decides it) and its HTTP service (which
/// answers it): which request it is (0-based, in the order hyper reads them) and why.
pub(super) type RefusalSlot = Arc<Mutex<Option<(u64, Refusal)>>>;

/// A client's socket behind the scanner.
pub(super) struct Guarded {
    stream: TcpStream,
    scanner: Scanner,
    /// Scanned bytes hyper has not read yet.
    ready: BytesMut,
    refusal: RefusalSlot,
}

impl Guarded {
    /// `stream` behind a scanner with these head bounds; its refusal, if any, lands in `refusal`.
    /// `read`: bytes already read from `stream` (by the lean path, which hands over a connection at
    /// a request it does not forward itself), scanned first.
    pub(super) fn new(stream: TcpStream, limits: HeadLimits, refusal: RefusalSlot, read: &[u8]) -> Self {
        let mut guarded = Guarded { stream, scanner: Scanner::new(limits), ready: BytesMut::new(), refusal };
        if !read.is_empty()
            && let Some(refused) = guarded.scanner.feed(read, &mut guarded.ready)
        {
            tracing::debug!(reason = %refused.1.reason, "proxy: request refused");
            *lock(&guarded.refusal) = Some(refused);
        }
        guarded
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.scanner.refused() {
                // hyper answers the stand-in head with `Connection: close`; nothing more is read.
                return Poll::Pending;
            }
            if this.scanner.broken() {
                return Poll::Ready(Ok(()));
            }
            if let Some(limit) = this.scanner.passthrough() {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(buf.remaining());
                let dst = buf.initialize_unfilled_to(limit);
                let mut direct = ReadBuf::new(dst);
                ready!(Pin::new(&mut this.stream).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                buf.advance(n);
                this.scanner.passed(n);
                return Poll::Ready(Ok(()));
            }
            // Read straight into hyper's buffer and scan there: in the usual case (a whole head in
            // one read, nothing held back) the bytes stay where they landed. Whatever the scanner
            // holds back is cut off again; hyper then reads what it released (`ready`).
            let start = buf.filled().len();
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
            if buf.filled().len() == start {
                // The client is gone; an incomplete head it left is dropped with it.
                return Poll::Ready(Ok(()));
            }
            let (keep, refusal) = this.scanner.scan(&buf.filled()[start..], &mut this.ready);
            buf.set_filled(start + keep);
            if let Some(refusal) = refusal {
                tracing::debug!(reason = %refusal.1.reason, "proxy: request refused");
                *lock(&this.refusal) = Some(refusal);
            }
            if keep > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
