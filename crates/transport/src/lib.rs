//! TLS 1.3 between minions and the master, authenticated by the same Ed25519 keys `salt-key`
//! manages — no certificate authority involved.
//!
//! Each side presents a self-signed certificate made from its key pair. What is trusted is the
//! *key* inside it:
//! - the master accepts any client key during the handshake (rustls still checks that the peer
//!   holds the private key) and then looks the key up in `pki_dir` ([`peer_public_key`]);
//! - the minion pins the master's key: the one cached from first contact, or the one whose
//!   fingerprint is `master_finger` ([`MasterPin`]).

mod backoff;
mod der;
mod verify;

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use thiserror::Error;

pub use backoff::Backoff;
pub use tokio_rustls::{client::TlsStream as ClientTlsStream, server::TlsStream as ServerTlsStream, TlsAcceptor, TlsConnector};
pub use verify::MasterPin;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot make a certificate from the key pair: {0}")]
    Certificate(String),
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for our key, so rustls can carry the key in the handshake.
fn self_signed(pkcs8_der: &[u8], name: &str) -> Result<CertificateDer<'static>, TransportError> {
    let key = rcgen::KeyPair::try_from(pkcs8_der).map_err(|e| TransportError::Certificate(e.to_string()))?;
    let params = rcgen::CertificateParams::new(vec![sanitize_dns_name(name)]).map_err(|e| TransportError::Certificate(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| TransportError::Certificate(e.to_string()))?;
    Ok(cert.der().clone())
}

/// Names in the certificate carry no trust; they only need to be syntactically valid.
fn sanitize_dns_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
    if cleaned.is_empty() {
        "salt".into()
    } else {
        cleaned
    }
}

fn private_key(pkcs8_der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_der.to_vec()))
}

/// The master's TLS acceptor: TLS 1.3 only, a client certificate required.
pub fn master_acceptor(master_pkcs8_der: &[u8]) -> Result<TlsAcceptor, TransportError> {
    let cert = self_signed(master_pkcs8_der, "salt-master")?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verify::AnyClientKey::new()))
        .with_single_cert(vec![cert], private_key(master_pkcs8_der))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A minion's TLS connector, presenting its key and checking the master's against `pin`.
pub fn minion_connector(minion_pkcs8_der: &[u8], minion_id: &str, pin: Arc<MasterPin>) -> Result<TlsConnector, TransportError> {
    let cert = self_signed(minion_pkcs8_der, minion_id)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(pin)
        .with_client_auth_cert(vec![cert], private_key(minion_pkcs8_der))?;
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The server name a minion sends; trust comes from the pinned key, not from this name.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("salt-master").expect("static name is valid")
}

/// The DER SubjectPublicKeyInfo of the key the peer proved it holds during the handshake.
pub fn peer_public_key(certs: Option<&[CertificateDer<'_>]>) -> Option<Vec<u8>> {
    let cert = certs?.first()?;
    der::subject_public_key_info(cert.as_ref()).map(<[u8]>::to_vec)
}

/// Salt's key fingerprint, as `salt-key -f` prints it and `master_finger` expects.
pub fn fingerprint(public_der: &[u8]) -> String {
    salt_pki::fingerprint_der(public_der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn keypair() -> (Vec<u8>, Vec<u8>) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        {
            use rcgen::PublicKeyData;
            (kp.serialize_der(), kp.subject_public_key_info())
        }
    }

    async fn handshake(master: &[u8], minion: &[u8], pin: Arc<MasterPin>) -> Result<Vec<u8>, String> {
        let acceptor = master_acceptor(master).unwrap();
        let connector = minion_connector(minion, "m1", pin).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let key = peer_public_key(tls.get_ref().1.peer_certificates()).unwrap();
            tls.write_all(b"hi").await.unwrap();
            Ok::<_, String>(key)
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect(server_name(), tcp).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        server.await.unwrap()
    }

    #[tokio::test]
    async fn master_sees_the_minion_key_and_minion_pins_the_master() {
        let (master, master_pub) = keypair();
        let (minion, minion_pub) = keypair();
        let pin = Arc::new(MasterPin::new(None, None));
        assert_eq!(handshake(&master, &minion, pin.clone()).await.unwrap(), minion_pub);
        assert_eq!(pin.seen_key().unwrap(), master_pub);

        // The right fingerprint passes, a wrong one or another cached key fails.
        let good = Arc::new(MasterPin::new(None, Some(fingerprint(&master_pub))));
        assert!(handshake(&master, &minion, good).await.is_ok());
        // Each refusal is for the reason the pin gives, not any handshake error.
        let bad = Arc::new(MasterPin::new(None, Some("00:11".into())));
        let err = handshake(&master, &minion, bad).await.unwrap_err();
        assert!(err.contains("does not match master_finger 00:11"), "{err}");
        let (_, other_pub) = keypair();
        let wrong_cache = Arc::new(MasterPin::new(Some(other_pub), None));
        let err = handshake(&master, &minion, wrong_cache).await.unwrap_err();
        assert!(err.contains("differs from the cached master key"), "{err}");
    }
}
