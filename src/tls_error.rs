//! Why a TLS handshake failed, in words an on-call engineer can act on, and whether trying
//! again could help. reqwest reports every handshake failure as "could not connect"; the cause
//! is a `rustls::Error` somewhere in its source chain. Only the category is shown: never a
//! certificate's bytes or the names in it.

use rustls::{AlertDescription, CertificateError, Error as TlsError};

/// A handshake failure's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cause {
    pub(crate) text: &'static str,
    /// A retry meets the same certificate or the same configuration: it cannot succeed.
    pub(crate) permanent: bool,
}

/// The cause of the TLS failure in `error`'s source chain, if there is one.
pub(crate) fn cause(error: &(dyn std::error::Error + 'static)) -> Option<Cause> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return Some(describe(tls));
        }
        // `io::Error` hides a custom error from `source()` (and may wrap another `io::Error`):
        // it is reached with `get_ref`.
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => e.source(),
        };
    }
    None
}

fn describe(error: &TlsError) -> Cause {
    let permanent = |text| Cause {
        text,
        permanent: true,
    };
    match error {
        TlsError::InvalidCertificate(certificate) => permanent(match certificate {
            CertificateError::UnknownIssuer => {
                "TLS: the server's certificate is not trusted (unknown issuer)"
            }
            CertificateError::BadSignature => {
                "TLS: the server's certificate is not trusted (bad signature)"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS: the server's certificate is not valid for this host name"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS: the server's certificate has expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS: the server's certificate is not valid yet"
            }
            CertificateError::Revoked => "TLS: the server's certificate is revoked",
            _ => "TLS: the server's certificate was refused",
        }),
        TlsError::PeerIncompatible(_)
        | TlsError::AlertReceived(AlertDescription::ProtocolVersion) => {
            permanent("TLS: no protocol version or cipher suite in common with the server")
        }
        TlsError::AlertReceived(AlertDescription::CertificateRequired) => {
            permanent("TLS: the server requires a client certificate")
        }
        TlsError::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied,
        ) => permanent("TLS: the server refused the client certificate"),
        TlsError::AlertReceived(AlertDescription::HandshakeFailure) => {
            permanent("TLS: the server refused the handshake")
        }
        TlsError::NoCertificatesPresented => permanent("TLS: the server presented no certificate"),
        _ => Cause {
            text: "TLS: the handshake failed",
            permanent: false,
        },
    }
}
