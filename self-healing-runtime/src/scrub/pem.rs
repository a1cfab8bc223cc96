//! Private keys in PEM: `-----BEGIN PRIVATE KEY-----` (and `RSA`, `EC`, `OPENSSH`, `ENCRYPTED`,
//! `DSA` … variants) through `-----END … PRIVATE KEY-----`.
//!
//! A message cut short may hold a block without its END line; such a block is redacted up to the
//! first `--` or the end of the text, since every line of it is key material. Certificates and
//! public keys are not secret and are left alone.

/// A BEGIN line of a private key, its body (no `--` in it: base64, line breaks, `\n` escapes,
/// `Proc-Type:` headers), and the END line when there is one.
pub(super) const PATTERN: &str = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[^-]|-[^-])*(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?";

/// Whether a value starts a PEM private key (the key=value rule leaves those to this one, which
/// takes the whole block rather than its first word).
pub(super) fn starts_block(value: &str) -> bool {
    value.starts_with("-----BEGIN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_takes_whole_and_cut_blocks() {
        let re = regex::Regex::new(PATTERN).expect("valid");
        for (text, taken) in [
            (
                "k -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- tail",
                "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKCAQ",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKCAQ",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNz\\n-----END OPENSSH PRIVATE KEY-----",
                "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNz\\n-----END OPENSSH PRIVATE KEY-----",
            ),
        ] {
            assert_eq!(re.find(text).map(|m| m.as_str()), Some(taken));
        }
        assert!(!re.is_match("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"));
    }
}
