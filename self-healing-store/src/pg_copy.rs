//! Rows in PostgreSQL's binary `COPY` format, encoded straight into one buffer.
//!
//! The format (PostgreSQL docs, "COPY", binary format): a signature and two zero words, then per
//! row a 16-bit field count and per field a 32-bit length (-1 for `NULL`) and the value in the
//! type's binary form (big-endian integers, UTF-8 text), and a -1 word at the end. Encoding it
//! here rather than through a value-per-field writer saves a dynamic call, a type check and a
//! buffer hand-off per value, on the writer's side of a batch that the server waits for.

/// The signature every binary `COPY` stream starts with.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A binary `COPY` stream being written. Each row must write exactly the fields its
/// [`row`](Self::row) call announced, in the table's column order, each with the column's type.
pub(crate) struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    /// An empty stream with room for about `bytes`.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes + SIGNATURE.len() + 10);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0_i32.to_be_bytes()); // flags: no OIDs
        buf.extend_from_slice(&0_i32.to_be_bytes()); // header extension: none
        CopyRows { buf }
    }

    /// Starts a row of `fields` values.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A `bigint` value.
    pub(crate) fn int8(&mut self, v: i64) {
        self.buf.extend_from_slice(&8_i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// An `integer` value.
    pub(crate) fn int4(&mut self, v: i32) {
        self.buf.extend_from_slice(&4_i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A `text` value. Values of 2 GiB or more do not fit the format; the store's texts are
    /// bounded far below that (`max_message_bytes`), and one would be cut at a character
    /// boundary rather than corrupt the stream.
    pub(crate) fn text(&mut self, v: &str) {
        let v = cut(v, i32::MAX as usize);
        // `cut` keeps the length within `i32`.
        let len = i32::try_from(v.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v.as_bytes());
    }

    /// A nullable `text` value.
    pub(crate) fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.buf.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
    }

    /// Ends the stream and returns its bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        self.buf
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_layout() {
        let mut rows = CopyRows::with_capacity(0);
        rows.row(4);
        rows.int8(-2);
        rows.int4(7);
        rows.text("hé");
        rows.opt_text(None);
        let bytes = rows.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend([0, 0, 0, 0, 0, 0, 0, 0]); // flags, extension
        expected.extend([0, 4]); // four fields
        expected.extend([0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend([0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend([0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        expected.extend([0xff, 0xff, 0xff, 0xff]); // NULL
        expected.extend([0xff, 0xff]); // end of stream
        assert_eq!(bytes, expected);
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
