//! Half-close bookkeeping for one hijacked stream (pure: no nginx types, unit-tested).
//!
//! nginx's upgraded relay ends the whole tunnel at the first EOF from either side. Docker
//! needs TCP semantics instead: when the client shuts its write side after stdin, dockerd must
//! see EOF on stdin while the output keeps flowing back, and the mirror case likewise.
//!
//! The FFI layer wraps the `recv`/`send` of both connections and asks a [`Tunnel`] what to do:
//! - on EOF from a side, hide it from nginx (so the relay goes on) and shut the write side of
//!   the opposite connection once every byte read before the EOF has been written there;
//! - once both directions are finished, let nginx see an EOF so it finalizes the request.
//!
//! nginx may call `recv` again on a source that already reported EOF (epoll reports the
//! readable state again with every write-ready edge): a repeated EOF must get the same answer
//! as the first. Reporting a repeated, hidden EOF would let nginx finalize while the other
//! direction still has bytes in its buffer, truncating the stream.
//!
//! Bytes pending in a direction are counted, not looked up: the relay's buffer only fills
//! through our `recv` wrapper and only drains through our `send` wrapper.

/// A direction of the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client (docker CLI) to upstream (dockerd): stdin.
    ToUpstream = 0,
    /// Upstream to client: stdout/stderr.
    ToClient = 1,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::ToUpstream, Dir::ToClient];

    pub fn other(self) -> Dir {
        match self {
            Dir::ToUpstream => Dir::ToClient,
            Dir::ToClient => Dir::ToUpstream,
        }
    }

    /// The metric label for this direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::ToUpstream => "to_upstream",
            Dir::ToClient => "to_client",
        }
    }
}

/// What to do with an EOF just read from a direction's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEof {
    /// The other direction is finished: report the EOF so nginx flushes and finalizes.
    Report,
    /// Hide the EOF from nginx; if `shut_now`, shut the destination's write side now.
    Hide { shut_now: bool },
}

/// What to do after bytes were written to a direction's destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSent {
    Nothing,
    /// The direction is drained after its EOF: shut the destination's write side.
    Shut,
    /// As `Shut`, and the other direction is finished too: make nginx finalize.
    ShutAndFinish,
}

#[derive(Clone, Copy, Debug, Default)]
struct Half {
    /// Bytes read from the source and not yet written to the destination.
    pending: usize,
    /// The source reported EOF.
    eof: bool,
    /// The destination's write side was shut: this direction is finished.
    shut: bool,
    /// nginx was let see this source's EOF (the relay ends once this direction drains).
    reported: bool,
}

/// Per-stream state: one [`Half`] per [`Dir`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Tunnel {
    halves: [Half; 2],
}

impl Tunnel {
    /// A tunnel whose buffers already hold bytes read before the switch (pipelined client
    /// bytes, or stream bytes that arrived with dockerd's response header).
    pub fn new(pending_to_upstream: usize, pending_to_client: usize) -> Self {
        let mut t = Tunnel::default();
        t.halves[Dir::ToUpstream as usize].pending = pending_to_upstream;
        t.halves[Dir::ToClient as usize].pending = pending_to_client;
        t
    }

    fn half(&mut self, dir: Dir) -> &mut Half {
        &mut self.halves[dir as usize]
    }

    /// Whether `dir` is finished (EOF relayed as a shut write side).
    pub fn is_shut(&self, dir: Dir) -> bool {
        self.halves[dir as usize].shut
    }

    /// `n` bytes were read from `dir`'s source.
    pub fn received(&mut self, dir: Dir, n: usize) {
        self.half(dir).pending += n;
    }

    /// `dir`'s source reported EOF (again, possibly).
    pub fn on_eof(&mut self, dir: Dir) -> OnEof {
        let other_shut = self.is_shut(dir.other());
        let half = self.half(dir);
        if half.reported {
            return OnEof::Report;
        }
        if half.eof {
            return OnEof::Hide { shut_now: false };
        }
        half.eof = true;
        if other_shut {
            half.reported = true;
            return OnEof::Report;
        }
        let shut_now = half.pending == 0;
        half.shut = shut_now;
        OnEof::Hide { shut_now }
    }

    /// `n` bytes were written to `dir`'s destination.
    pub fn sent(&mut self, dir: Dir, n: usize) -> OnSent {
        let other_shut = self.is_shut(dir.other());
        let half = self.half(dir);
        half.pending = half.pending.saturating_sub(n);
        if !half.eof || half.shut || half.reported || half.pending != 0 {
            return OnSent::Nothing;
        }
        half.shut = true;
        if other_shut {
            half.reported = true;
            OnSent::ShutAndFinish
        } else {
            OnSent::Shut
        }
    }
}

#[cfg(test)]
mod tests;
