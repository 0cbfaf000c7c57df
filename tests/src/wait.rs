use std::time::{Duration, Instant};

/// Polls `check` every `every` until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    #[allow(clippy::disallowed_methods)] // the lab measures real time
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        #[allow(clippy::disallowed_methods)]
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
