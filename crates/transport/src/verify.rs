//! Certificate verifiers that trust keys, not certificate authorities.

use std::sync::Mutex;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use crate::{der, fingerprint};

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Accepts any client key in the handshake; the master decides afterwards, from `pki_dir`,
/// whether that key belongs to the minion id it claims. rustls still verifies that the client
/// signed the handshake with the private key of the certificate it sent.
#[derive(Debug)]
pub(crate) struct AnyClientKey {
    algs: WebPkiSupportedAlgorithms,
}

impl AnyClientKey {
    pub(crate) fn new() -> Self {
        AnyClientKey { algs: algorithms() }
    }
}

impl ClientCertVerifier for AnyClientKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        der::subject_public_key_info(end_entity.as_ref())
            .map(|_| ClientCertVerified::assertion())
            .ok_or_else(|| Error::General("client certificate carries no readable public key".into()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not accepted".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// How a minion decides whether the master it reached is *its* master.
///
/// - a key cached from an earlier contact (`pki_dir/minion_master.pub`) must match exactly;
/// - otherwise, with `master_finger` set, the key's fingerprint must equal it;
/// - otherwise the first key seen is trusted (and the caller caches it).
#[derive(Debug)]
pub struct MasterPin {
    cached: Option<Vec<u8>>,
    finger: Option<String>,
    seen: Mutex<Option<Vec<u8>>>,
    algs: WebPkiSupportedAlgorithms,
}

impl MasterPin {
    pub fn new(cached_public_der: Option<Vec<u8>>, master_finger: Option<String>) -> Self {
        let finger = master_finger.map(|f| f.trim().to_ascii_lowercase()).filter(|f| !f.is_empty());
        MasterPin { cached: cached_public_der, finger, seen: Mutex::new(None), algs: algorithms() }
    }

    /// The key the master presented in the most recent accepted handshake.
    pub fn seen_key(&self) -> Option<Vec<u8>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn check(&self, key: &[u8]) -> Result<(), String> {
        if let Some(cached) = &self.cached {
            if cached != key {
                return Err(format!(
                    "the master's key (fingerprint {}) differs from the cached master key (fingerprint {}); \
                     if the master key was changed on purpose, delete minion_master.pub in the minion's pki_dir",
                    fingerprint(key),
                    fingerprint(cached)
                ));
            }
        } else if let Some(finger) = &self.finger {
            let actual = fingerprint(key);
            if &actual != finger {
                return Err(format!("the master's key fingerprint {actual} does not match master_finger {finger}"));
            }
        }
        Ok(())
    }
}

impl ServerCertVerifier for MasterPin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let key = der::subject_public_key_info(end_entity.as_ref())
            .ok_or_else(|| Error::General("master certificate carries no readable public key".into()))?;
        self.check(key).map_err(Error::General)?;
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not accepted".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
