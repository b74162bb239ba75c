//! Certificates made in the test: a certificate authority the worker can be
//! told to trust (`SMTP_CA_FILE`), and the server certificates it issues
//! for the tests' SMTP server (127.0.0.1 and localhost).

use std::io::Write;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate as a PEM file, removed with the CA.
    file: tempfile::NamedTempFile,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let mut file = tempfile::Builder::new()
            .prefix("canopy-test-ca-")
            .suffix(".pem")
            .tempfile()
            .unwrap();
        file.write_all(cert.pem().as_bytes()).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            file,
        }
    }

    /// The path of the CA's certificate, for `SMTP_CA_FILE`.
    pub fn file(&self) -> &str {
        self.file.path().to_str().unwrap()
    }

    /// A TLS server configuration with a certificate this CA issued for
    /// 127.0.0.1 and localhost.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        Arc::new(config)
    }
}
