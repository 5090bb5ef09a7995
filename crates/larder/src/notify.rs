//! Telling systemd how `larder serve` is doing (`Type=notify` units):
//! ready once it accepts connections, reloading during a SIGHUP reload,
//! stopping once it has been asked to stop. Nothing is sent when
//! `NOTIFY_SOCKET` is not set; a failure to send is logged, never fatal.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// Listening on `address`, and serving.
pub fn ready(address: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&format!("serving on {address}"))]);
}

/// A configuration reload begins ([`reloaded`] follows).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    // systemd wants the time of the reload with RELOADING=1.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// The reload is over (applied or not): serving as before.
pub fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// Asked to stop: open requests are being finished.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing open requests")]);
}
