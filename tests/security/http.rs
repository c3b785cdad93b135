//! Small doors: bounded before authenticated, timeouts, secrets and the admin API.
