//! Just enough DER to find the SubjectPublicKeyInfo inside an X.509 certificate; pulling in a
//! full X.509 parser for one field is not worth its weight.

/// One TLV read from the start of some input.
struct Tlv<'a> {
    tag: u8,
    /// The whole TLV: tag, length and content.
    whole: &'a [u8],
    content: &'a [u8],
    /// What follows it.
    rest: &'a [u8],
}

/// Reads one TLV at the start of `input`.
fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some(Tlv { tag, whole: &input[..end], content: &input[header..end], rest: &input[end..] })
}

/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    let cert_body = tlv(cert)?.content;
    let mut tbs = tlv(cert_body)?.content;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.rest;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs = tlv(tbs)?.rest;
    }
    let spki = tlv(tbs)?;
    (spki.tag == 0x30).then_some(spki.whole)
}
