// Atelier Studio's own script: a static file under a strict CSP (no eval, no inline code).
// 1. Generate: the form posts with fetch and reads the answer as server-sent events
//    (progress {step, steps}, then result {html} or error {message}); without this script
//    the form posts normally and the page comes back with the image.
// 2. Verify: drop an image on the form; files over the limit are refused before upload.
// 3. After htmx swaps a fragment, focus moves to the element marked data-autofocus.
(function () {
  "use strict";

  function parseEvents(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var event = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { event = line.slice(6).trim(); }
        else if (line.indexOf("data:") === 0) { data.push(line.slice(5).trim()); }
      });
      if (data.length) { onEvent(event, JSON.parse(data.join("\n"))); }
    });
    return rest;
  }

  function showError(status, result, message) {
    status.textContent = "";
    var box = document.createElement("div");
    box.className = "message error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    result.replaceChildren(box);
  }

  function streamGenerate(form) {
    var progress = document.getElementById(form.dataset.progress);
    var wrap = document.getElementById(form.dataset.progress + "-wrap");
    var status = document.getElementById(form.dataset.status);
    var result = document.getElementById(form.dataset.result);
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new FormData(form);
      button.disabled = true;
      wrap.hidden = false;
      progress.value = 0;
      progress.max = 1;
      status.textContent = "Starting…";
      result.replaceChildren();
      var finished = false;
      fetch(form.dataset.stream, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRF-Token": body.get("csrf_token"), "Accept": "text/event-stream"}
      }).then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("text/event-stream") !== 0) {
          return response.text().then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var alert = doc.querySelector("[role=alert]");
            showError(status, result, alert ? alert.textContent.trim().replace(/\s+/g, " ")
                                             : "The request failed (HTTP " + response.status + ").");
            finished = true;
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function onEvent(name, data) {
          if (name === "progress") {
            progress.max = Math.max(1, data.steps);
            progress.value = data.step;
            status.textContent = "Denoising: step " + data.step + " of " + data.steps;
          } else if (name === "result") {
            finished = true;
            progress.value = progress.max;
            status.textContent = "Done: generation " + data.generation_id;
            result.innerHTML = data.html;
          } else if (name === "error") {
            finished = true;
            showError(status, result, data.message + " (" + data.code + ")");
          }
        }
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { return; }
            buffer = parseEvents(buffer + decoder.decode(chunk.value, {stream: true}), onEvent);
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        showError(status, result, "The connection to Atelier was lost before the image arrived.");
        finished = true;
      }).finally(function () {
        if (!finished) { showError(status, result, "The generation ended without a result."); }
        button.disabled = false;
      });
    });
  }

  function dropzone(form) {
    var input = form.querySelector("input[type=file]");
    var limit = parseInt(input.dataset.maxBytes || "0", 10);
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) { event.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function () { form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) { input.files = event.dataTransfer.files; }
    });
    form.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];
      if (file && limit && file.size > limit) {
        event.preventDefault();
        event.stopImmediatePropagation();
        var report = document.getElementById("verify-report");
        var box = document.createElement("div");
        box.className = "message error";
        box.setAttribute("role", "alert");
        box.textContent = "This file is larger than " + limit + " bytes, the most Atelier checks.";
        report.replaceChildren(box);
      }
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-stream]").forEach(streamGenerate);
    document.querySelectorAll("form[data-dropzone]").forEach(dropzone);
  });
  var focusedId = null;
  document.addEventListener("htmx:beforeSwap", function () {
    focusedId = document.activeElement && document.activeElement.id ? document.activeElement.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var next = document.querySelector("[data-autofocus]") || (focusedId && document.getElementById(focusedId));
    if (next) { next.focus(); }
    focusedId = null;
  });
})();
