//! Commands run only where people see them; text from a change never becomes markup.
