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
pub const CA_PRIVATE_KEY: &str = "ca.key";
pub const CERT_KEY: &str = "tls.crt";
pub const PRIVATE_KEY: &str = "tls.key";
pub const NOT_AFTER_ANNOTATION: &str = "ferrolb.io/not-after";
pub const CA_NOT_AFTER_ANNOTATION: &str = "ferrolb.io/ca-not-after";

/// The CA's name, the same in every certificate it signs.
const CA_NAME: &str = "ferrolb-webhook-ca";

/// A CA and the serving certificate it signed, in PEM, with their ends (Unix s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub ca_pem: String,
    /// Empty for a certificate someone else manages (`--cert-dir`).
    pub ca_key_pem: String,
    pub ca_not_after: i64,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: i64,
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn ca_params(now: i64) -> Result<CertificateParams, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, CA_NAME);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = at(now - 3600);
    ca.not_after = at(now + CA_DAYS * DAY);
    Ok(ca)
}

/// A serving certificate for `service` in `namespace`, signed by `ca`: (PEM, key PEM, end).
fn serving(
    service: &str,
    namespace: &str,
    now: i64,
    ca: &rcgen::Issuer<'_, impl rcgen::SigningKey>,
) -> Result<(String, String, i64), rcgen::Error> {
    let names: Vec<String> = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let not_after = now + SERVING_DAYS * DAY;
    params.not_before = at(now - 3600);
    params.not_after = at(not_after);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

impl Bundle {
    /// A new CA and serving certificate for `service` in `namespace`, valid from an hour
    /// before `now` (clocks differ).
    pub fn issue(service: &str, namespace: &str, now: i64) -> Result<Bundle, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca_params(now)?, ca_key)?;
        let (cert_pem, key_pem, not_after) = serving(service, namespace, now, &ca)?;
        Ok(Bundle {
            ca_pem: ca.pem(),
            ca_key_pem,
            ca_not_after: now + CA_DAYS * DAY,
            cert_pem,
            key_pem,
            not_after,
        })
    }

    /// A new serving certificate from the same CA, so the webhook configuration's CA stays
    /// good and the API server's cached copy with it; a whole new bundle when the CA itself
    /// is within a year of its end (or cannot be read).
    pub fn renewed(
        &self,
        service: &str,
        namespace: &str,
        now: i64,
    ) -> Result<Bundle, rcgen::Error> {
        let ca_key = match KeyPair::from_pem(&self.ca_key_pem) {
            Ok(key) if self.ca_not_after - now > 365 * DAY => key,
            _ => return Bundle::issue(service, namespace, now),
        };
        // The CA's subject and key are what a signature names; its other fields are not read.
        let issuer = rcgen::Issuer::new(ca_params(now)?, ca_key);
        let (cert_pem, key_pem, not_after) = serving(service, namespace, now, &issuer)?;
        Ok(Bundle {
            cert_pem,
            key_pem,
            not_after,
            ..self.clone()
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
            (CA_PRIVATE_KEY, &self.ca_key_pem),
            (CERT_KEY, &self.cert_pem),
            (PRIVATE_KEY, &self.key_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let annotations = [
            (NOT_AFTER_ANNOTATION, self.not_after),
            (CA_NOT_AFTER_ANNOTATION, self.ca_not_after),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        (data, annotations)
    }

    /// The bundle a Secret holds (decoded `data` and its annotations), if it is whole.
    pub fn from_secret_data(
        data: &BTreeMap<String, Vec<u8>>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Bundle> {
        let text = |key: &str| String::from_utf8(data.get(key)?.clone()).ok();
        let time = |key: &str| annotations.get(key)?.parse().ok();
        Some(Bundle {
            ca_pem: text(CA_KEY)?,
            ca_key_pem: text(CA_PRIVATE_KEY)?,
            ca_not_after: time(CA_NOT_AFTER_ANNOTATION)?,
            cert_pem: text(CERT_KEY)?,
            key_pem: text(PRIVATE_KEY)?,
            not_after: time(NOT_AFTER_ANNOTATION)?,
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

    /// Renewal keeps the CA, so the API server's copy of it stays good.
    #[test]
    fn a_renewed_certificate_keeps_its_ca() {
        let bundle = Bundle::issue("svc", "ns", NOW).unwrap();
        let later = NOW + 340 * DAY;
        let renewed = bundle.renewed("svc", "ns", later).unwrap();
        assert_eq!(renewed.ca_pem, bundle.ca_pem);
        assert_ne!(renewed.cert_pem, bundle.cert_pem);
        assert_eq!(renewed.not_after, later + 365 * DAY);
        // Near the CA's own end, everything is new.
        let late = bundle.ca_not_after - 100 * DAY;
        assert_ne!(
            bundle.renewed("svc", "ns", late).unwrap().ca_pem,
            bundle.ca_pem
        );
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
