//! SMS encoding and segment count (messaging.md C6): GSM 03.38 7-bit when
//! every character is in the default alphabet or its extension table (the
//! extension characters take two septets), else UCS-2 (UTF-16 code units).
//! GSM-7: 160 septets in one segment, 153 per part when concatenated;
//! UCS-2: 70 units, 67 per part. A part never splits an escape pair or a
//! surrogate pair.

/// The encoding a carrier would use for a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38 default alphabet (with extension table).
    Gsm7,
    /// UCS-2 / UTF-16.
    Ucs2,
}

impl Encoding {
    /// "GSM-7" or "UCS-2".
    pub fn label(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        }
    }
}

/// What a text costs as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Encoding.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Segments (parts) the message is sent in; 0 for an empty text.
    pub segments: usize,
}

/// The GSM 03.38 default alphabet.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table (each costs an escape plus the character).
const GSM_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets per ASCII character (0: not in GSM-7), built once from the tables.
// Evaluated at compile time: an index out of range fails the build, not a send.
#[allow(clippy::indexing_slicing, clippy::as_conversions)]
const ASCII_COST: [u8; 128] = {
    let mut t = [0u8; 128];
    let basic = GSM_BASIC.as_bytes();
    let mut i = 0;
    while i < basic.len() {
        if basic[i] < 128 {
            t[basic[i] as usize] = 1;
        }
        i += 1;
    }
    let ext = GSM_EXTENDED.as_bytes();
    let mut j = 0;
    while j < ext.len() {
        if ext[j] < 128 {
            t[ext[j] as usize] = 2;
        }
        j += 1;
    }
    t
};

fn gsm_cost(c: char) -> Option<usize> {
    if let Some(cost) = u32::from(c)
        .try_into()
        .ok()
        .and_then(|b: usize| ASCII_COST.get(b))
    {
        return (*cost > 0).then_some(usize::from(*cost));
    }
    if c == '€' {
        Some(2)
    } else if GSM_BASIC.contains(c) {
        Some(1)
    } else {
        None
    }
}

/// Packs unit costs into parts of at most `per_part`, never splitting one item.
fn pack(
    costs: impl Iterator<Item = usize> + Clone,
    single: usize,
    per_part: usize,
) -> (usize, usize) {
    let units: usize = costs.clone().sum();
    if units == 0 {
        return (0, 0);
    }
    if units <= single {
        return (units, 1);
    }
    let mut parts = 1;
    let mut used = 0;
    for c in costs {
        if used + c > per_part {
            parts += 1;
            used = 0;
        }
        used += c;
    }
    (units, parts)
}

/// Encoding, length and segment count of `text`.
pub fn analyze(text: &str) -> SegmentInfo {
    if text.chars().all(|c| gsm_cost(c).is_some()) {
        let (units, segments) = pack(text.chars().map(|c| gsm_cost(c).unwrap_or(1)), 160, 153);
        SegmentInfo {
            encoding: Encoding::Gsm7,
            units,
            segments,
        }
    } else {
        let (units, segments) = pack(text.chars().map(char::len_utf16), 70, 67);
        SegmentInfo {
            encoding: Encoding::Ucs2,
            units,
            segments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_limits_are_160_then_153() {
        assert_eq!(analyze("").segments, 0);
        let a160 = "a".repeat(160);
        assert_eq!(
            analyze(&a160),
            SegmentInfo {
                encoding: Encoding::Gsm7,
                units: 160,
                segments: 1
            }
        );
        assert_eq!(analyze(&"a".repeat(161)).segments, 2);
        assert_eq!(analyze(&"a".repeat(306)).segments, 2);
        assert_eq!(analyze(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_count_double() {
        // 80 euro signs are 160 septets: one segment; 81 are two.
        assert_eq!(analyze(&"€".repeat(80)).units, 160);
        assert_eq!(analyze(&"€".repeat(80)).segments, 1);
        assert_eq!(analyze(&"€".repeat(81)).segments, 2);
        for c in ['[', ']', '{', '}', '\\', '^', '~', '|', '€'] {
            let i = analyze(&c.to_string());
            assert_eq!((i.encoding, i.units), (Encoding::Gsm7, 2), "{c}");
        }
        // An escape pair is not split: 152 'a' + '€' would need 154 in part one.
        let s = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(analyze(&s).units, 164);
        assert_eq!(analyze(&s).segments, 2);
    }

    #[test]
    fn one_accent_or_emoji_makes_the_whole_text_ucs2() {
        // é is in GSM-7; á, í, ó, ú are not (messaging.md C6).
        assert_eq!(analyze("café").encoding, Encoding::Gsm7);
        let es = analyze("Su cita está programada");
        assert_eq!(es.encoding, Encoding::Ucs2);
        assert_eq!(analyze(&"a".repeat(70)).encoding, Encoding::Gsm7);
        assert_eq!(analyze(&format!("á{}", "a".repeat(69))).segments, 1);
        assert_eq!(analyze(&format!("á{}", "a".repeat(70))).segments, 2);
        assert_eq!(analyze(&format!("á{}", "a".repeat(133))).segments, 2);
        assert_eq!(analyze(&format!("á{}", "a".repeat(134))).segments, 3);
        // An emoji is two UTF-16 units and never split across parts.
        let e = analyze("👍");
        assert_eq!((e.encoding, e.units, e.segments), (Encoding::Ucs2, 2, 1));
    }
}
