//! Certificates made on the spot with rcgen: the CA and server certificate of
//! `serve --tls` when no `--cert/--key` is given, and the test suite's CAs, server and
//! client certificates. Keys are ECDSA P-256 (rcgen's default), valid from 1975 to
//! 4096 (rcgen's default too), so a test never meets an expired certificate.

use std::io;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names a generated server certificate is valid for: what a client on this
/// machine may dial.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate authority that exists only in memory, to sign server and client
/// certificates.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate with its private key, in PEM (for files and other programs) and DER
/// (for rustls).
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// Its private key, DER.
    pub key_der: PrivateKeyDer<'static>,
}

impl Authority {
    /// A new self-signed CA whose subject is `common_name`.
    pub fn new(common_name: &str) -> io::Result<Authority> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(cert_error)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(cert_error)?;
        Ok(Authority { issuer })
    }

    /// The CA certificate, PEM: what a client passes as `--cacert`.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses), signed by
    /// this CA.
    pub fn issue_server(&self, names: &[&str]) -> io::Result<Issued> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(cert_error)?;
        params.distinguished_name.push(DnType::CommonName, "loadmux server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate (for servers that require one) named `common_name`,
    /// signed by this CA.
    pub fn issue_client(&self, common_name: &str) -> io::Result<Issued> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> io::Result<Issued> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(cert_error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(cert_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

fn cert_error(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("cannot generate a certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_are_pem_and_signed_by_a_ca() {
        let ca = Authority::new("test CA").unwrap();
        let server = ca.issue_server(&LOCAL_NAMES).unwrap();
        let client = ca.issue_client("test client").unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        for issued in [&server, &client] {
            assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        // The chain is checked end to end by the TLS tests (rustls, openssl, curl).
        assert_ne!(server.cert_der, client.cert_der);
    }
}
