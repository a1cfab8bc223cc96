//! The typed end of `queue_for_later`: a call that healing cannot do now is written to the
//! store's outbox, and the caller is answered `Ok(())`.

use super::{Driver, SlowSlot};

impl<E, S: SlowSlot<E>> Driver<E, S> {
    /// After [`Step::Fallback`] on a `queue_for_later` site: writes the call (its arguments as
    /// JSON in `payload`, or why they could not be written) to the store's outbox under its
    /// call key. `Ok(())` once it is there (the caller may learn it was queued through
    /// [`outbox::track`](crate::outbox::track)); the call's own error when it could not be
    /// queued. `None` when nothing failed (the loop should re-run).
    pub async fn settle_queued(
        &mut self,
        payload: Result<String, String>,
    ) -> Option<Result<(), E>> {
        let site = self.site;
        let slow = self.slow.get_mut()?;
        slow.last.as_ref()?;
        let queued = match (payload, slow.decider.call_key()) {
            (Ok(payload), Some(key)) => {
                let entry = crate::outbox::OutboxEntry::new(
                    key.to_string(),
                    site.source(),
                    payload,
                    std::time::SystemTime::now(),
                );
                let store = slow.decider.store();
                // A key queued already (a caller that retried the same call) is queued once.
                match store.outbox_put(&entry).await {
                    Ok(_) => Ok(key),
                    Err(e) => Err(format!("could not queue the call: {e}")),
                }
            }
            (Err(why), _) => Err(format!("could not queue the call's arguments: {why}")),
            (Ok(_), None) => Err("the call has no key to queue it under".to_owned()),
        };
        match queued {
            Ok(key) => {
                slow.decider.finish_fallback(true, None);
                slow.last = None;
                crate::outbox::note_queued(key);
                Some(Ok(()))
            }
            Err(why) => {
                slow.decider.finish_fallback(false, Some(why));
                slow.last.take().map(|last| Err(last.into_error()))
            }
        }
    }
}
