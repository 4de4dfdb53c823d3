// Atelier Studio: garment upload (the Garments page, and the Generate page's "Add garments").
// A static file under the strict CSP (no eval, no inline code); without it the upload form
// posts one file at a time and the page comes back.
// 1. Choose files or drop them on the form: each is posted on its own (as the API takes one
//    image per request) with the session's CSRF token; a file over the limit is refused here
//    before it is sent. The answer is the new garment (a card, or a picker option, checked);
//    a refusal is shown beside the form as its message.
// 2. The file input takes several files at once (without this script: one).
(function () {
  "use strict";

  function message(status, text, isError) {
    var box = document.createElement("div");
    box.className = isError ? "message error" : "message";
    if (isError) { box.setAttribute("role", "alert"); }
    box.textContent = text;
    status.appendChild(box);
  }

  function errorText(response, body) {
    var type = response.headers.get("content-type") || "";
    if (type.indexOf("application/json") === 0) {  // the HTTP edge answered (e.g. the body is too large)
      try {
        var parsed = JSON.parse(body);
        if (parsed && parsed.error) { return parsed.error.message + " (" + parsed.error.code + ")"; }
      } catch (ignored) { /* not JSON after all */ }
    }
    var doc = new DOMParser().parseFromString(body, "text/html");
    var alert = doc.querySelector("[role=alert]");
    return alert ? alert.textContent.trim().replace(/\s+/g, " ") : "The upload failed (HTTP " + response.status + ").";
  }

  function uploader(form) {
    var input = form.querySelector("input[type=file]");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");
    var limit = parseInt(form.dataset.maxBytes || "0", 10);
    var target = document.getElementById(form.dataset.target);
    var view = form.querySelector("input[name=view]").value;
    input.multiple = true;

    function placed(html) {
      var holder = document.createElement("template");
      holder.innerHTML = html.trim();
      var node = holder.content.firstElementChild;
      if (!node || !target) { return; }
      var old = document.getElementById(node.id) ||
        target.querySelector("[data-asset='" + node.dataset.asset + "']");
      if (old) { old.remove(); }
      if (view === "picker") {
        var none = target.querySelector("li.none");
        target.insertBefore(node, none ? none.nextSibling : target.firstChild);
        var radio = node.querySelector("input[type=radio]");
        if (radio) { radio.checked = true; }
        var hint = document.getElementById("no-garments");
        if (hint) { hint.hidden = true; }
      } else {
        target.insertBefore(node, target.firstChild);
        var empty = document.getElementById("no-garments");
        if (empty) { empty.hidden = true; }
        var count = document.getElementById("garment-count");
        if (count) { count.textContent = "(" + target.children.length + ")"; }
        if (window.htmx) { window.htmx.process(node); }
      }
    }

    function send(file) {
      if (limit && file.size > limit) {
        message(status, file.name + ": " + file.size + " bytes; the limit is " + limit + " bytes.", true);
        return Promise.resolve();
      }
      var body = new FormData(form);
      body.set("file", file, file.name);
      return fetch(form.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRF-Token": body.get("csrf_token"), "HX-Request": "true"}
      }).then(function (response) {
        var redirect = response.headers.get("HX-Redirect");
        if (redirect) { window.location.assign(redirect); return; }
        return response.text().then(function (text) {
          if (response.ok) {
            placed(text);
            message(status, file.name + ": added.", false);
          } else {
            message(status, file.name + ": " + errorText(response, text), true);
          }
        });
      }).catch(function () {
        message(status, file.name + ": the connection to Atelier was lost.", true);
      });
    }

    function sendAll(files) {
      status.replaceChildren();
      var list = Array.prototype.slice.call(files || []);
      if (!list.length) {
        message(status, "Choose a garment image (PNG, JPEG or WebP) to upload.", true);
        return;
      }
      button.disabled = true;
      list.reduce(function (chain, file) {
        return chain.then(function () { return send(file); });
      }, Promise.resolve()).finally(function () {
        button.disabled = false;
        input.value = "";
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      sendAll(input.files);
    });
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) { event.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function () { form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) { sendAll(event.dataTransfer.files); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-garment-upload]").forEach(uploader);
  });
})();
