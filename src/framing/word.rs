//! Naming a reply's first word (`WRONGTYPE`, `STORED`...) as its bytes arrive, with
//! no buffer: the set of table words that still match shrinks byte by byte, so a
//! word split across reads costs nothing extra and the decoder stays small.

/// The first word of a reply, matched against a table of at most 32 words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WordMatch {
    /// Bit `i` set: `table[i]` matches every byte of the word seen so far.
    candidates: u32,
    /// Bytes of the word seen so far (saturating at 255).
    len: u8,
    /// The word ended (at a space or a CR). Where a line or blob ends without
    /// either, nothing more is pushed, so no explicit end is needed.
    ended: bool,
}

impl WordMatch {
    /// Starts matching against `table` (at most 32 words).
    pub fn new(table: &[&str]) -> WordMatch {
        debug_assert!(table.len() <= 32);
        let candidates = if table.len() >= 32 { u32::MAX } else { (1u32 << table.len()) - 1 };
        WordMatch { candidates, len: 0, ended: false }
    }

    /// Takes the word's bytes from `text`; a space or a CR ends the word, and
    /// bytes after its end are ignored.
    pub fn push(&mut self, table: &[&str], text: &[u8]) {
        for &byte in text {
            if self.ended {
                return;
            }
            if byte == b' ' || byte == b'\r' {
                self.ended = true;
                return;
            }
            let at = usize::from(self.len);
            for (i, word) in table.iter().enumerate() {
                if word.as_bytes().get(at) != Some(&byte) {
                    self.candidates &= !(1 << i);
                }
            }
            self.len = self.len.saturating_add(1);
        }
    }

    /// True while no byte of the word has been seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index in `table` of the word seen, or `None` if it is not in the table.
    pub fn index(&self, table: &[&str]) -> Option<usize> {
        (0..table.len()).find(|&i| self.candidates & (1 << i) != 0 && table[i].len() == usize::from(self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [&str; 4] = ["ERR", "ERROR", "END", "STORED"];

    fn name(pieces: &[&[u8]]) -> Option<usize> {
        let mut word = WordMatch::new(&TABLE);
        for piece in pieces {
            word.push(&TABLE, piece);
        }
        word.index(&TABLE)
    }

    #[test]
    fn a_word_is_named_however_it_is_split_and_prefixes_do_not_match() {
        assert_eq!(name(&[b"ERR unknown"]), Some(0));
        assert_eq!(name(&[b"ER", b"ROR"]), Some(1));
        assert_eq!(name(&[b"E", b"N", b"D\r"]), Some(2));
        assert_eq!(name(&[b"STORED"]), Some(3));
        assert_eq!(name(&[b"ERRO"]), None, "a prefix of a word is not the word");
        assert_eq!(name(&[b"STOREDX"]), None, "nor is a word that goes on");
        assert_eq!(name(&[b""]), None);
        assert_eq!(name(&[&[b'E'; 300]]), None, "a long word saturates its length, never wraps");
    }
}
