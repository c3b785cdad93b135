//! Slash commands from change comments become the lane's input; the lane decides who may run
//! which (see `lane::step`).

use crate::lane::command::{self, Command};
use crate::lane::event::{self, CommentAction};
use crate::lane::step::Input;

/// The commands of a new comment, or `None` when it runs none. Edited and deleted comments
/// never run commands: an edit could turn someone else's harmless comment into one.
pub(super) fn input(action: CommentAction, comment: &event::Comment) -> Option<Input> {
    if action != CommentAction::Created {
        return None;
    }
    let commands: Vec<Command> = command::parse(&comment.body).into_iter().filter_map(Result::ok).collect();
    (!commands.is_empty()).then(|| Input::Commands {
        comment_id: comment.id,
        actor: comment.author.login.clone(),
        commands,
    })
}
