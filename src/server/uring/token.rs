//! What a completion is about: the operation's kind, the connection slot and the slot's
//! generation, packed into the 64-bit `user_data` every submission carries.
//!
//! The generation tells a reused slot from its previous occupant: a late completion of a
//! closed connection's operation finds another generation in the slot and is ignored.

/// Generations wrap within 24 bits (the top byte of `user_data` holds the kind).
pub const GENERATION_MASK: u32 = 0x00ff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// The connection slot, or the listener index for [`Kind::Accept`].
    pub slot: u32,
    pub generation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Multishot accept on listener `slot`.
    Accept = 1,
    Recv = 2,
    Send = 3,
    /// `POLLOUT` while a file body waits for socket buffer space.
    Poll = 4,
    /// The shutdown wake-up socket became readable.
    Wake = 5,
    /// Cancel and close: posted only on failure (`CQE_SKIP_SUCCESS`), and ignored.
    Ignore = 6,
    /// Multishot poll on the file cache's inotify descriptor.
    Watch = 7,
}

impl Token {
    pub fn new(kind: Kind, slot: u32, generation: u32) -> Token {
        Token {
            kind,
            slot,
            generation: generation & GENERATION_MASK,
        }
    }

    pub fn encode(self) -> u64 {
        (self.kind as u64) << 56
            | u64::from(self.generation & GENERATION_MASK) << 32
            | u64::from(self.slot)
    }

    /// `None` for data no submission of ours carries.
    pub fn decode(data: u64) -> Option<Token> {
        let kind = match data >> 56 {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Poll,
            5 => Kind::Wake,
            6 => Kind::Ignore,
            7 => Kind::Watch,
            _ => return None,
        };
        Some(Token {
            kind,
            slot: data as u32,
            generation: (data >> 32) as u32 & GENERATION_MASK,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for kind in [
            Kind::Accept,
            Kind::Recv,
            Kind::Send,
            Kind::Poll,
            Kind::Wake,
            Kind::Ignore,
            Kind::Watch,
        ] {
            for (slot, generation) in [(0, 0), (u32::MAX, GENERATION_MASK), (7, 12345)] {
                let t = Token::new(kind, slot, generation);
                assert_eq!(Token::decode(t.encode()), Some(t));
            }
        }
        assert_eq!(Token::decode(0), None);
        // A generation past the mask wraps, as slots' generations do.
        let t = Token::new(Kind::Recv, 1, GENERATION_MASK + 2);
        assert_eq!(Token::decode(t.encode()).map(|t| t.generation), Some(1));
    }
}
