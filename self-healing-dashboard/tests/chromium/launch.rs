//! Finding and starting Debian's headless Chromium with a fresh profile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Chromium is looked for, unless `SELF_HEALING_CHROMIUM` names it.
const CANDIDATES: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// The Chromium binary, if there is one.
pub(crate) fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SELF_HEALING_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A running browser; killed when dropped.
pub(crate) struct Browser {
    child: Child,
    /// The browser's DevTools WebSocket URL.
    pub(crate) ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn start(binary: &Path) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut browser = Browser {
            child,
            ws_url: String::new(),
            _profile: profile,
        };
        // Chromium writes its port and browser path here once DevTools listens.
        let port_file = browser._profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    browser.ws_url = format!("ws://127.0.0.1:{port}{path}");
                    return Ok(browser);
                }
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!("Chromium exited at startup with {status}"));
            }
            if Instant::now() > deadline {
                return Err("Chromium did not open its DevTools port within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
