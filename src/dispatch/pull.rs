//! The reconcile job: a change read again from the forge, evaluated as if it had just been
//! edited — for what webhooks missed while nobody was listening.

use super::{Dispatch, StepError};
use crate::forge::{Forge, Forges};
use crate::lane::job::Subject;
use crate::lane::step::{Answer, Input, Need, Observed};
use crate::store::Write;

pub(super) async fn reconcile<P: Forges>(
    d: &Dispatch<P>,
    forge: &P::Client,
    subject: &Subject,
) -> Result<Vec<Write>, StepError> {
    let Some(change) = forge.pull(&subject.repo.full_name, subject.number).await? else { return Ok(vec![]) };
    // The read is fresh: a merge decided on this input needs no second one.
    let mut seen = Observed::default();
    seen.record(Need::Change, Answer::Change(Some(change.clone())));
    let input = Input::Swept { change: Box::new(change) };
    d.decide(forge, subject, input, seen).await
}
