//! Throwaway keys and certificates for one control plane.
//!
//! We make our own CA rather than let kube-apiserver self-sign (`--cert-dir`): then the
//! clients trust exactly one known certificate from the start, with the loopback address in
//! its SANs, and nothing has to be read back from the apiserver's directory after it starts.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

pub(crate) struct ControlPlanePki {
    /// PEM of the CA that signed the apiserver's serving certificate.
    pub ca_cert_pem: String,
    /// DER of the same CA, for kube::Config::root_cert.
    pub ca_cert_der: Vec<u8>,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// Signs service-account tokens (--service-account-signing-key-file).
    pub service_account_key_pem: String,
    /// Verifies them (--service-account-key-file). A separate public key: the apiserver does
    /// not read a public key out of a PKCS#8 private key file.
    pub service_account_public_key_pem: String,
    /// With a node: what the kubelet and the apiserver show each other.
    pub node: Option<NodePki>,
}

/// The kubelet's serving certificate (for the node IP) and the client certificate the apiserver
/// presents to the kubelet for logs, exec and port-forward (a `system:masters` identity).
pub(crate) struct NodePki {
    pub kubelet_cert_pem: String,
    pub kubelet_key_pem: String,
    pub apiserver_kubelet_client_cert_pem: String,
    pub apiserver_kubelet_client_key_pem: String,
}

/// Extra names in the apiserver's serving certificate, and whether a node joins.
pub(crate) struct PkiRequest<'a> {
    pub apiserver_sans: &'a [String],
    pub node: Option<(&'a str, &'a str)>,
}

pub(crate) fn generate(request: &PkiRequest<'_>) -> Result<ControlPlanePki, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "opstack-test-harness CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_issuer = Issuer::new(ca_params, ca_key);

    let serving_key = KeyPair::generate()?;
    // The apiserver is reached as 127.0.0.1 (the clients) and possibly as localhost.
    let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    sans.extend(request.apiserver_sans.iter().cloned());
    let mut serving_params = CertificateParams::new(sans)?;
    serving_params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let serving_cert = serving_params.signed_by(&serving_key, &ca_issuer)?;

    let service_account_key = KeyPair::generate()?;

    let node = match request.node {
        Some((node_name, node_ip)) => {
            let kubelet_key = KeyPair::generate()?;
            let mut kubelet_params =
                CertificateParams::new(vec![node_ip.to_owned(), node_name.to_owned()])?;
            kubelet_params
                .distinguished_name
                .push(DnType::CommonName, format!("system:node:{node_name}"));
            let kubelet_cert = kubelet_params.signed_by(&kubelet_key, &ca_issuer)?;

            let client_key = KeyPair::generate()?;
            let mut client_params = CertificateParams::new(Vec::<String>::new())?;
            client_params
                .distinguished_name
                .push(DnType::CommonName, "kube-apiserver-kubelet-client");
            client_params
                .distinguished_name
                .push(DnType::OrganizationName, "system:masters");
            client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let client_cert = client_params.signed_by(&client_key, &ca_issuer)?;
            Some(NodePki {
                kubelet_cert_pem: kubelet_cert.pem(),
                kubelet_key_pem: kubelet_key.serialize_pem(),
                apiserver_kubelet_client_cert_pem: client_cert.pem(),
                apiserver_kubelet_client_key_pem: client_key.serialize_pem(),
            })
        }
        None => None,
    };

    Ok(ControlPlanePki {
        ca_cert_pem: ca_cert.pem(),
        ca_cert_der: ca_cert.der().to_vec(),
        serving_cert_pem: serving_cert.pem(),
        serving_key_pem: serving_key.serialize_pem(),
        service_account_key_pem: service_account_key.serialize_pem(),
        service_account_public_key_pem: service_account_key.public_key_pem(),
        node,
    })
}
