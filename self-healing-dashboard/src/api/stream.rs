//! `GET api/stream`: the live activity feed as server-sent events.
//!
//! Events: `ready` once connected; `healing` per event (an [`EventView`](crate::EventView) as
//! JSON); `lagged` with the number of events skipped when this client fell behind.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::state::DashboardState;
use crate::views::EventView;

fn healing(view: &EventView) -> Event {
    Event::default()
        .event("healing")
        .json_data(view)
        .unwrap_or_else(|_| Event::default().event("lagged").data("1"))
}

async fn next(
    mut rx: Receiver<Arc<EventView>>,
) -> Option<(Result<Event, Infallible>, Receiver<Arc<EventView>>)> {
    match rx.recv().await {
        Ok(view) => Some((Ok(healing(&view)), rx)),
        Err(RecvError::Lagged(n)) => {
            Some((Ok(Event::default().event("lagged").data(n.to_string())), rx))
        }
        Err(RecvError::Closed) => None,
    }
}

/// `GET api/stream`.
pub(crate) async fn stream(
    State(state): State<DashboardState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.inner.feed.subscribe();
    let mut closing = state.inner.closing.subscribe();
    let closed = async move {
        if closing.wait_for(|c| *c).await.is_err() {
            // The state is gone (a test dropped its router): only the feed can end the stream.
            std::future::pending::<()>().await;
        }
    };
    let ready = stream::once(async { Ok(Event::default().event("ready").data("ok")) });
    Sse::new(ready.chain(stream::unfold(rx, next)).take_until(closed))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
