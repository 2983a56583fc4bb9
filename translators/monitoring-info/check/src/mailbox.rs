//! What the mailbox checks (imap, pop3) do with the messages they find: take the token of
//! each message whose subject is the smtp check's, consume it from the store, and say
//! whether the message is to be deleted.
//!
//! - With `--mailflow-id ID`: a token of ID is consumed and its message deleted; a token
//!   that another id holds is left, message and all, for that id's check; a token no id
//!   holds (never recorded, or consumed already by a concurrent check) is deleted and
//!   ignored.
//! - Without: the token is consumed from whichever id holds it; unknown ones are deleted
//!   and ignored.
//!
//! Tokens are consumed before their messages are deleted: a check killed in between
//! leaves a message with a token no longer in the store, which the next run deletes and
//! ignores. The other order could lose a token whose message was gone, a false alarm.

use crate::nagios::Outcome;
use crate::store::{self, Store};

/// The subject's prefix that the smtp check sends: `monitor-compile mailflow <TOKEN>`.
pub const SUBJECT_MARK: &str = "monitor-compile mailflow";

/// The tokens in `text` (a subject, a header block, an IMAP response): each 32 lowercase
/// hex digits after [`SUBJECT_MARK`] and white space.
pub fn tokens_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(SUBJECT_MARK) {
        rest = &rest[i + SUBJECT_MARK.len()..];
        let after = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        if after.len() == rest.len() {
            continue;
        }
        if let Some(t) = after.get(..32)
            && store::is_token(t)
            && !after[32..].starts_with(|c: char| c.is_ascii_hexdigit())
            && !out.iter().any(|o| o == t)
        {
            out.push(t.to_string());
        }
    }
    out
}

/// What became of the tokens of the messages a check looked at.
#[derive(Debug, Default)]
pub struct Tally {
    /// Tokens this check consumed.
    pub consumed: usize,
    /// The longest time from sending to consuming, in seconds.
    pub max_delay: Option<u64>,
    /// Messages to delete.
    pub deleted: usize,
    /// Messages left for another id's check.
    pub left: usize,
}

/// Decides for each message.
pub struct Consumer<'a> {
    store: &'a Store,
    id: Option<&'a str>,
    now: u64,
    /// The running count.
    pub tally: Tally,
}

impl<'a> Consumer<'a> {
    /// For `--mailflow-id id` (or any id).
    pub fn new(store: &'a Store, id: Option<&'a str>) -> Consumer<'a> {
        Consumer {
            store,
            id,
            now: store::now_secs(),
            tally: Tally::default(),
        }
    }

    /// A message with these tokens (from its subject): consume them; `true` when the
    /// message is to be deleted.
    pub fn message(&mut self, tokens: &[String]) -> Result<bool, Outcome> {
        let fail = |e: store::StoreError| Outcome::unknown(format!("mail flow store: {e}"));
        let mut delete = true;
        for t in tokens {
            let consumed = match self.id {
                Some(id) => match self.store.consume(id, t).map_err(fail)? {
                    Some(sent) => Some(sent),
                    None => {
                        if !self.store.holders(t).map_err(fail)?.is_empty() {
                            delete = false;
                        }
                        None
                    }
                },
                None => {
                    let mut got = None;
                    for holder in self.store.holders(t).map_err(fail)? {
                        if let Some(sent) = self.store.consume(&holder, t).map_err(fail)? {
                            got = Some(sent);
                            break;
                        }
                    }
                    got
                }
            };
            if let Some(sent) = consumed {
                self.tally.consumed += 1;
                let delay = self.now.saturating_sub(sent);
                self.tally.max_delay = Some(self.tally.max_delay.map_or(delay, |m| m.max(delay)));
            }
        }
        if delete {
            self.tally.deleted += 1;
        } else {
            self.tally.left += 1;
        }
        Ok(delete)
    }

    /// The words for the output: `consumed N tokens (…)`.
    pub fn summary(&self) -> String {
        let t = &self.tally;
        let mut s = match t.consumed {
            1 => "consumed 1 mail flow token".to_string(),
            n => format!("consumed {n} mail flow tokens"),
        };
        if let Some(d) = t.max_delay {
            s.push_str(&format!(" (delivered within {d} s)"));
        }
        s.push_str(&format!(
            ", deleted {} message{}",
            t.deleted,
            if t.deleted == 1 { "" } else { "s" }
        ));
        if t.left > 0 {
            s.push_str(&format!(", left {} for other mail flow ids", t.left));
        }
        s
    }

    /// Performance data.
    pub fn perfdata(&self) -> String {
        format!("consumed={} deleted={}", self.tally.consumed, self.tally.deleted)
    }

    /// The OK outcome of a login check that ran from `started`.
    pub fn logged_in(&self, endpoint: &str, user: &str, tls_words: &str, started: std::time::Instant) -> Outcome {
        let secs = started.elapsed().as_secs_f64();
        Outcome::ok(format!(
            "{endpoint}: logged in as {user:?}{tls_words}, {} in {secs:.3} s",
            self.summary()
        ))
        .perf(format!("time={secs:.6}s {}", self.perfdata()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_subjects() {
        let t = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            tokens_in(&format!("Subject: monitor-compile mailflow {t}\r\n")),
            vec![t]
        );
        assert_eq!(tokens_in(&format!("monitor-compile mailflow\r\n {t}")), vec![t]);
        assert!(tokens_in(&format!("monitor-compile mailflow {t}0")).is_empty());
        assert!(tokens_in(&format!("monitor-compile mailflow{t}")).is_empty());
        assert!(tokens_in(&format!("monitor-compile mailflow {}", t.to_uppercase())).is_empty());
        assert!(tokens_in("monitor-compile mailflow short").is_empty());
        assert_eq!(
            tokens_in(&format!("monitor-compile mailflow {t} monitor-compile mailflow {t}")),
            vec![t]
        );
    }

    #[test]
    fn consuming_by_id_leaves_other_ids_messages() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let (mine, theirs, unknown) = (store::new_token(), store::new_token(), store::new_token());
        s.record("me", &mine, store::now_secs()).unwrap();
        s.record("them", &theirs, store::now_secs()).unwrap();
        let mut c = Consumer::new(&s, Some("me"));
        assert!(c.message(std::slice::from_ref(&mine)).unwrap());
        assert!(!c.message(std::slice::from_ref(&theirs)).unwrap());
        assert!(c.message(std::slice::from_ref(&unknown)).unwrap());
        assert!(c.message(&[]).unwrap());
        assert_eq!((c.tally.consumed, c.tally.deleted, c.tally.left), (1, 3, 1));
        let mut any = Consumer::new(&s, None);
        assert!(any.message(std::slice::from_ref(&theirs)).unwrap());
        assert_eq!(any.tally.consumed, 1);
        assert!(s.pending("them").unwrap().is_empty());
    }
}
