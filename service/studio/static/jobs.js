// Atelier Studio's Jobs pages: a static file under the strict CSP (no eval, no inline code),
// loaded by job_new.html, job.html and job_item.html only. Every page works without it (the
// builder's buttons post and the page comes back; an image's link opens its own page).
//
// 1. The job builder (form#builder): rows are added and removed here without a round trip
//    (a row is a copy of <template id="row-template">, then every row is numbered again: ids,
//    labels, the remove buttons' values); Enter in a cell never submits the whole job; a CSV
//    over the limit is refused before it is uploaded.
// 2. Review at a glance (section#job-items): an image opens in the lightbox (<dialog>): the
//    item's own view (GET /studio/jobs/<job>/items/<n> with `HX-Request`: the image beside its
//    packshot, with its provenance), with Previous / Next; a decision taken there posts like the
//    item's own forms and the list comes back (then the lightbox moves to the next item awaiting
//    review). Keyboard review, while the focus is on the items or in the lightbox (never while
//    typing in a field): ArrowLeft / ArrowRight (or k / j) move, Enter or v enlarges, a approves,
//    r rejects (with the reason typed in its field), Escape closes.
(function () {
  "use strict";

  var TYPING = /^(INPUT|TEXTAREA|SELECT)$/;

  // -- 1. the builder ---------------------------------------------------------------------------

  function builder(form) {
    var body = form.querySelector("#rows");
    var template = document.getElementById("row-template");
    var maxRows = parseInt(form.dataset.maxRows || "500", 10);
    var maxBytes = parseInt(form.dataset.maxBytes || "0", 10);

    function renumber() {
      var rows = body.querySelectorAll("tr[data-row]");
      rows.forEach(function (row, k) {
        var n = k + 1;
        row.id = "row-" + n;
        var head = row.querySelector("[data-row-head]");
        head.id = "row-" + n + "-head";
        head.querySelector("[data-row-number]").textContent = String(n);
        row.querySelectorAll("[data-col]").forEach(function (field) {
          var col = field.dataset.col;
          field.id = "row-" + n + "-" + col;
          field.setAttribute("aria-labelledby", "col-" + col + " row-" + n + "-head");
          field.setAttribute("aria-describedby", field.id + "-error");
        });
        row.querySelectorAll("[data-error-for]").forEach(function (error) {
          error.id = "row-" + n + "-" + error.dataset.errorFor + "-error";
        });
        var remove = row.querySelector("[data-remove]");
        remove.value = String(k);
        remove.setAttribute("aria-label", "Remove item " + n);
      });
      var count = document.getElementById("row-count");
      if (count) { count.textContent = rows.length + (rows.length === 1 ? " item" : " items"); }
      var add = document.getElementById("add-row");
      if (add) { add.disabled = rows.length >= maxRows; }
    }

    function addRow() {
      var row = template.content.querySelector("tr").cloneNode(true);
      body.appendChild(row);
      renumber();
      row.querySelector("[data-col]").focus();
    }

    form.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || !form.contains(button)) { return; }
      if (button.id === "add-row") {
        event.preventDefault();
        addRow();
      } else if (button.hasAttribute("data-remove")) {
        event.preventDefault();
        var row = button.closest("tr");
        var next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        if (!body.querySelector("tr[data-row]")) { addRow(); return; }
        renumber();
        (next ? next.querySelector("[data-col]") : document.getElementById("add-row")).focus();
      }
    });
    // Enter in a one-line cell would submit the form with its first button: never here.
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT" && event.target.type !== "file" &&
          event.target.type !== "checkbox") {
        event.preventDefault();
      }
    });
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      var input = document.getElementById("csv_file");
      var file = input && input.files && input.files[0];
      if (submitter && submitter.value === "import" && file && maxBytes && file.size > maxBytes) {
        event.preventDefault();
        var error = document.getElementById("csv_file-error");
        error.textContent = "This file is " + Math.ceil(file.size / 1024) + " KiB; a CSV may be at most " +
          Math.floor(maxBytes / 1024) + " KiB: split it into several jobs.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
    var errors = document.getElementById("builder-errors");
    if (errors) { errors.focus(); }
  }

  // -- 2. review: the lightbox and the keyboard ---------------------------------------------------

  function post(form) {
    var data = new FormData(form);
    return fetch(form.action, {
      method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
      headers: {"X-CSRF-Token": data.get("csrf_token"), "HX-Request": "true",
                "Content-Type": "application/x-www-form-urlencoded"}
    }).then(function (response) {
      var redirect = response.headers.get("HX-Redirect");
      if (redirect) { window.location.assign(redirect); throw new Error("Your session ended: sign in again."); }
      return response.text().then(function (html) { return {ok: response.ok, html: html}; });
    });
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function Review(dialog) {
    this.dialog = dialog;
    this.body = dialog.querySelector("#lightbox-body");
    this.jobUrl = window.location.pathname.replace(/\/$/, "");
    this.current = null;
    this.opener = null;
  }

  Review.prototype.list = function () { return document.getElementById("job-items"); };

  Review.prototype.card = function (index) { return document.getElementById("item-" + index); };

  Review.prototype.open = function (index, opener) {
    var self = this;
    self.opener = opener || self.opener;
    self.current = index;
    return fetch(self.jobUrl + "/items/" + index, {credentials: "same-origin", headers: {"HX-Request": "true"}})
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var doc = parse(html);
        var view = doc.querySelector("#item-view") || doc.querySelector("[role=alert]");
        self.body.replaceChildren(document.importNode(view, true));
        if (!self.dialog.open) { self.dialog.showModal(); }
        var title = self.body.querySelector("h2");
        if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
        self.dialog.querySelector("[data-lightbox-move=previous]").disabled = !self.body.querySelector("[data-previous]");
        self.dialog.querySelector("[data-lightbox-move=next]").disabled = !self.body.querySelector("[data-next]");
      });
  };

  Review.prototype.move = function (step) {
    var view = this.body.querySelector("#item-view");
    if (!view) { return; }
    var target = step < 0 ? view.dataset.previous : view.dataset.next;
    if (target !== undefined) { this.open(parseInt(target, 10)); }
  };

  Review.prototype.close = function (focusAfter) {
    this.focusAfter = focusAfter || null;
    if (this.dialog.open) { this.dialog.close(); }
  };

  Review.prototype.decideIn = function (form) {
    // A decision in the lightbox: post it as the list's own forms do, take the list back,
    // then show the next item awaiting review (or close when none is left).
    var self = this;
    var index = parseInt(form.querySelector("[name=index]").value, 10);
    var fields = form.querySelector("[name=from]");
    if (fields) { fields.remove(); }
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    return post(form).then(function (answer) {
      var doc = parse(answer.html);
      var fresh = doc.querySelector("#job-items");
      if (!answer.ok || !fresh) {
        var alert = doc.querySelector("[role=alert], .field-error:not(:empty)");
        var box = self.body.querySelector(".field-error") || self.body;
        box.textContent = alert ? alert.textContent.trim() : "The decision was not recorded.";
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        return;
      }
      self.replaceList(fresh);
      var waiting = Array.prototype.map.call(document.querySelectorAll("#job-items [data-status=awaiting_review]"),
                                             function (li) { return parseInt(li.dataset.index, 10); });
      var next = waiting.filter(function (i) { return i > index; })[0];
      if (next === undefined) { next = waiting[0]; }
      if (next === undefined) {
        var head = document.querySelector("#job-items [data-field=job-status]");
        if (head) { head.setAttribute("tabindex", "-1"); }
        self.close(head);
      } else {
        self.opener = self.card(next) && self.card(next).querySelector("a.zoom");
        self.open(next);
      }
    });
  };

  Review.prototype.replaceList = function (fresh) {
    var list = this.list();
    var node = document.importNode(fresh, true);
    list.replaceWith(node);
    if (window.htmx) { window.htmx.process(node); }
  };

  Review.prototype.focusedCard = function () {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#job-items li.item") : null;
  };

  Review.prototype.focusCard = function (card) {
    if (!card) { return; }
    (card.querySelector("a.zoom") || card).focus();
  };

  function keyOf(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return null; }
    var key = event.key;
    if (key === "j") { return "ArrowRight"; }
    if (key === "k") { return "ArrowLeft"; }
    return key.length === 1 ? key.toLowerCase() : key;
  }

  function review() {
    var dialog = document.getElementById("lightbox");
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    var r = new Review(dialog);

    document.addEventListener("click", function (event) {
      var zoom = event.target.closest("a.zoom[data-lightbox]");
      if (zoom && r.list() && r.list().contains(zoom)) {
        event.preventDefault();
        r.open(parseInt(zoom.dataset.lightbox, 10), zoom);
        return;
      }
      var move = event.target.closest("[data-lightbox-move]");
      if (move && dialog.contains(move)) {
        r.move(move.dataset.lightboxMove === "previous" ? -1 : 1);
      }
    });
    dialog.querySelector("#lightbox-close").addEventListener("click", function () { r.close(); });
    dialog.addEventListener("close", function () {
      r.body.replaceChildren();
      var back = r.current !== null && r.card(r.current);
      if (r.focusAfter && document.contains(r.focusAfter)) { r.focusAfter.focus(); }
      else if (back) { r.focusCard(back); }
      else if (r.opener && document.contains(r.opener)) { r.opener.focus(); }
      r.focusAfter = null;
    });
    dialog.addEventListener("submit", function (event) {
      var form = event.target;
      if (form.closest("#lightbox-body")) {
        event.preventDefault();
        r.decideIn(form);
      }
    });
    dialog.addEventListener("keydown", function (event) {
      var key = keyOf(event);
      if (!key || TYPING.test(event.target.tagName)) { return; }
      if (key === "ArrowLeft" || key === "ArrowRight") {
        event.preventDefault();
        r.move(key === "ArrowLeft" ? -1 : 1);
      } else if (key === "a" || key === "r") {
        var button = r.body.querySelector("[data-action=" + (key === "a" ? "approve" : "reject") + "]");
        if (button && !button.disabled) { event.preventDefault(); button.form.requestSubmit(button); }
      }
    });
    document.addEventListener("keydown", function (event) {
      if (dialog.open) { return; }
      var card = r.focusedCard();
      var key = keyOf(event);
      if (!card || !key || TYPING.test(event.target.tagName)) { return; }
      if (key === "ArrowLeft" || key === "ArrowRight") {
        event.preventDefault();
        r.focusCard(key === "ArrowLeft" ? card.previousElementSibling : card.nextElementSibling);
      } else if (key === "v" || (key === "Enter" && event.target === card)) {
        var zoom = card.querySelector("a.zoom");
        if (zoom) { event.preventDefault(); r.open(parseInt(zoom.dataset.lightbox, 10), zoom); }
      } else if (key === "a" || key === "r") {
        var button = card.querySelector("[data-action=" + (key === "a" ? "approve" : "reject") + "]");
        if (button) { event.preventDefault(); button.click(); }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("builder");
    if (form) { builder(form); }
    if (document.getElementById("job-items")) { review(); }
  });
})();
