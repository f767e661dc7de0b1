//! What every application over a TCP stream uses: the stream's unconsumed
//! bytes, and what an application asks of its stream after taking data.

/// An application's answer to data or a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Keep feeding this application.
    Stay,
    /// Nothing more to learn from the stream.
    Done,
}

/// Feed a parser from `data`, using `pending` only for bytes it could not
/// consume yet. The unconsumed tail is bounded by the parser's head limit.
pub(super) fn feed_buffered<E>(
    pending: &mut Vec<u8>,
    data: &[u8],
    cap: usize,
    mut feed: impl FnMut(&[u8]) -> Result<usize, E>,
) -> Result<(), Option<E>> {
    if pending.is_empty() {
        let used = feed(data).map_err(Some)?;
        if let Some(rest) = data.get(used..) {
            pending.extend_from_slice(rest);
        }
    } else {
        pending.extend_from_slice(data);
        let used = feed(pending).map_err(Some)?;
        pending.drain(..used.min(pending.len()));
    }
    if pending.len() > cap {
        Err(None)
    } else {
        Ok(())
    }
}
