//! `S@` / `ipcidr` targets: an address or a network, checked against the minion's `ipv4` or
//! `ipv6` grain (Salt's `ipcidr_match`).

use std::net::IpAddr;

use serde_json::Value;

use crate::grains::Grains;
use crate::TargetError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IpTarget {
    /// Matches when the grain list holds this exact address.
    Addr(IpAddr),
    /// Matches when any address in the grain list is inside the network.
    Net { base: IpAddr, prefix: u8 },
}

impl IpTarget {
    /// Parses like Python's `ip_address(tgt)`, then `ip_network(tgt)` (strict: no host bits).
    pub(crate) fn parse(text: &str) -> Result<Self, TargetError> {
        let invalid = |why: &str| TargetError::new(format!("invalid IP/CIDR target '{text}': {why}"));
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(IpTarget::Addr(addr));
        }
        let (addr, prefix) = text.split_once('/').ok_or_else(|| invalid("not an address or network"))?;
        let base: IpAddr = addr.parse().map_err(|_| invalid("not an address or network"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match prefix.parse() {
            Ok(p) if p <= max && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(invalid(&format!("prefix length must be 0 to {max}"))),
        };
        if mask(base, prefix) != to_bits(base) {
            return Err(invalid("has host bits set"));
        }
        Ok(IpTarget::Net { base, prefix })
    }

    /// The grain this target reads: `ipv4` or `ipv6`, by the family of its address.
    pub(crate) fn grain(&self) -> &'static str {
        let base = match self {
            IpTarget::Addr(a) | IpTarget::Net { base: a, .. } => a,
        };
        if base.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        }
    }

    pub(crate) fn matches<G: Grains + ?Sized>(&self, grains: &G) -> bool {
        let addrs: Vec<IpAddr> = match grains.get(self.grain()) {
            Some(Value::Array(items)) => items.iter().filter_map(parse_grain_addr).collect(),
            Some(single) => parse_grain_addr(single).into_iter().collect(),
            None => return false,
        };
        match *self {
            IpTarget::Addr(want) => addrs.contains(&want),
            IpTarget::Net { base, prefix } => addrs.iter().any(|a| a.is_ipv4() == base.is_ipv4() && mask(*a, prefix) == to_bits(base)),
        }
    }
}

fn parse_grain_addr(value: &Value) -> Option<IpAddr> {
    value.as_str()?.parse().ok()
}

/// The address as a 128-bit number (IPv4 in the low 32 bits).
fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address with everything after the first `prefix` bits cleared.
fn mask(addr: IpAddr, prefix: u8) -> u128 {
    let width: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let host_bits = width - u32::from(prefix);
    let bits = to_bits(addr);
    if host_bits >= 128 {
        0
    } else {
        bits & !((1u128 << host_bits) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let grains = json!({
            "ipv4": ["10.0.0.5", "127.0.0.1"],
            "ipv6": ["::1", "fe80::a00:27ff:fe4e:66a1"]
        })
        .as_object()
        .unwrap()
        .clone();
        let cases: &[(&str, bool)] = &[
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("10.0.0.0/24", true),
            ("10.0.0.0/8", true),
            ("10.0.1.0/24", false),
            ("0.0.0.0/0", true),
            ("10.0.0.5/32", true),
            ("::1", true),
            ("fe80::/10", true),
            ("fe80:0:0:0:a00:27ff:fe4e:66a1", true),
            ("2001:db8::/32", false),
            ("::/0", true),
        ];
        for &(target, want) in cases {
            assert_eq!(IpTarget::parse(target).unwrap().matches(&grains), want, "S@{target}");
        }
        let no_v6 = json!({"ipv4": ["10.0.0.5"]}).as_object().unwrap().clone();
        assert!(!IpTarget::parse("::/0").unwrap().matches(&no_v6));
    }

    #[test]
    fn malformed() {
        for (target, why) in [
            ("10.0.0.1/24", "has host bits set"),
            ("10.0.0.0/33", "prefix length must be 0 to 32"),
            ("10.0.0.0/+8", "prefix length must be 0 to 32"),
            ("fe80::/129", "prefix length must be 0 to 128"),
            ("web1", "not an address or network"),
            ("10.0.0", "not an address or network"),
            ("010.0.0.1", "not an address or network"),
        ] {
            let err = IpTarget::parse(target).unwrap_err().to_string();
            assert_eq!(err, format!("invalid IP/CIDR target '{target}': {why}"));
        }
    }
}
