// Before/after slider: the colorized image is clipped to the right of a draggable divider.
document.querySelectorAll(".compare").forEach(function (box) {
  var after = box.querySelector(".after"), divider = box.querySelector(".divider");
  var range = box.parentNode.querySelector("input.compare-range");
  function set(percent) {
    percent = Math.max(0, Math.min(100, percent));
    after.style.clipPath = "inset(0 0 0 " + percent + "%)";
    divider.style.left = percent + "%";
    if (range) range.value = percent;
  }
  function fromEvent(e) {
    var r = box.getBoundingClientRect();
    set((e.clientX - r.left) / r.width * 100);
  }
  var dragging = false;
  box.addEventListener("pointerdown", function (e) { dragging = true; box.setPointerCapture(e.pointerId); fromEvent(e); });
  box.addEventListener("pointermove", function (e) { if (dragging) fromEvent(e); });
  box.addEventListener("pointerup", function () { dragging = false; });
  if (range) range.addEventListener("input", function () { set(Number(range.value)); });
  set(50);
});
// Deep zoom: original and result as two tiled images, the result's opacity toggled.
document.querySelectorAll(".zoom").forEach(function (el) {
  if (typeof OpenSeadragon === "undefined") return;
  var sources = JSON.parse(el.getAttribute("data-sources"));
  var viewer = OpenSeadragon({ element: el, prefixUrl: el.getAttribute("data-prefix"), tileSources: sources, showNavigator: true });
  var button = document.getElementById(el.id + "-toggle");
  if (button && sources.length > 1) {
    var showing = true;
    button.addEventListener("click", function () {
      showing = !showing;
      var top = viewer.world.getItemAt(1);
      if (top) top.setOpacity(showing ? 1 : 0);
      button.textContent = showing ? "Show original" : "Show AI-colorized";
    });
  }
});
