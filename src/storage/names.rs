//! Local names in object keys. Keys are UTF-8; local names are bytes. A name
//! that is valid UTF-8 is its own key. A byte that is not part of valid UTF-8
//! (always 0x80–0xFF) travels as one character of the Private Use Area,
//! U+F780–U+F7FF (U+F700 + the byte), and comes back as that byte: the way
//! rclone's `InvalidUtf8` encoding keeps such names. So that every key decodes
//! to the name it came from, a name that itself holds U+F700 or a character
//! of that range has it escaped by a U+F700 before it.
//!
//! Keys HugeSync did not write decode the same way; a key without those
//! characters (almost every key) is its name unchanged.

/// The escape, and the base of the characters that stand for raw bytes.
const ESCAPE: char = '\u{F700}';

fn stands_for_byte(c: char) -> Option<u8> {
    let code = u32::from(c);
    (0xF780..=0xF7FF)
        .contains(&code)
        .then(|| (code - 0xF700) as u8)
}

/// The key text of a name.
pub fn encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == ESCAPE || stands_for_byte(c).is_some() {
                out.push(ESCAPE);
            }
            out.push(c);
        }
        for &byte in chunk.invalid() {
            // 0x80..=0xFF: a lone byte is never ASCII.
            out.push(
                char::from_u32(0xF700 + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER),
            );
        }
    }
    out
}

/// The name a key stands for.
pub fn decode(key: &str) -> Vec<u8> {
    // U+F700–U+F7FF are EF 9C 80 – EF 9F BF in UTF-8: a key without an
    // 0xEF byte (almost every key) is its name, copied at once.
    if !key.as_bytes().contains(&0xEF) {
        return key.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(key.len());
    let mut chars = key.chars();
    let mut buffer = [0u8; 4];
    while let Some(c) = chars.next() {
        let literal = if c == ESCAPE {
            // An escaped character stands for itself (a lone escape at the
            // end, which HugeSync never writes, too).
            chars.next().unwrap_or(ESCAPE)
        } else if let Some(byte) = stands_for_byte(c) {
            out.push(byte);
            continue;
        } else {
            c
        };
        out.extend_from_slice(literal.encode_utf8(&mut buffer).as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_are_their_own_keys_and_others_come_back_whole() {
        assert_eq!(encode("données/ü.csv".as_bytes()), "données/ü.csv");
        let latin1 = b"caf\xe9.txt";
        let key = encode(latin1);
        assert_eq!(key, "caf\u{F7E9}.txt");
        assert_eq!(decode(&key), latin1);
        // A name holding the characters used for the encoding is escaped.
        for name in ["\u{F7E9}", "\u{F700}x", "a\u{F780}\u{F7FF}"] {
            let key = encode(name.as_bytes());
            assert_ne!(key, name);
            assert_eq!(decode(&key), name.as_bytes(), "{name:?}");
        }
        // Every byte string survives.
        let mixed: Vec<u8> = (0..=255u8).chain(*b"\xef\x9c\x80 end").collect();
        assert_eq!(decode(&encode(&mixed)), mixed);
    }
}
