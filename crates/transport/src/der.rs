//! Just enough DER to find the SubjectPublicKeyInfo inside an X.509 certificate; pulling in a
//! full X.509 parser for one field is not worth its weight.

/// Reads one TLV at the start of `input`: (tag, whole TLV, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8], &[u8])> {
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
    Some((tag, &input[..end], &input[header..end], &input[end..]))
}

/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    let (_, _, cert_body, _) = tlv(cert)?;
    let (_, _, mut tbs, _) = tlv(cert_body)?;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.3;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs = tlv(tbs)?.3;
    }
    let (tag, whole, _, _) = tlv(tbs)?;
    (tag == 0x30).then_some(whole)
}
