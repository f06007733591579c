//! Request and response bodies as the proxy handles them.
//!
//! A request body is kept so that a failed attempt can be retried on another machine: small bodies of
//! known length are buffered and can be sent any number of times ([`Replay::Bytes`]); anything else is
//! streamed once, and a retry is possible only while no attempt has touched it ([`Replay::Once`]).
//! A proxied response body carries its machine's active count until it is done, and returns its
//! backend connection to the machine's pool once read to the end.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;

use super::counters::ActiveGuard;
use super::lock;
use super::pool::Checkin;

/// A request body as kept across attempts.
pub(super) enum Replay {
    /// Buffered (or empty): any number of attempts.
    Bytes(Bytes),
    /// Streamed: whichever attempt polls it first takes it; a failed attempt that never polled it
    /// leaves it for the next one.
    Once { slot: Arc<Mutex<Option<Incoming>>>, hint: SizeHint },
}

impl Replay {
    /// The body of one attempt.
    pub(super) fn body(&self) -> ReqBody {
        match self {
            Replay::Bytes(b) => ReqBody::Bytes(Some(b.clone())),
            Replay::Once { slot, hint } => ReqBody::Once { slot: slot.clone(), body: None, hint: *hint },
        }
    }

    /// Whether another attempt can still send the whole body.
    pub(super) fn available(&self) -> bool {
        match self {
            Replay::Bytes(_) => true,
            Replay::Once { slot, .. } => lock(slot).is_some(),
        }
    }

    /// Whether the body can be sent again after an attempt that may have sent it.
    pub(super) fn replayable(&self) -> bool {
        matches!(self, Replay::Bytes(_))
    }
}

/// The body sent to a backend.
pub(super) enum ReqBody {
    /// A [`Replay::Bytes`] body (taken when sent).
    Bytes(Option<Bytes>),
    /// A [`Replay::Once`] body: taken out of the shared slot on first poll.
    Once { slot: Arc<Mutex<Option<Incoming>>>, body: Option<Incoming>, hint: SizeHint },
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Bytes(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            ReqBody::Once { slot, body, .. } => {
                if body.is_none() {
                    *body = lock(slot).take();
                }
                match body {
                    Some(body) => Pin::new(body).poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Bytes(b) => b.as_ref().is_none_or(Bytes::is_empty),
            ReqBody::Once { body: Some(body), .. } => body.is_end_stream(),
            ReqBody::Once { hint, .. } => hint.exact() == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Once { body: Some(body), .. } => body.size_hint(),
            ReqBody::Once { hint, .. } => *hint,
        }
    }
}

/// The body sent to the client; a proxied one holds its machine's active count until it is done, and
/// gives its connection back to the machine's pool once read to the end.
pub(super) enum RespBody {
    /// An answer of the proxy's own (an error, or the head of an upgrade).
    Full(Option<Bytes>),
    /// A machine's answer.
    Proxied { body: Incoming, _guard: ActiveGuard, checkin: Option<Checkin<SendRequest<ReqBody>>> },
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Proxied { body, checkin, .. } => {
                let frame = Pin::new(&mut *body).poll_frame(cx);
                let finished = match &frame {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(Some(Err(_))) => {
                        // A broken connection is not reused.
                        *checkin = None;
                        false
                    }
                    Poll::Pending => false,
                };
                if finished && let Some(c) = checkin.take() {
                    c.done();
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.is_none(),
            RespBody::Proxied { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Proxied { body, .. } => body.size_hint(),
        }
    }
}
