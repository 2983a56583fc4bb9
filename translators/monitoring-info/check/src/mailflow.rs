//! `mailflow`: CRITICAL when a token of the id was sent more than `--seconds` ago and no
//! mailbox check has consumed it: mail from the smtp check has not arrived.
//!
//! Decision on a missing store: UNKNOWN, not OK. A store directory that does not exist
//! (or exists without a directory for the id) means that no smtp check has ever recorded
//! a token there for this id: a wrong `--store` or `--id`, or an smtp check that never
//! ran. "No tokens pending" would then be a false OK hiding a check that cannot work, so
//! the output says "no mailflow store at DIR: has the smtp check ever sent a token?". Once
//! the smtp check has recorded one token, the id's directory stays (it is never removed),
//! and an empty one is OK.

use crate::cli::MailflowArgs;
use crate::nagios::{Check, Outcome};
use crate::store::{self, Store};

/// Run the check.
pub fn run(a: &MailflowArgs) -> Check {
    let s = Store::new(&a.store);
    let dir = s.root().display();
    let unknown = |e: store::StoreError| Outcome::unknown(format!("mail flow store: {e}"));
    if !s.exists() {
        return Err(Outcome::unknown(format!(
            "no mailflow store at {dir}: has the smtp check ever sent a token?"
        )));
    }
    if !s.has_id(&a.id).map_err(unknown)? {
        return Err(Outcome::unknown(format!(
            "no mail flow token was ever recorded for {:?} in {dir}: has the smtp check for it (--mailflow-id, or --to) ever sent one?",
            a.id
        )));
    }
    let pending = s.pending(&a.id).map_err(unknown)?;
    let now = store::now_secs();
    let age = |p: &store::Pending| now.saturating_sub(p.sent);
    let late: Vec<&store::Pending> = pending.iter().filter(|p| age(p) > a.seconds).collect();
    let oldest = pending.iter().map(age).max();
    let perf = format!(
        "pending={} late={} oldest={}s;;{}",
        pending.len(),
        late.len(),
        oldest.unwrap_or(0),
        a.seconds
    );
    let plural = |n: usize| if n == 1 { "token" } else { "tokens" };
    if !late.is_empty() {
        return Ok(Outcome::critical(format!(
            "{} of {} mail flow {} for {:?} sent more than {} s ago and not yet received (the oldest {} s ago)",
            late.len(),
            pending.len(),
            plural(pending.len()),
            a.id,
            a.seconds,
            oldest.unwrap_or(0)
        ))
        .perf(perf));
    }
    let msg = match oldest {
        None => format!("no mail flow tokens pending for {:?}", a.id),
        Some(o) => format!(
            "{} mail flow {} pending for {:?}, none older than {} s (the oldest {o} s)",
            pending.len(),
            plural(pending.len()),
            a.id,
            a.seconds
        ),
    };
    Ok(Outcome::ok(msg).perf(perf))
}
