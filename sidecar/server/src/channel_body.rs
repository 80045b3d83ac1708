//! A body fed from a channel: what a task writes is read as it comes, by the client (an
//! answer rewritten on the way) or by dockerd (a build context rewritten on the way). An
//! `Err` item ends the body with that error.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

pub struct ChannelBody<E = Infallible>(pub mpsc::Receiver<Result<Bytes, E>>);

impl<E> http_body::Body for ChannelBody<E> {
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}
