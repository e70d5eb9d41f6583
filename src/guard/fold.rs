//! Folding: each char of the input becomes exactly one ASCII byte, so byte offsets in the folded
//! text are char offsets in the input. Accents are dropped (á → a, ñ → n), typographic quotes and
//! dashes become ASCII, other letters become [`OTHER`] (a word character for boundaries), and other
//! symbols a space.

/// Stands for a letter with no ASCII fold (Cyrillic, CJK, ...).
pub(crate) const OTHER: u8 = 0x01;

pub(crate) struct Folded {
    orig: String,
    lower: String,
}

impl Folded {
    pub(crate) fn new(text: &str) -> Folded {
        let mut orig = Vec::with_capacity(text.len());
        if text.is_ascii() {
            orig.extend(text.bytes().map(fold_ascii));
        } else {
            orig.extend(text.chars().map(fold_char));
        }
        let lower = orig.to_ascii_lowercase();
        Folded {
            orig: ascii_string(orig),
            lower: ascii_string(lower),
        }
    }

    /// Folded, case kept.
    pub(crate) fn orig(&self) -> &str {
        &self.orig
    }

    /// Folded, lower case.
    pub(crate) fn lower(&self) -> &str {
        &self.lower
    }

    pub(crate) fn len(&self) -> usize {
        self.orig.len()
    }
}

/// `s` folded and lower-cased (for vocabularies, allowed values and brands).
pub(crate) fn fold_lower(s: &str) -> String {
    let mut out = String::new();
    fold_lower_into(s, &mut out);
    out
}

/// [`fold_lower`] into a reused buffer.
pub(crate) fn fold_lower_into(s: &str, out: &mut String) {
    out.clear();
    out.extend(
        s.chars()
            .map(|c| char::from(fold_char(c).to_ascii_lowercase())),
    );
}

/// Every byte that [`fold_char`] returns is ASCII, so this never falls back.
fn ascii_string(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_default()
}

fn fold_ascii(b: u8) -> u8 {
    if b.is_ascii_control() && b != b'\n' && b != b'\t' {
        b' '
    } else {
        b
    }
}

pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == OTHER
}

pub(crate) fn boundary_before(text: &[u8], at: usize) -> bool {
    at == 0
        || at
            .checked_sub(1)
            .and_then(|i| text.get(i))
            .is_none_or(|&b| !is_word(b))
}

pub(crate) fn boundary_after(text: &[u8], at: usize) -> bool {
    text.get(at).is_none_or(|&b| !is_word(b))
}

fn fold_char(c: char) -> u8 {
    if let Ok(b) = u8::try_from(c)
        && b.is_ascii()
    {
        return fold_ascii(b);
    }
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' | 'ª' => b'a',
        'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' | 'Ā' => b'A',
        'é' | 'è' | 'ê' | 'ë' | 'ē' => b'e',
        'É' | 'È' | 'Ê' | 'Ë' | 'Ē' => b'E',
        'í' | 'ì' | 'î' | 'ï' | 'ī' => b'i',
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => b'I',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' | 'º' => b'o',
        'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' | 'Ø' | 'Ō' => b'O',
        'ú' | 'ù' | 'û' | 'ü' | 'ū' => b'u',
        'Ú' | 'Ù' | 'Û' | 'Ü' | 'Ū' => b'U',
        'ñ' => b'n',
        'Ñ' => b'N',
        'ç' => b'c',
        'Ç' => b'C',
        'ß' => b's',
        'ý' | 'ÿ' => b'y',
        'Ý' => b'Y',
        '‘' | '’' | '´' | '′' => b'\'',
        '“' | '”' | '«' | '»' | '″' => b'"',
        '‐' | '‑' | '‒' | '–' | '—' | '−' => b'-',
        '＠' => b'@',
        '／' => b'/',
        _ if c.is_whitespace() => b' ',
        _ if c.is_alphanumeric() => OTHER,
        _ => b' ',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_per_char() {
        let t = "Sí, José: 📞 ¿Mañana? Привет";
        let f = Folded::new(t);
        assert_eq!(f.len(), t.chars().count());
        assert_eq!(f.lower().get(0..10), Some("si, jose: "));
        assert_eq!(fold_lower("Diagnóstico"), "diagnostico");
    }
}
