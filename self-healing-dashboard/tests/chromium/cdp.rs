//! A DevTools-protocol session on one page of a headless Chromium, over [`WebSocket`].

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ws::WebSocket;

pub(crate) struct Page {
    ws: WebSocket,
    session: String,
    next_id: u64,
    /// Protocol events received so far (console messages, exceptions, dialogs).
    pub(crate) events: Vec<Value>,
}

impl Page {
    /// Opens a new page through the browser's DevTools endpoint.
    pub(crate) fn open(browser_ws: &str) -> Result<Page, String> {
        let ws = WebSocket::connect(browser_ws).map_err(|e| format!("DevTools: {e}"))?;
        ws.set_timeout(Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        let mut page = Page {
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = page.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = page.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        page.session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({}))?;
        }
        Ok(page)
    }

    /// Sends a command (to the page once attached) and waits for its result.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.ws
            .send_text(&message.to_string())
            .map_err(|e| format!("{method}: {e}"))?;
        loop {
            let text = self.ws.read_text().map_err(|e| format!("{method}: {e}"))?;
            let reply: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if reply["id"] == json!(id) {
                if let Some(error) = reply.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(reply["result"].clone());
            }
            if reply.get("method").is_some() {
                if reply["method"] == "Page.javascriptDialogOpening" {
                    // Record it, then dismiss it so the page does not hang.
                    self.events.push(reply.clone());
                    let session = self.session.clone();
                    self.next_id += 1;
                    let dismiss = json!({
                        "id": self.next_id, "sessionId": session,
                        "method": "Page.handleJavaScriptDialog", "params": { "accept": false },
                    });
                    self.ws
                        .send_text(&dismiss.to_string())
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                self.events.push(reply);
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    pub(crate) fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("`{expression}` threw: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Waits until `expression` is true, or fails after `timeout` naming it.
    pub(crate) fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(expression)? == json!(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for `{expression}`"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Navigates and waits for the load event.
    pub(crate) fn navigate(&mut self, url: &str) -> Result<(), String> {
        self.call("Page.navigate", json!({ "url": url }))?;
        self.wait_for(
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                json!(url)
            ),
            Duration::from_secs(20),
        )
    }

    /// A PNG of the whole page.
    pub(crate) fn screenshot(&mut self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let metrics = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(1400.0),
            size["height"].as_f64().unwrap_or(1800.0),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 },
            }),
        )?;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("no screenshot data")?)
            .map_err(|e| e.to_string())
    }
}
