//! Email over SMTP (lettre): a text part and an HTML part built from it, the
//! intent id as Message-ID (so a resend after an unknown outcome carries the
//! same id and receivers can drop the duplicate), STARTTLS or implicit TLS
//! per the URL (`smtp://host:port?tls=required`, `smtps://…`).

use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};

use super::{Outbound, ProviderError, Receipt, Sender};
use crate::render::escape_markup;

/// Sends email through one SMTP relay.
pub struct Smtp {
    transport: SmtpTransport,
    from: Mailbox,
    domain: String,
}

impl Smtp {
    /// Connects lazily to `url`, sending as `from`.
    pub fn new(url: &str, from: &str, timeout: std::time::Duration) -> Result<Self, String> {
        let transport = SmtpTransport::from_url(url)
            .map_err(|e| format!("email.smtp_url: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("email.from {from:?}: {e}"))?;
        let domain = from.email.domain().to_string();
        Ok(Self {
            transport,
            from,
            domain,
        })
    }
}

/// The HTML part: the text's paragraphs, escaped, in the message's language
/// and direction.
pub fn html_body(msg: &Outbound) -> String {
    let paras: String = msg
        .email_text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape_markup(p.trim()).replace('\n', "<br>")))
        .collect();
    format!(
        "<!doctype html><html lang=\"{}\" dir=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>{paras}</body></html>",
        escape_markup(&msg.lang),
        if msg.rtl { "rtl" } else { "ltr" },
        escape_markup(&msg.subject)
    )
}

impl Sender for Smtp {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        let to: Mailbox = msg.to.parse().map_err(|_| ProviderError::Permanent {
            reason: "not an email address".into(),
            code: None,
        })?;
        let message_id = format!("<{}@{}>", msg.intent_id, self.domain);
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                msg.email_text.clone(),
                html_body(msg),
            ))
            .map_err(|_| ProviderError::Permanent {
                reason: "message could not be built".into(),
                code: None,
            })?;
        match self.transport.send(&email) {
            Ok(_) => Ok(Receipt {
                provider_ref: message_id,
            }),
            Err(e) if e.is_permanent() => Err(ProviderError::Permanent {
                reason: format!(
                    "SMTP {}",
                    e.status().map(|c| c.to_string()).unwrap_or_default()
                ),
                code: e.status().map(|c| c.to_string()),
            }),
            Err(_) => Err(ProviderError::transient("SMTP unavailable")),
        }
    }
}
