// Atelier Studio: the Edit page's mask painting. A static file under the strict CSP (no eval,
// no inline code). Without it the page still edits with a mask preset or an uploaded mask.
// 1. The canvas over the picture has the source's own pixel size: dragging over it paints
//    the area to change (shown tinted), and chooses "What I paint" as the mask.
// 2. On submit, the painting becomes the mask file: a PNG of the source's size, white where
//    painted and black elsewhere, put in the form's mask field; then the form posts as usual.
(function () {
  "use strict";

  function painter(form) {
    var canvas = document.getElementById("mask-canvas");
    var tools = document.getElementById("paint-tools");
    var brush = document.getElementById("brush");
    var painted = document.getElementById("mask-painted");
    var file = document.getElementById("mask-file");
    var status = document.getElementById("edit-status");
    if (!canvas || !painted) { return; }
    var ctx = canvas.getContext("2d");
    var drawing = false, strokes = 0, last = null;
    canvas.hidden = false;
    tools.hidden = false;
    painted.disabled = false;
    form.querySelectorAll(".no-js-note").forEach(function (note) { note.hidden = true; });
    if (!form.querySelector("input[name=mask_choice]:checked")) { painted.checked = true; }

    function at(event) {
      var box = canvas.getBoundingClientRect();
      return {x: (event.clientX - box.left) * canvas.width / box.width,
              y: (event.clientY - box.top) * canvas.height / box.height};
    }
    function radius() {
      var box = canvas.getBoundingClientRect();
      return (parseInt(brush.value, 10) / 2) * canvas.width / Math.max(1, box.width);
    }
    function dab(from, to) {
      ctx.fillStyle = "#ff3b30";
      ctx.strokeStyle = "#ff3b30";
      ctx.lineCap = "round";
      ctx.lineWidth = radius() * 2;
      ctx.beginPath();
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(to.x, to.y, radius(), 0, Math.PI * 2);
      ctx.fill();
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      last = at(event);
      dab(last, last);
      strokes += 1;
      painted.checked = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) { return; }
      var point = at(event);
      dab(last, point);
      last = point;
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      canvas.addEventListener(name, function () { drawing = false; last = null; });
    });
    document.getElementById("clear-mask").addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      strokes = 0;
    });

    function maskBlob() {
      var source = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var out = document.createElement("canvas");
      out.width = canvas.width;
      out.height = canvas.height;
      var octx = out.getContext("2d");
      var mask = octx.createImageData(canvas.width, canvas.height);
      for (var i = 0; i < source.data.length; i += 4) {
        var value = source.data[i + 3] > 0 ? 255 : 0;
        mask.data[i] = mask.data[i + 1] = mask.data[i + 2] = value;
        mask.data[i + 3] = 255;
      }
      octx.putImageData(mask, 0, 0);
      return new Promise(function (resolve) { out.toBlob(resolve, "image/png"); });
    }

    form.addEventListener("submit", function (event) {
      var button = form.querySelector("button[type=submit]");
      status.textContent = "Rendering the edit…";
      if (!painted.checked || !strokes) {
        button.disabled = true;
        return;  // a preset or an uploaded mask: the form posts as it is
      }
      event.preventDefault();
      button.disabled = true;
      maskBlob().then(function (blob) {
        var transfer = new DataTransfer();
        transfer.items.add(new File([blob], "painted-mask.png", {type: "image/png"}));
        file.files = transfer.files;
        form.submit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-edit]").forEach(painter);
  });
})();
