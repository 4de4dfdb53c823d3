// Atelier Studio's Licences page: the person signs their decision in this browser.
// A static file under the strict CSP (no eval, no inline code), loaded by licences.html only.
//
// The signing key is an Ed25519 key pair made here with WebCrypto. Its private half is made
// non-extractable and kept in this origin's IndexedDB (a CryptoKey object: no script, this one
// included, can read its bytes), so it never leaves the browser. The server gets only:
//   - the public half, once, to register it (POST <data-register-url>, `public_key`: base64 of
//     the raw 32 bytes), and
//   - each decision's signature (POST <data-decide-url>, `licence_id`, `decision`, `signature`:
//     base64 of the 64-byte Ed25519 signature over the exact bytes
//     `atelier.licence/1|<accept or decline>|<role>|<sha256 of the licence terms>`).
// Both posts carry the session's CSRF token as X-CSRF-Token and `HX-Request: true`, so Studio
// answers a fragment (the licence's card) or an error fragment, never a whole page.
// If this browser has no key but another one is registered (another browser, or storage
// cleared), the page says so and offers to register this browser's key, replacing the other:
// licences already decided keep the key they were signed with.
(function () {
  "use strict";

  var DB_NAME = "atelier-studio-signing";
  var STORE = "keys";
  var SCHEMA = "atelier.licence/1";

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function stored(id) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var get = db.transaction(STORE, "readonly").objectStore(STORE).get(id);
        get.onsuccess = function () { resolve(get.result || null); };
        get.onerror = function () { reject(get.error); };
      });
    });
  }

  function keep(id, record) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, "readwrite");
        tx.objectStore(STORE).put(record, id);
        tx.oncomplete = function () { resolve(record); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function base64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text);
  }

  function newKey(id) {
    // extractable=false: the private key's bytes can never be exported (the public one always can).
    return crypto.subtle.generateKey({name: "Ed25519"}, false, ["sign", "verify"]).then(function (pair) {
      return crypto.subtle.exportKey("raw", pair.publicKey).then(function (raw) {
        return keep(id, {privateKey: pair.privateKey, publicKey: base64(raw), created: new Date().toISOString()});
      });
    });
  }

  function alertText(html, status) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var alert = doc.querySelector("[role=alert]");
    return alert ? alert.textContent.trim().replace(/\s+/g, " ") : "The request failed (HTTP " + status + ").";
  }

  function fragment(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    return doc.body.firstElementChild;
  }

  function Signer(panel) {
    this.panel = panel;
    this.role = panel.dataset.role;
    this.id = panel.dataset.person + "/" + this.role;
    this.local = null;
    this.supported = !!(window.isSecureContext && window.crypto && crypto.subtle && window.indexedDB);
  }

  Signer.prototype.post = function (url, fields) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(fields),
      headers: {"X-CSRF-Token": this.panel.dataset.csrf, "HX-Request": "true",
                "Content-Type": "application/x-www-form-urlencoded"}
    }).then(function (response) {
      var redirect = response.headers.get("HX-Redirect");
      if (redirect) { window.location.assign(redirect); throw new Error("Your session ended: sign in again."); }
      return response.text().then(function (html) {
        if (!response.ok) { throw new Error(alertText(html, response.status)); }
        return html;
      });
    });
  };

  Signer.prototype.say = function (text) {
    this.panel.querySelector("[data-field=key-status]").textContent = text;
  };

  Signer.prototype.ready = function () {
    var registered = this.panel.dataset.registered;
    return this.supported && (!registered || (this.local && this.local.publicKey === registered));
  };

  Signer.prototype.render = function () {
    var registered = this.panel.dataset.registered;
    var offer = this.panel.querySelector("#register-key-wrap");
    var state;
    offer.hidden = true;
    if (!this.supported) {
      state = "unsupported";
      this.say("This browser cannot sign here: signing needs a secure (https) page, WebCrypto and IndexedDB. " +
               "You can still revoke licences, or sign with `atelier licence sign`.");
    } else if (!registered) {
      state = "none";
      this.say(this.local ? "This browser holds a signing key; it is registered when you first accept or decline."
                          : "No signing key yet: when you first accept or decline, this browser makes one and " +
                            "registers its public half.");
    } else if (this.local && this.local.publicKey === registered) {
      state = "held";
      this.say("This browser holds your signing key (" + registered.slice(0, 12) + "…). Its private half " +
               "cannot be read, not even by this page, and never leaves this browser.");
    } else {
      state = "elsewhere";
      this.say("Your registered signing key (" + registered.slice(0, 12) + "…) is held by another browser " +
               "(or this browser's storage was cleared), so this browser cannot sign for it. Register this " +
               "browser's key to sign here: it replaces the other one; licences already decided keep theirs.");
      offer.hidden = false;
    }
    this.panel.dataset.state = state;  // none | held | elsewhere | unsupported
    var ready = this.ready();
    document.querySelectorAll("button[data-sign]").forEach(function (b) { b.disabled = !ready; });
  };

  Signer.prototype.register = function () {
    var self = this;
    var make = self.local ? Promise.resolve(self.local) : newKey(self.id);
    return make.then(function (record) {
      self.local = record;
      return self.post(self.panel.dataset.registerUrl, {public_key: record.publicKey}).then(function (html) {
        var fresh = fragment(html);
        if (!fresh || fresh.dataset.registered !== record.publicKey) { throw new Error("The key was not registered."); }
        self.panel.dataset.registered = record.publicKey;
        return record;
      });
    });
  };

  Signer.prototype.key = function () {
    // First use: make and register a key. A key of another browser is never replaced silently.
    if (!this.panel.dataset.registered) { return this.register(); }
    if (this.local && this.local.publicKey === this.panel.dataset.registered) { return Promise.resolve(this.local); }
    return Promise.reject(new Error("Register this browser's key first (above)."));
  };

  Signer.prototype.decide = function (button) {
    var self = this;
    var card = button.closest("[data-licence]");
    var status = card.querySelector("[data-field=sign-status]");
    var decision = button.value;
    var message = SCHEMA + "|" + decision + "|" + self.role + "|" + card.dataset.sha256;
    card.querySelectorAll("button[data-sign]").forEach(function (b) { b.disabled = true; });
    status.textContent = "Signing…";
    self.key().then(function (record) {
      return crypto.subtle.sign({name: "Ed25519"}, record.privateKey, new TextEncoder().encode(message));
    }).then(function (signature) {
      status.textContent = "Sending your signature…";
      return self.post(self.panel.dataset.decideUrl,
                       {licence_id: card.dataset.licence, decision: decision, signature: base64(signature)});
    }).then(function (html) {
      var fresh = fragment(html);
      card.replaceWith(fresh);
      var focus = fresh.querySelector("h3");
      if (focus) { focus.tabIndex = -1; focus.focus(); }
      self.render();
    }).catch(function (error) {
      var box = document.createElement("div");
      box.className = "message error";
      box.setAttribute("role", "alert");
      box.textContent = (error && error.message) || "Signing failed.";
      status.replaceChildren(box);
      self.render();
    });
  };

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("signing-key");
    if (!panel) { return; }
    var signer = new Signer(panel);
    var start = signer.supported ? stored(signer.id).catch(function () { return null; }) : Promise.resolve(null);
    start.then(function (record) { signer.local = record; signer.render(); });
    panel.querySelector("#register-key").addEventListener("click", function (event) {
      event.target.disabled = true;
      signer.register().then(function () { signer.render(); }, function (error) {
        signer.say((error && error.message) || "The key could not be registered.");
      }).finally(function () { event.target.disabled = false; });
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("button[data-sign]");
      if (button && !button.disabled) { signer.decide(button); }
    });
  });
})();
