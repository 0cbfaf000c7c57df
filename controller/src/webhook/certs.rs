//! The webhook's certificate, managed by the controller itself (MetalLB's does the same with
//! cert-controller): a CA and a serving certificate for the webhook Service, kept in a Secret
//! so every replica and restart serves the same one, renewed a month before it expires. With
//! `--disable-cert-rotation`, `--cert-dir` holds a certificate someone else manages.
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::collections::BTreeMap;

/// How long a serving certificate lasts, and how early it is renewed.
const SERVING_DAYS: i64 = 365;
const CA_DAYS: i64 = 3650;
const RENEW_BEFORE_DAYS: i64 = 30;
const DAY: i64 = 86_400;

/// The Secret's keys (cert-manager's and MetalLB's names) and the annotation with the
/// serving certificate's end, read to know when to renew.
pub const CA_KEY: &str = "ca.crt";
pub const CERT_KEY: &str = "tls.crt";
pub const PRIVATE_KEY: &str = "tls.key";
pub const NOT_AFTER_ANNOTATION: &str = "ferrolb.io/not-after";

/// A CA and the serving certificate it signed, in PEM, with the certificate's end (Unix s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: i64,
}

impl Bundle {
    /// A new CA and serving certificate for `service` in `namespace`, valid from an hour
    /// before `now` (clocks differ).
    pub fn issue(service: &str, namespace: &str, now: i64) -> Result<Bundle, rcgen::Error> {
        let at = |unix: i64| {
            time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "ferrolb-webhook-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = at(now - 3600);
        ca.not_after = at(now + CA_DAYS * DAY);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let names: Vec<String> = vec![
            service.to_string(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ];
        let mut serving = CertificateParams::new(names)?;
        serving
            .distinguished_name
            .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let not_after = now + SERVING_DAYS * DAY;
        serving.not_before = at(now - 3600);
        serving.not_after = at(not_after);
        let key = KeyPair::generate()?;
        let cert = serving.signed_by(&key, &ca)?;
        Ok(Bundle {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after,
        })
    }

    /// Whether it must be replaced at `now`: less than a month left.
    pub fn due(&self, now: i64) -> bool {
        self.not_after - now < RENEW_BEFORE_DAYS * DAY
    }

    /// The Secret's `stringData` and annotations.
    pub fn to_secret_data(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let data = [
            (CA_KEY, &self.ca_pem),
            (CERT_KEY, &self.cert_pem),
            (PRIVATE_KEY, &self.key_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let annotations = [(NOT_AFTER_ANNOTATION.to_string(), self.not_after.to_string())]
            .into_iter()
            .collect();
        (data, annotations)
    }

    /// The bundle a Secret holds (decoded `data` and its annotations), if it is whole.
    pub fn from_secret_data(
        data: &BTreeMap<String, Vec<u8>>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Bundle> {
        let text = |key: &str| String::from_utf8(data.get(key)?.clone()).ok();
        Some(Bundle {
            ca_pem: text(CA_KEY)?,
            cert_pem: text(CERT_KEY)?,
            key_pem: text(PRIVATE_KEY)?,
            not_after: annotations.get(NOT_AFTER_ANNOTATION)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn issues_a_ca_and_a_certificate_for_the_service_names() {
        let bundle = Bundle::issue("metallb-webhook-service", "metallb-system", NOW).unwrap();
        assert!(bundle.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(bundle.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(bundle.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(bundle.ca_pem, bundle.cert_pem);
        assert_eq!(bundle.not_after, NOW + 365 * DAY);
        assert!(!bundle.due(NOW));
        assert!(!bundle.due(NOW + 334 * DAY));
        assert!(bundle.due(NOW + 336 * DAY));
    }

    #[test]
    fn survives_a_round_trip_through_a_secret() {
        let bundle = Bundle::issue("svc", "ns", NOW).unwrap();
        let (data, annotations) = bundle.to_secret_data();
        let bytes = data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        assert_eq!(Bundle::from_secret_data(&bytes, &annotations), Some(bundle));
        assert_eq!(Bundle::from_secret_data(&bytes, &BTreeMap::new()), None);
    }
}
